//! The steps every patient write shares: the history version with its outbox event, the audit
//! rows, and locking the live patient a write is about to change.

use chrono::{DateTime, NaiveDate, Utc};
use pms_proto::rest::{Patient, Sex};
use sqlx::{Executor, IntoArguments};
use uuid::Uuid;

use super::super::rows::{AuditRow, PatientRow, VersionRow};
use super::super::{AuditRecord, WriteOutcome};
use super::{AUDIT_ROWS_PER_INSERT, PatientDialect, SqlPatientStore};
use crate::audit::AuditAction;
use crate::error::StoreError;
use crate::events::outbox::Enqueue;
use crate::patient::events::patient_event;
use crate::store::{Fetched, Param, SqlBuilder};

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
    (Vec<u8>,): Fetched<B>,
{
    pub(super) async fn insert_version(
        conn: &mut B::Connection,
        patient: &Patient,
        change_type: &str,
        changed_by: Option<Uuid>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO patient_versions (patient_id, version, change_type, changed_at, \
             changed_by, mrn, name, email, address, date_of_birth, registered_date, \
             phone, sex, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(patient.id)
        .bind(patient.version)
        .bind(change_type)
        .bind(patient.updated_at)
        .bind(changed_by)
        .bind(&patient.mrn)
        .bind(&patient.name)
        .bind(&patient.email)
        .bind(&patient.address)
        .bind(patient.date_of_birth)
        .bind(patient.registered_date)
        .bind(&patient.phone)
        .bind(patient.sex.map(Sex::as_str))
        .bind(patient.created_at)
        .bind(patient.updated_at)
        .execute(&mut *conn)
        .await?;
        // The event commits (or not) with the change: the transactional outbox.
        let event = patient_event(patient, change_type, changed_by, patient.updated_at);
        conn.enqueue(&event).await?;
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
