//! [`PatientStore`] on PostgreSQL and SQLite. The SQL is written once (sqlx's SQLite accepts `$n`
//! placeholders, and both speak `RETURNING`, partial indexes and row-value comparisons); it is
//! generic over the [`Backend`] ([`SqlPatientStore`]). The dialects differ in how a write
//! transaction locks the row it is about to change (`SELECT … FOR UPDATE` on PostgreSQL, nothing
//! on SQLite, whose `BEGIN IMMEDIATE` already holds the database write lock) and in where a new
//! patient's number comes from: a sequence on PostgreSQL, so that concurrent creates do not queue
//! on one counter row's lock until each commits, and the counter row on SQLite, whose writers are
//! serialised anyway (and there a refused create rolls its number back).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use futures::future::BoxFuture;
use pms_proto::rest::{AuditEntry, Patient, PatientVersion, Sex};
use sqlx::{Database, Executor, IntoArguments, Pool, Postgres, Sqlite};
use uuid::Uuid;

use super::rows::{AuditRow, PatientRow, VersionRow, decode_sex};
use super::{
    AuditQuery, AuditRecord, ListQuery, Page, PatientKey, PatientStore, SortOrder, WriteOutcome,
};
use crate::audit::AuditAction;
use crate::error::StoreError;
use crate::events::outbox::Enqueue;
use crate::events::relay::RelayWaker;
use crate::patient::model::{Change, NewPatient, PatientChanges, name_key};
use crate::store::{Backend, Fetched, Param, SqlBuilder};

/// The columns a [`PatientRow`] reads.
macro_rules! patient_columns {
    () => {
        "id, seq, mrn, name, name_key, email, address, date_of_birth, registered_date, phone, sex, \
         created_at, updated_at, version"
    };
}

// After the macro: the modules use it.
mod pg_batch;
mod support;

/// `MRN-000042`: six digits at least, more once a clinic passes a million patients.
fn format_mrn(seq: i64) -> String {
    format!("MRN-{seq:06}")
}

/// Escapes LIKE's wildcards (and the escape character) so user input matches literally.
fn like_escape(s: &str) -> String {
    let mut escaped = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The stored value of an optional field after an update.
fn resolve<T, U>(change: &Change<T>, current: Option<U>, to_db: impl FnOnce(&T) -> U) -> Option<U> {
    match change {
        Change::Keep => current,
        Change::Clear => None,
        Change::Set(value) => Some(to_db(value)),
    }
}

fn now() -> DateTime<Utc> {
    // Both backends keep microseconds: stamp with what will be read back.
    Utc::now().trunc_subsecs(6)
}

const ESCAPE: &str = " ESCAPE '\\'";

/// Audit rows per INSERT: 10 parameters each stays far below SQLite's 32,766 and PostgreSQL's
/// 65,535 bind parameters; a page holds at most 1000 patients, so one statement.
const AUDIT_ROWS_PER_INSERT: usize = 1000;

/// The constraint a create reports when the email is taken (PostgreSQL's name for the unique
/// index; it contains [`super::EMAIL_UNIQUE`]).
const EMAIL_TAKEN: &str = "patients_email_key_live";

/// Where a new patient's number comes from, per backend (see the module doc).
pub trait PatientDialect: Backend {
    /// The next number, unless a live patient has the email bound as `$1` (then no row).
    const NEXT_SEQ: &'static str;
    /// `$1` new numbers for a batch of creates: one row each (PostgreSQL), or the last of
    /// them (SQLite); [`PatientDialect::batch_seqs`] makes them the list.
    const TAKE_SEQS: &'static str;
    /// The `n` numbers, ascending, from what [`PatientDialect::TAKE_SEQS`] returned.
    fn batch_seqs(fetched: Vec<i64>, n: usize) -> Vec<i64>;
    /// A read of one live patient (`$1`) that inserts its audit row (`$2`…`$9`, outcome
    /// SUCCESS or NOT_FOUND) in the same statement ([`PatientStore::get_audited`]); none where
    /// a statement cannot write (SQLite has no data-modifying `WITH`).
    const GET_AUDITED: Option<&'static str>;
    /// A batch of creates written the backend's faster way, with one answer per create as
    /// [`SqlPatientStore::create_batch`] gives (PostgreSQL: [`pg_batch`]); none: that generic
    /// transaction it is.
    fn create_batch_at_once<'a>(
        pool: &'a Pool<Self>,
        creates: &'a [(NewPatient, AuditRecord)],
    ) -> Option<CreatedBatch<'a>>;
}

