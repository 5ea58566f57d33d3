//! The steps every patient write shares: the history version with its outbox event, the audit
//! rows, and locking the live patient a write is about to change.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use pms_proto::rest::Patient;
use sqlx::{Executor, IntoArguments};
use uuid::Uuid;

use super::super::rows::{AuditRow, PatientRow, VersionRow};
use super::super::{AuditRecord, WriteOutcome};
use super::{AUDIT_ROWS_PER_INSERT, EMAIL_TAKEN, PatientDialect, SqlPatientStore, format_mrn, now};
use crate::audit::AuditAction;
use crate::error::StoreError;
use crate::events::outbox::Enqueue;
use crate::patient::events::patient_event;
use crate::patient::model::NewPatient;
use crate::store::{Fetched, Param, SqlBuilder};

/// The answers of a batch of `creates` whose `step` (its commit, its one statement) failed with
/// `e` when whether it committed is unknown (a lost connection): creating them one by one could
/// answer each request 409 for its own patient, so each gets the error instead.
pub(super) fn unknown_outcome(
    creates: usize,
    step: &str,
    e: &sqlx::Error,
) -> Vec<Result<Patient, StoreError>> {
    tracing::warn!(error = %e, creates, "the {step} of a batch of creates failed");
    (0..creates)
        .map(|_| {
            Err(StoreError::Other(sqlx::Error::Protocol(format!(
                "the {step} of a batch of creates failed: {e}"
            ))))
        })
        .collect()
}

/// What a create whose email a live patient has gets (as [`super::SqlPatientStore`]'s `create`).
pub(super) fn email_taken() -> StoreError {
    StoreError::Conflict(EMAIL_TAKEN.to_owned())
}

