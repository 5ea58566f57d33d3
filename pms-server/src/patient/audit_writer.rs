//! Group commit of the audit rows of reads (issue 10). A read of patient data answers only once
//! its audit row is durable, but committing each read's row alone costs a synchronous commit per
//! GET. Requests hand their rows to one writer task instead; it takes every request waiting at
//! that moment and commits all their rows with one statement (one transaction), then answers
//! each request. While a commit is in flight the next requests queue up, so the batch grows with
//! the load and the commits per read fall below one.
//!
//! A batch that fails is retried one request at a time, so one bad row fails only its own read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::store::{AuditRecord, PatientStore};
use crate::error::StoreError;

/// Requests taken into one batch at most (their rows go in one transaction).
const MAX_JOBS_PER_BATCH: usize = 128;
/// Requests waiting for the writer before new ones wait for room (backpressure).
const QUEUE: usize = 1024;

/// One request's rows and where to answer it.
struct Job {
    rows: Vec<AuditRecord>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Hands audit rows to the writer task. Cheap to clone; the task ends when every clone is gone.
#[derive(Clone)]
pub struct AuditWriter {
    jobs: mpsc::Sender<Job>,
    /// Batches written so far (successful or not): commits, to compare with requests.
    batches: Arc<AtomicU64>,
}

impl AuditWriter {
    /// Starts the writer task over `store`.
    pub fn spawn(store: Arc<dyn PatientStore>) -> AuditWriter {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let batches = Arc::new(AtomicU64::new(0));
        tokio::spawn(write_batches(store, queue, Arc::clone(&batches)));
        AuditWriter { jobs, batches }
    }

    /// Batches written so far (each one commit, unless it failed and was retried per request).
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Returns once `rows` are committed (nothing to do for none).
    pub async fn record(&self, rows: Vec<AuditRecord>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { rows, done })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// The writer task is gone (it never exits while requests can reach it, unless it panicked).
fn gone() -> StoreError {
    StoreError::Other(sqlx::Error::WorkerCrashed)
}

async fn write_batches(
    store: Arc<dyn PatientStore>,
    mut queue: mpsc::Receiver<Job>,
    batches: Arc<AtomicU64>,
) {
    let mut jobs = Vec::with_capacity(MAX_JOBS_PER_BATCH);
    while queue.recv_many(&mut jobs, MAX_JOBS_PER_BATCH).await > 0 {
        batches.fetch_add(1, Ordering::Relaxed);
        metrics::histogram!("patient_audit_batch_requests").record(jobs.len() as f64);
        let result = if jobs.len() == 1 {
            store.record_audits(&jobs[0].rows).await
        } else {
            let rows: Vec<AuditRecord> = jobs.iter().flat_map(|j| j.rows.iter().cloned()).collect();
            store.record_audits(&rows).await
        };
        match result {
            Ok(()) => {
                for job in jobs.drain(..) {
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(e) if jobs.len() == 1 => {
                if let Some(job) = jobs.pop() {
                    let _ = job.done.send(Err(e));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, requests = jobs.len(), "audit batch failed; writing its requests one by one");
                for job in jobs.drain(..) {
                    let result = store.record_audits(&job.rows).await;
                    let _ = job.done.send(result);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
