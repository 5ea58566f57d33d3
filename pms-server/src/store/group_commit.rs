//! Group commit (issue 10): concurrent requests that each need a small write transaction hand
//! their job to one writer task, which takes every job waiting at that moment and writes them all
//! in one transaction — one commit (one `fsync` on SQLite, one round of `BEGIN … COMMIT` and
//! multi-row statements on PostgreSQL) for many requests — then answers each request with its own
//! result. While a batch is in flight the next requests queue up, so batches grow with the load
//! and a lone request is written at once, alone (no timer, no added latency when idle).
//!
//! What a batch means is the [`Batch`] implementation's business: it returns one result per job,
//! in order, and decides how a failure of the whole batch is retried (typically one job at a
//! time, so that one bad job fails only its own request).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the writer before new ones wait for room (backpressure).
const QUEUE: usize = 1024;

/// Writes a batch of jobs (one transaction when it can).
#[async_trait]
pub trait Batch: Send + Sync + 'static {
    type Job: Send + 'static;
    /// What one request gets back (usually a `Result`).
    type Output: Send + 'static;
    /// One output per job, in the jobs' order.
    async fn write(&self, jobs: &[Self::Job]) -> Vec<Self::Output>;
}

/// The writer task is gone: it panicked (it never exits while a [`GroupCommit`] handle exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterGone;

impl std::fmt::Display for WriterGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the group-commit writer task is gone")
    }
}

impl std::error::Error for WriterGone {}

struct Pending<B: Batch> {
    job: B::Job,
    done: oneshot::Sender<B::Output>,
}

/// Hands jobs to a writer task. Cheap to clone; the task ends when every clone is gone.
pub struct GroupCommit<B: Batch> {
    jobs: mpsc::Sender<Pending<B>>,
    batches: Arc<AtomicU64>,
}

impl<B: Batch> Clone for GroupCommit<B> {
    fn clone(&self) -> Self {
        GroupCommit {
            jobs: self.jobs.clone(),
            batches: Arc::clone(&self.batches),
        }
    }
}

impl<B: Batch> GroupCommit<B> {
    /// Starts the writer task: batches of at most `max_jobs` jobs, written by `batch`. `name`
    /// labels the batch-size histogram (`group_commit_batch_jobs{writer=…}`).
    pub fn spawn(name: &'static str, max_jobs: usize, batch: B) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let batches = Arc::new(AtomicU64::new(0));
        tokio::spawn(write_batches(
            name,
            max_jobs.max(1),
            batch,
            queue,
            Arc::clone(&batches),
        ));
        GroupCommit { jobs, batches }
    }

    /// Batches written so far (each one transaction, unless the batch retried its jobs).
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Jobs submitted and not yet taken into a batch.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        QUEUE - self.jobs.capacity()
    }

    /// Returns `job`'s output once its batch is written.
    pub async fn submit(&self, job: B::Job) -> Result<B::Output, WriterGone> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Pending { job, done })
            .await
            .map_err(|_| WriterGone)?;
        answer.await.map_err(|_| WriterGone)
    }
}

async fn write_batches<B: Batch>(
    name: &'static str,
    max_jobs: usize,
    batch: B,
    mut queue: mpsc::Receiver<Pending<B>>,
    batches: Arc<AtomicU64>,
) {
    let mut pending = Vec::with_capacity(max_jobs);
    let mut jobs = Vec::with_capacity(max_jobs);
    let mut answers = Vec::with_capacity(max_jobs);
    while queue.recv_many(&mut pending, max_jobs).await > 0 {
        batches.fetch_add(1, Ordering::Relaxed);
        metrics::histogram!("group_commit_batch_jobs", "writer" => name)
            .record(pending.len() as f64);
        for Pending { job, done } in pending.drain(..) {
            jobs.push(job);
            answers.push(done);
        }
        // A panic in one batch fails that batch's requests (their answers are dropped: they see
        // [`WriterGone`]), not every request after it.
        match AssertUnwindSafe(batch.write(&jobs)).catch_unwind().await {
            Ok(outputs) => {
                debug_assert_eq!(outputs.len(), answers.len(), "one output per job");
                for (done, output) in answers.drain(..).zip(outputs) {
                    // A request that went away (client disconnected) no longer waits.
                    let _ = done.send(output);
                }
            }
            Err(_) => tracing::error!(
                writer = name,
                jobs = jobs.len(),
                "group-commit batch panicked"
            ),
        }
        // Any answer left (a short output list, a panic) is dropped: its request sees WriterGone.
        answers.clear();
        jobs.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// Records each batch's jobs; fails job 13 alone.
    struct Recorder {
        seen: Arc<Mutex<Vec<Vec<u32>>>>,
    }

    #[async_trait]
    impl Batch for Recorder {
        type Job = u32;
        type Output = Result<u32, String>;
        async fn write(&self, jobs: &[u32]) -> Vec<Self::Output> {
            self.seen.lock().expect("lock").push(jobs.to_vec());
            assert!(!jobs.contains(&99), "job 99 makes the batch panic");
            // Long enough for the next requests to queue behind this batch.
            tokio::time::sleep(Duration::from_millis(20)).await;
            jobs.iter()
                .map(|&j| {
                    if j == 13 {
                        Err(format!("bad {j}"))
                    } else {
                        Ok(j * 2)
                    }
                })
                .collect()
        }
    }

    #[tokio::test]
    async fn concurrent_jobs_share_batches_and_each_gets_its_own_output() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let writer = GroupCommit::spawn(
            "test",
            8,
            Recorder {
                seen: Arc::clone(&seen),
            },
        );
        let lone = writer.submit(1).await;
        assert_eq!(lone, Ok(Ok(2)));
        let handles: Vec<_> = (10..30)
            .map(|j| {
                let writer = writer.clone();
                tokio::spawn(async move { (j, writer.submit(j).await) })
            })
            .collect();
        for handle in handles {
            let (j, output) = handle.await.expect("task");
            let expected = if j == 13 {
                Err("bad 13".to_owned())
            } else {
                Ok(j * 2)
            };
            assert_eq!(output, Ok(expected), "job {j}");
        }
        let seen = seen.lock().expect("lock");
        // The lone job went alone, and 20 concurrent jobs took fewer than 20 batches, none
        // larger than the bound.
        assert_eq!(seen[0], vec![1]);
        let batched: usize = seen[1..].iter().map(Vec::len).sum();
        assert_eq!(batched, 20);
        assert!(seen.len() - 1 < 20, "batches: {seen:?}");
        assert!(seen.iter().all(|b| b.len() <= 8), "batches: {seen:?}");
        assert_eq!(writer.batches(), seen.len() as u64);
    }

    #[tokio::test]
    async fn a_panicking_batch_fails_its_requests_and_the_writer_goes_on() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let writer = GroupCommit::spawn(
            "test",
            8,
            Recorder {
                seen: Arc::clone(&seen),
            },
        );
        assert_eq!(writer.submit(99).await, Err(WriterGone));
        assert_eq!(
            writer.submit(2).await,
            Ok(Ok(4)),
            "the next batch is written"
        );
        assert_eq!(writer.batches(), 2);
    }
}