/// What a batch of creates answers, one result per create (or an error for the whole batch).
type CreatedBatch<'a> = BoxFuture<'a, Result<Vec<Result<Patient, StoreError>>, StoreError>>;

impl PatientDialect for Postgres {
    const NEXT_SEQ: &'static str = "SELECT nextval('patient_mrn_seq') WHERE NOT EXISTS \
        (SELECT 1 FROM patients WHERE email_key = $1 AND deleted_at IS NULL)";
    const TAKE_SEQS: &'static str = "SELECT nextval('patient_mrn_seq') FROM generate_series(1, $1)";
    // The audit insert runs to completion although the final SELECT does not read it
    // (PostgreSQL executes every data-modifying WITH exactly once).
    const GET_AUDITED: Option<&'static str> = Some(concat!(
        "WITH p AS (SELECT ",
        patient_columns!(),
        " FROM patients WHERE id = $1 AND deleted_at IS NULL), \
         a AS (INSERT INTO patient_audit (id, occurred_at, actor_id, actor_role, action, \
         resource, patient_id, outcome, client_ip, request_id) \
         SELECT $2, $3, $4, $5, $6, $7, $1, \
         CASE WHEN EXISTS (SELECT 1 FROM p) THEN 'SUCCESS' ELSE 'NOT_FOUND' END, $8, $9) \
         SELECT ",
        patient_columns!(),
        " FROM p"
    ));

    fn batch_seqs(mut fetched: Vec<i64>, _n: usize) -> Vec<i64> {
        fetched.sort_unstable();
        fetched
    }

    fn create_batch_at_once<'a>(
        pool: &'a Pool<Self>,
        creates: &'a [(NewPatient, AuditRecord)],
    ) -> Option<CreatedBatch<'a>> {
        Some(Box::pin(pg_batch::create_batch(pool, creates)))
    }
}

impl PatientDialect for Sqlite {
    const NEXT_SEQ: &'static str = "UPDATE mrn_counter SET last = last + 1 WHERE id = 1 AND NOT \
        EXISTS (SELECT 1 FROM patients WHERE email_key = $1 AND deleted_at IS NULL) RETURNING last";
    const TAKE_SEQS: &'static str =
        "UPDATE mrn_counter SET last = last + $1 WHERE id = 1 RETURNING last";
    const GET_AUDITED: Option<&'static str> = None;

    fn batch_seqs(fetched: Vec<i64>, n: usize) -> Vec<i64> {
        let last = fetched.first().copied().unwrap_or_default();
        (last - n as i64 + 1..=last).collect()
    }

    fn create_batch_at_once<'a>(
        _pool: &'a Pool<Self>,
        _creates: &'a [(NewPatient, AuditRecord)],
    ) -> Option<CreatedBatch<'a>> {
        None
    }
}

/// [`PatientStore`] on backend `B`.
pub struct SqlPatientStore<B: Database> {
    pool: Pool<B>,
    relay: RelayWaker,
}

/// [`PatientStore`] on PostgreSQL.
pub type PgPatientStore = SqlPatientStore<Postgres>;
/// [`PatientStore`] on SQLite.
pub type SqlitePatientStore = SqlPatientStore<Sqlite>;

