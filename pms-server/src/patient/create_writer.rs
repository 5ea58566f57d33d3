//! Group commit of patient creates (issue 10): concurrent `POST /patients` hand their validated
//! patient and audit row to one writer task ([`GroupCommit`]), which creates every patient
//! waiting at that moment in one transaction ([`PatientStore::create_many`]): one commit for many
//! creates. Each request still gets exactly what its create alone would have answered (the
//! patient, or a conflict on its email), and only after its patient, version, event and audit
//! row are committed.

use std::sync::Arc;

use async_trait::async_trait;
use pms_proto::rest::Patient;

use super::model::NewPatient;
use super::store::{AuditRecord, PatientStore};
use crate::error::StoreError;
use crate::store::group_commit::{Batch, GroupCommit};

/// Creates in one transaction at most: with 15 parameters a row, the patient insert stays far
/// below SQLite's 32,766 bind parameters.
const MAX_CREATES_PER_BATCH: usize = 256;

/// Creates a batch of patients.
struct Creates(Arc<dyn PatientStore>);

#[async_trait]
impl Batch for Creates {
    type Job = (NewPatient, AuditRecord);
    type Output = Result<Patient, StoreError>;

    async fn write(&self, jobs: &[Self::Job]) -> Vec<Self::Output> {
        self.0.create_many(jobs).await
    }
}

/// Hands creates to the writer task. Cheap to clone; the task ends when every clone is gone.
#[derive(Clone)]
pub struct CreateWriter {
    writer: GroupCommit<Creates>,
}

impl CreateWriter {
    /// Starts the writer task over `store`.
    pub fn spawn(store: Arc<dyn PatientStore>) -> CreateWriter {
        CreateWriter {
            writer: GroupCommit::spawn("patient_create", MAX_CREATES_PER_BATCH, Creates(store)),
        }
    }

    /// Transactions written so far.
    pub fn batches(&self) -> u64 {
        self.writer.batches()
    }

    /// Creates `patient` with `audit` (as [`PatientStore::create`]) once its batch commits.
    pub async fn create(
        &self,
        patient: NewPatient,
        audit: AuditRecord,
    ) -> Result<Patient, StoreError> {
        self.writer
            .submit((patient, audit))
            .await
            .map_err(|_| StoreError::Other(sqlx::Error::WorkerCrashed))?
    }
}