impl<B> SqlPatientStore<B>
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
    /// Creates `creates` in one transaction: the emails a live patient (or an earlier create of
    /// the batch) has are refused without spending a number; the rest get their numbers, patient
    /// rows, versions, events and audit rows with one multi-row statement each. An error (a
    /// concurrent create elsewhere took an email, …) fails the whole batch.
    pub(super) async fn create_batch(
        &self,
        creates: &[(NewPatient, AuditRecord)],
    ) -> Result<Vec<Result<Patient, StoreError>>, StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let mut taken = SqlBuilder::<B>::new(
            "SELECT email_key FROM patients WHERE deleted_at IS NULL AND email_key IN (",
        );
        for (i, (new, _)) in creates.iter().enumerate() {
            taken
                .push(if i == 0 { "" } else { ", " })
                .push_bind(new.email.key());
        }
        taken.push(")");
        let (sql, args) = taken.into_parts()?;
        let taken: HashSet<String> = sqlx::query_as_with::<_, (String,), _>(&sql, args)
            .persistent(false)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(key,)| key)
            .collect();
        // Per create: the new patient's id, or none when its email is taken.
        let mut seen = HashSet::with_capacity(creates.len());
        let ids: Vec<Option<Uuid>> = creates
            .iter()
            .map(|(new, _)| {
                let key = new.email.key();
                (!taken.contains(&key) && seen.insert(key)).then(Uuid::new_v4)
            })
            .collect();
        let n = ids.iter().flatten().count();
        if n == 0 {
            return Ok(ids.iter().map(|_| Err(email_taken())).collect());
        }
        let fetched: Vec<i64> = sqlx::query_scalar(B::TAKE_SEQS)
            .bind(n as i64)
            .fetch_all(&mut *tx)
            .await?;
        let rows: Vec<(Uuid, i64, &NewPatient, &AuditRecord)> = creates
            .iter()
            .zip(&ids)
            .filter_map(|((new, audit), id)| id.map(|id| (id, new, audit)))
            .zip(B::batch_seqs(fetched, n))
            .map(|((id, new, audit), seq)| (id, seq, new, audit))
            .collect();
        let now = now();
        let mut insert = SqlBuilder::<B>::new(
            "INSERT INTO patients (id, seq, mrn, name, name_key, email, email_key, address, \
             date_of_birth, registered_date, phone, sex, created_at, updated_at, version) ",
        );
        // In email order: two batches (two replicas) inserting the same emails in different
        // orders would deadlock on the unique index until PostgreSQL failed one.
        let mut in_email_order: Vec<&(Uuid, i64, &NewPatient, &AuditRecord)> =
            rows.iter().collect();
        in_email_order.sort_by_cached_key(|(_, _, new, _)| new.email.key());
        insert.push_values(in_email_order, |row, (id, seq, new, _)| {
            row.push_bind(*id)
                .push_bind(*seq)
                .push_bind(format_mrn(*seq))
                .push_bind(new.name.as_str().to_owned())
                .push_bind(new.name.sort_key())
                .push_bind(new.email.as_str().to_owned())
                .push_bind(new.email.key())
                .push_bind(new.address.as_str().to_owned())
                .push_bind(new.date_of_birth.date())
                .push_bind(new.registered_date.date())
                .push_bind(new.phone.as_ref().map(|p| p.as_str().to_owned()))
                .push_bind(new.sex.map(|s| s.as_str().to_owned()))
                .push_bind(now)
                .push_bind(now)
                .push_bind(1_i64);
        });
        insert.push(concat!(" RETURNING ", patient_columns!()));
        let (sql, args) = insert.into_parts()?;
        let mut created: HashMap<Uuid, Patient> = HashMap::with_capacity(n);
        for row in sqlx::query_as_with::<_, PatientRow, _>(&sql, args)
            .persistent(false)
            .fetch_all(&mut *tx)
            .await?
        {
            let (patient, _) = row.into_patient()?;
            created.insert(patient.id, patient);
        }
        let mut versions = Vec::with_capacity(n);
        let mut audits = Vec::with_capacity(n);
        for (id, _, _, audit) in &rows {
            let patient = created
                .get(id)
                .ok_or(StoreError::Other(sqlx::Error::RowNotFound))?;
            versions.push((patient, audit.meta.actor_id));
            let mut audit = (*audit).clone();
            audit.occurred_at = now;
            audit.patient_id = Some(*id);
            audits.push(audit);
        }
        Self::insert_versions(&mut tx, &versions, "CREATED").await?;
        Self::insert_audits(&mut tx, &audits).await?;
        if let Err(e) = tx.commit().await {
            return Ok(unknown_outcome(creates.len(), "commit", &e));
        }
        self.relay.wake();
        Ok(ids
            .iter()
            .map(|id| match id {
                Some(id) => created
                    .remove(id)
                    .ok_or(StoreError::Other(sqlx::Error::RowNotFound)),
                None => Err(email_taken()),
            })
            .collect())
    }

    pub(super) async fn insert_version(
        conn: &mut B::Connection,
        patient: &Patient,
        change_type: &str,
        changed_by: Option<Uuid>,
    ) -> Result<(), StoreError> {
        Self::insert_versions(conn, &[(patient, changed_by)], change_type).await
    }

    /// The history versions of `changed` (patient, who changed it) with their outbox events, in
    /// one statement each.
    pub(super) async fn insert_versions(
        conn: &mut B::Connection,
        changed: &[(&Patient, Option<Uuid>)],
        change_type: &str,
    ) -> Result<(), StoreError> {
        let mut sql = SqlBuilder::<B>::new(
            "INSERT INTO patient_versions (patient_id, version, change_type, changed_at, \
             changed_by, mrn, name, email, address, date_of_birth, registered_date, \
             phone, sex, created_at, updated_at) ",
        );
        sql.push_values(changed, |row, (patient, changed_by)| {
            row.push_bind(patient.id)
                .push_bind(patient.version)
                .push_bind(change_type.to_owned())
                .push_bind(patient.updated_at)
                .push_bind(*changed_by)
                .push_bind(patient.mrn.clone())
                .push_bind(patient.name.clone())
                .push_bind(patient.email.clone())
                .push_bind(patient.address.clone())
                .push_bind(patient.date_of_birth)
                .push_bind(patient.registered_date)
                .push_bind(patient.phone.clone())
                .push_bind(patient.sex.map(|s| s.as_str().to_owned()))
                .push_bind(patient.created_at)
                .push_bind(patient.updated_at);
        });
        // Only the one-row statement (every update, delete and lone create) stays prepared.
        let (sql, args) = sql.into_parts()?;
        sqlx::query_with(&sql, args)
            .persistent(changed.len() == 1)
            .execute(&mut *conn)
            .await?;
        // The events commit (or not) with the change: the transactional outbox.
        let events: Vec<_> = changed
            .iter()
            .map(|(patient, changed_by)| {
                patient_event(patient, change_type, *changed_by, patient.updated_at)
            })
            .collect();
        conn.enqueue_many(&events).await?;
        Ok(())
    }

    /// Inserts audit rows in one statement (none: nothing).
    pub(super) async fn insert_audits(
        conn: &mut B::Connection,
        audits: &[AuditRecord],
    ) -> Result<(), StoreError> {
        for chunk in audits.chunks(AUDIT_ROWS_PER_INSERT) {
            let mut sql = SqlBuilder::<B>::new(
                "INSERT INTO patient_audit (id, occurred_at, actor_id, actor_role, action, \
                 resource, patient_id, outcome, client_ip, request_id) ",
            );
            sql.push_values(chunk, |row, audit| {
                row.push_bind(audit.id)
                    .push_bind(audit.occurred_at)
                    .push_bind(audit.meta.actor_id)
                    .push_bind(audit.meta.role_str())
                    .push_bind(audit.action.name())
                    .push_bind(audit.action.resource())
                    .push_bind(audit.patient_id)
                    .push_bind(audit.outcome.as_str())
                    .push_bind(audit.meta.client_ip())
                    .push_bind(audit.meta.request_id().map(str::to_owned));
            });
            // Each row count is its own SQL text: cached per connection, every batch
            // size a group commit or a listing produces would stay prepared (SQLite
            // keeps a compiled program per statement; large ones weigh megabytes).
            // Only the one-row statement, by far the most frequent, is kept.
            let (sql, args) = sql.into_parts()?;
            sqlx::query_with(&sql, args)
                .persistent(chunk.len() == 1)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Locks a live patient for a write and checks the precondition: `Err(outcome)` when
    /// the write must not happen.
    pub(super) async fn lock_live(
        conn: &mut B::Connection,
        id: Uuid,
        expected: Option<i64>,
    ) -> Result<Result<PatientRow, WriteOutcome>, StoreError> {
        let sql = format!(
            "SELECT {} FROM patients WHERE id = $1 AND deleted_at IS NULL{}",
            patient_columns!(),
            B::LOCK_ROWS
        );
        let row: Option<PatientRow> = sqlx::query_as(&sql).bind(id).fetch_optional(conn).await?;
        Ok(match row {
            None => Err(WriteOutcome::NotFound),
            Some(row) if expected.is_some_and(|v| v != row.version) => Err(WriteOutcome::Stale {
                current: row.version,
            }),
            Some(row) => Ok(row),
        })
    }
}
