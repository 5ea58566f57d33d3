//! Group commit of the audit rows of reads (issue 10). A read of patient data answers only once
//! its audit row is durable, but committing each read's row alone costs a synchronous commit per
//! GET. Requests hand their rows to one writer task instead ([`GroupCommit`]); it takes every
//! request waiting at that moment and commits all their rows with one statement (one
//! transaction), then answers each request.
//!
//! A batch that fails is retried one request at a time, so one bad row fails only its own read.

use std::sync::Arc;

use async_trait::async_trait;

use super::store::{AuditRecord, PatientStore};
use crate::error::StoreError;
use crate::store::group_commit::{Batch, GroupCommit};

/// Requests taken into one batch at most (their rows go in one transaction).
const MAX_JOBS_PER_BATCH: usize = 128;

/// Writes the rows of a batch of requests.
struct AuditRows(Arc<dyn PatientStore>);

#[async_trait]
impl Batch for AuditRows {
    type Job = Vec<AuditRecord>;
    type Output = Result<(), StoreError>;

    async fn write(&self, jobs: &[Vec<AuditRecord>]) -> Vec<Result<(), StoreError>> {
        if let [rows] = jobs {
            return vec![self.0.record_audits(rows).await];
        }
        let rows: Vec<AuditRecord> = jobs.iter().flatten().cloned().collect();
        match self.0.record_audits(&rows).await {
            Ok(()) => jobs.iter().map(|_| Ok(())).collect(),
            Err(e) => {
                tracing::warn!(error = %e, requests = jobs.len(), "audit batch failed; writing its requests one by one");
                let mut results = Vec::with_capacity(jobs.len());
                for rows in jobs {
                    results.push(self.0.record_audits(rows).await);
                }
                results
            }
        }
    }
}

/// Hands audit rows to the writer task. Cheap to clone; the task ends when every clone is gone.
#[derive(Clone)]
pub struct AuditWriter {
    writer: GroupCommit<AuditRows>,
}

impl AuditWriter {
    /// Starts the writer task over `store`.
    pub fn spawn(store: Arc<dyn PatientStore>) -> AuditWriter {
        AuditWriter {
            writer: GroupCommit::spawn("patient_audit", MAX_JOBS_PER_BATCH, AuditRows(store)),
        }
    }

    /// Batches written so far (each one commit, unless it failed and was retried per request).
    pub fn batches(&self) -> u64 {
        self.writer.batches()
    }

    /// Returns once `rows` are committed (nothing to do for none).
    pub async fn record(&self, rows: Vec<AuditRecord>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.writer
            .submit(rows)
            .await
            .map_err(|_| StoreError::Other(sqlx::Error::WorkerCrashed))?
    }
}

#[cfg(test)]
mod tests;