impl<B: Database> SqlPatientStore<B> {
    /// A store whose commits of events wake `relay`.
    pub fn new(pool: Pool<B>, relay: RelayWaker) -> Self {
        SqlPatientStore { pool, relay }
    }
}

#[async_trait]
impl<B> PatientStore for SqlPatientStore<B>
where
    B: PatientDialect,
    B::Connection: Enqueue,
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> B::Arguments<'q>: IntoArguments<'q, B>,
    for<'q> Uuid: Param<'q, B>,
    for<'q> Option<Uuid>: Param<'q, B>,
    for<'q> i64: Param<'q, B>,
    for<'q> &'q str: Param<'q, B>,
    for<'q> Option<&'q str>: Param<'q, B>,
    for<'q> String: Param<'q, B>,
    for<'q> Option<String>: Param<'q, B>,
    for<'q> NaiveDate: Param<'q, B>,
    for<'q> DateTime<Utc>: Param<'q, B>,
    for<'q> &'q [u8]: Param<'q, B>,
    PatientRow: Fetched<B>,
    VersionRow: Fetched<B>,
    AuditRow: Fetched<B>,
    (i64,): Fetched<B>,
    (String,): Fetched<B>,
    (Vec<u8>,): Fetched<B>,
{
    async fn create_many(
        &self,
        creates: &[(NewPatient, AuditRecord)],
    ) -> Vec<Result<Patient, StoreError>> {
        let batch = match B::create_batch_at_once(&self.pool, creates) {
            Some(write) => {
                let batch = write.await;
                if batch.is_ok() {
                    self.relay.wake();
                }
                batch
            }
            None => match creates {
                [(new, audit)] => return vec![self.create(new, audit.clone()).await],
                _ => self.create_batch(creates).await,
            },
        };
        match batch {
            Ok(created) => created,
            Err(e) => {
                // A concurrent create elsewhere took an email, the database refused a row, …:
                // each request gets the answer it would have had alone.
                tracing::debug!(error = %e, creates = creates.len(), "create batch failed; creating one by one");
                let mut results = Vec::with_capacity(creates.len());
                for (new, audit) in creates {
                    results.push(self.create(new, audit.clone()).await);
                }
                results
            }
        }
    }

    async fn create(
        &self,
        new: &NewPatient,
        mut audit: AuditRecord,
    ) -> Result<Patient, StoreError> {
        let id = Uuid::new_v4();
        let mut tx = B::begin_write(&self.pool).await?;
        let now = now();
        audit.occurred_at = now;
        audit.patient_id = Some(id);
        // The number, unless a live patient has this email: checked first so that the
        // usual refusal spends no number (a concurrent duplicate still fails on the unique
        // index below).
        let seq: Option<i64> = sqlx::query_scalar(B::NEXT_SEQ)
            .bind(new.email.key())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(seq) = seq else {
            return Err(StoreError::Conflict(EMAIL_TAKEN.to_owned()));
        };
        let row: PatientRow = sqlx::query_as(concat!(
            "INSERT INTO patients (id, seq, mrn, name, name_key, email, email_key, \
             address, date_of_birth, registered_date, phone, sex, created_at, \
             updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, 1) \
             RETURNING ",
            patient_columns!()
        ))
        .bind(id)
        .bind(seq)
        .bind(format_mrn(seq))
        .bind(new.name.as_str())
        .bind(new.name.sort_key())
        .bind(new.email.as_str())
        .bind(new.email.key())
        .bind(new.address.as_str())
        .bind(new.date_of_birth.date())
        .bind(new.registered_date.date())
        .bind(new.phone.as_ref().map(|p| p.as_str()))
        .bind(new.sex.map(Sex::as_str))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let (patient, _) = row.into_patient()?;
        Self::insert_version(&mut tx, &patient, "CREATED", audit.meta.actor_id).await?;
        Self::insert_audits(&mut tx, std::slice::from_ref(&audit)).await?;
        tx.commit().await?;
        self.relay.wake();
        Ok(patient)
    }

    async fn get(&self, id: Uuid) -> Result<Option<Patient>, StoreError> {
        let row: Option<PatientRow> = sqlx::query_as(concat!(
            "SELECT ",
            patient_columns!(),
            " FROM patients WHERE id = $1 AND deleted_at IS NULL"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.into_patient().map(|(p, _)| p)).transpose()
    }

    async fn get_audited(
        &self,
        id: Uuid,
        audit: &AuditRecord,
    ) -> Option<Result<Option<Patient>, StoreError>> {
        let sql = B::GET_AUDITED?;
        let row = sqlx::query_as::<_, PatientRow>(sql)
            .bind(id)
            .bind(audit.id)
            .bind(audit.occurred_at)
            .bind(audit.meta.actor_id)
            .bind(audit.meta.role_str())
            .bind(audit.action.name())
            .bind(audit.action.resource())
            .bind(audit.meta.client_ip())
            .bind(audit.meta.request_id().map(str::to_owned))
            .fetch_optional(&self.pool)
            .await;
        Some(match row {
            Ok(row) => row.map(|r| r.into_patient().map(|(p, _)| p)).transpose(),
            Err(e) => Err(e.into()),
        })
    }

    async fn list(&self, query: &ListQuery) -> Result<Page<Patient, PatientKey>, StoreError> {
        let mut sql = SqlBuilder::<B>::new(concat!(
            "SELECT ",
            patient_columns!(),
            " FROM patients WHERE deleted_at IS "
        ));
        sql.push(if query.deleted { "NOT NULL" } else { "NULL" });
        let search = query.search.as_deref().map(name_key);
        if let Some(key) = search.filter(|k| !k.is_empty()).map(|k| like_escape(&k)) {
            sql.push(" AND (name_key LIKE ")
                .push_bind(format!("{key}%"))
                .push(ESCAPE);
            sql.push(" OR name_key LIKE ")
                .push_bind(format!("% {key}%"))
                .push(ESCAPE);
            sql.push(" OR email_key LIKE ")
                .push_bind(format!("{key}%"))
                .push(ESCAPE);
            sql.push(" OR lower(mrn) LIKE ")
                .push_bind(format!("{key}%"))
                .push(ESCAPE);
            sql.push(")");
        }
        if let Some(after) = &query.after {
            let (by_name, op) = match query.sort {
                SortOrder::CreatedAsc => (false, " > "),
                SortOrder::CreatedDesc => (false, " < "),
                SortOrder::NameAsc => (true, " > "),
                SortOrder::NameDesc => (true, " < "),
            };
            if by_name {
                sql.push(" AND (name_key, seq)").push(op).push("(");
                sql.push_bind(after.name_key.clone())
                    .push(", ")
                    .push_bind(after.seq);
                sql.push(")");
            } else {
                sql.push(" AND seq").push(op).push_bind(after.seq);
            }
        }
        sql.push(match query.sort {
            SortOrder::CreatedAsc => " ORDER BY seq",
            SortOrder::CreatedDesc => " ORDER BY seq DESC",
            SortOrder::NameAsc => " ORDER BY name_key, seq",
            SortOrder::NameDesc => " ORDER BY name_key DESC, seq DESC",
        });
        sql.push(" LIMIT ").push_bind(i64::from(query.limit) + 1);
        let (sql, args) = sql.into_parts()?;
        let rows: Vec<PatientRow> = sqlx::query_as_with(&sql, args)
            .fetch_all(&self.pool)
            .await?;
        let mut page = Vec::with_capacity(rows.len());
        for row in rows {
            page.push(row.into_patient()?);
        }
        Ok(paginate(page, query.limit))
    }

    async fn update(
        &self,
        id: Uuid,
        expected: Option<i64>,
        changes: &PatientChanges,
        mut audit: AuditRecord,
    ) -> Result<WriteOutcome, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let current = match Self::lock_live(&mut tx, id, expected).await? {
            Ok(row) => row,
            Err(refused) => return Ok(refused),
        };
        let now = now();
        audit.occurred_at = now;
        audit.patient_id = Some(id);
        let registered = changes.registered_date.map(|d| d.date());
        let current_sex = decode_sex(current.sex)?;
        let row: PatientRow = sqlx::query_as(concat!(
            "UPDATE patients SET name = $3, name_key = $4, email = $5, email_key = $6, \
             address = $7, date_of_birth = $8, registered_date = $9, phone = $10, \
             sex = $11, updated_at = $12, version = version + 1 \
             WHERE id = $1 AND version = $2 AND deleted_at IS NULL RETURNING ",
            patient_columns!()
        ))
        .bind(id)
        .bind(current.version)
        .bind(changes.name.as_str())
        .bind(changes.name.sort_key())
        .bind(changes.email.as_str())
        .bind(changes.email.key())
        .bind(changes.address.as_str())
        .bind(changes.date_of_birth.date())
        .bind(registered.unwrap_or(current.registered_date))
        .bind(resolve(&changes.phone, current.phone, |p| {
            p.as_str().to_owned()
        }))
        .bind(resolve(&changes.sex, current_sex, |s| *s).map(Sex::as_str))
        .bind(now)
        // The row is locked, so the compare-and-set cannot miss; RowNotFound would be a
        // bug, not a race, and surfaces as NotFound.
        .fetch_one(&mut *tx)
        .await?;
        let (patient, _) = row.into_patient()?;
        Self::insert_version(&mut tx, &patient, "UPDATED", audit.meta.actor_id).await?;
        Self::insert_audits(&mut tx, std::slice::from_ref(&audit)).await?;
        tx.commit().await?;
        self.relay.wake();
        Ok(WriteOutcome::Done(patient))
    }

    async fn delete(
        &self,
        id: Uuid,
        expected: Option<i64>,
        mut audit: AuditRecord,
    ) -> Result<WriteOutcome, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let current = match Self::lock_live(&mut tx, id, expected).await? {
            Ok(row) => row,
            Err(refused) => return Ok(refused),
        };
        let now = now();
        audit.occurred_at = now;
        audit.patient_id = Some(id);
        let row: PatientRow = sqlx::query_as(concat!(
            "UPDATE patients SET deleted_at = $3, updated_at = $3, version = version + 1 \
             WHERE id = $1 AND version = $2 AND deleted_at IS NULL RETURNING ",
            patient_columns!()
        ))
        .bind(id)
        .bind(current.version)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let (patient, _) = row.into_patient()?;
        Self::insert_version(&mut tx, &patient, "DELETED", audit.meta.actor_id).await?;
        Self::insert_audits(&mut tx, std::slice::from_ref(&audit)).await?;
        tx.commit().await?;
        self.relay.wake();
        Ok(WriteOutcome::Done(patient))
    }

    async fn restore(
        &self,
        id: Uuid,
        expected: Option<i64>,
        mut audit: AuditRecord,
    ) -> Result<WriteOutcome, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let current: Option<PatientRow> = sqlx::query_as(&format!(
            "SELECT {} FROM patients WHERE id = $1 AND deleted_at IS NOT NULL{}",
            patient_columns!(),
            B::LOCK_ROWS
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let current = match current {
            None => return Ok(WriteOutcome::NotFound),
            Some(row) if expected.is_some_and(|v| v != row.version) => {
                return Ok(WriteOutcome::Stale {
                    current: row.version,
                });
            }
            Some(row) => row,
        };
        let now = now();
        audit.occurred_at = now;
        audit.patient_id = Some(id);
        // A live patient with the same email fails the partial unique index: Conflict.
        let row: PatientRow = sqlx::query_as(concat!(
            "UPDATE patients SET deleted_at = NULL, updated_at = $3, version = version + 1 \
             WHERE id = $1 AND version = $2 AND deleted_at IS NOT NULL RETURNING ",
            patient_columns!()
        ))
        .bind(id)
        .bind(current.version)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let (patient, _) = row.into_patient()?;
        Self::insert_version(&mut tx, &patient, "RESTORED", audit.meta.actor_id).await?;
        Self::insert_audits(&mut tx, std::slice::from_ref(&audit)).await?;
        tx.commit().await?;
        self.relay.wake();
        Ok(WriteOutcome::Done(patient))
    }

    async fn history(&self, id: Uuid) -> Result<Vec<PatientVersion>, StoreError> {
        let rows: Vec<VersionRow> = sqlx::query_as(
            "SELECT patient_id, version, change_type, changed_at, changed_by, mrn, name, \
             email, address, date_of_birth, registered_date, phone, sex, created_at, \
             updated_at FROM patient_versions WHERE patient_id = $1 ORDER BY version",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(VersionRow::into_version).collect()
    }

    async fn record_audits(&self, audits: &[AuditRecord]) -> Result<(), StoreError> {
        if audits.len() <= AUDIT_ROWS_PER_INSERT {
            // One statement: its own (single) commit.
            let mut conn = B::acquire_write(&self.pool).await?;
            return Self::insert_audits(&mut conn, audits).await;
        }
        // Several statements (a group commit of many reads): still one commit.
        let mut tx = B::begin_write(&self.pool).await?;
        Self::insert_audits(&mut tx, audits).await?;
        tx.commit().await.map_err(StoreError::from)
    }

    async fn cursor_key(&self, offer: &[u8]) -> Result<Vec<u8>, StoreError> {
        sqlx::query("INSERT INTO cursor_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
            .bind(offer)
            .execute(&mut *B::acquire_write(&self.pool).await?)
            .await?;
        sqlx::query_scalar("SELECT key FROM cursor_key WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Page<AuditEntry, i64>, StoreError> {
        let mut sql = SqlBuilder::<B>::new(
            "SELECT seq, id, occurred_at, actor_id, actor_role, action, resource, \
             patient_id, outcome, client_ip, request_id FROM patient_audit WHERE 1 = 1",
        );
        if let Some(patient_id) = query.patient_id {
            sql.push(" AND patient_id = ").push_bind(patient_id);
        }
        if let Some(actor_id) = query.actor_id {
            sql.push(" AND actor_id = ").push_bind(actor_id);
        }
        if let Some(action) = query.action {
            sql.push(" AND action = ").push_bind(action);
        }
        if let Some(since) = query.since {
            sql.push(" AND occurred_at >= ").push_bind(since);
        }
        if let Some(until) = query.until {
            sql.push(" AND occurred_at < ").push_bind(until);
        }
        if let Some(before) = query.before {
            sql.push(" AND seq < ").push_bind(before);
        }
        sql.push(" ORDER BY seq DESC LIMIT ")
            .push_bind(i64::from(query.limit) + 1);
        let (sql, args) = sql.into_parts()?;
        let rows: Vec<AuditRow> = sqlx::query_as_with(&sql, args)
            .fetch_all(&self.pool)
            .await?;
        let rows = rows
            .into_iter()
            .map(|r| {
                let seq = r.seq;
                (r, seq)
            })
            .collect();
        let page = paginate(rows, query.limit);
        Ok(Page {
            items: page.items.into_iter().map(AuditRow::into_entry).collect(),
            next: page.next,
        })
    }
}
/// Cuts `limit + 1` fetched rows to a page; the extra row only says that another page follows,
/// which continues after the last row kept.
fn paginate<T, K: Clone>(mut rows: Vec<(T, K)>, limit: u32) -> Page<T, K> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = more.then(|| rows.last().map(|(_, k)| k.clone())).flatten();
    Page {
        items: rows.into_iter().map(|(item, _)| item).collect(),
        next,
    }
}
