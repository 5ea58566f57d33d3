//! Group commit of `CreateBillingAccount` (issue 10): every patient create asks billing for its
//! account right after committing, so under load many calls arrive together. They hand their
//! request to one writer task ([`GroupCommit`]), which ensures every account waiting at that
//! moment in one transaction ([`BillingStore::ensure_accounts`]) — one commit for many calls —
//! and answers each call with what it alone would have got.

use std::sync::Arc;

use async_trait::async_trait;
use pms_proto::rest::BillingAccount;

use super::model::NewAccount;
use super::store::{AuditMeta, BillingError, BillingStore};
use crate::error::StoreError;
use crate::store::group_commit::{Batch, GroupCommit};

/// Calls in one transaction at most (nine parameters an account row).
const MAX_CALLS_PER_BATCH: usize = 256;

/// Ensures a batch of accounts.
struct Accounts(Arc<dyn BillingStore>);

#[async_trait]
impl Batch for Accounts {
    type Job = (NewAccount, AuditMeta);
    type Output = Result<(BillingAccount, bool), BillingError>;

    async fn write(&self, jobs: &[Self::Job]) -> Vec<Self::Output> {
        self.0.ensure_accounts(jobs).await
    }
}

/// Hands account requests to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct AccountWriter {
    writer: GroupCommit<Accounts>,
}

impl AccountWriter {
    /// Starts the writer task over `store`.
    pub fn spawn(store: Arc<dyn BillingStore>) -> AccountWriter {
        AccountWriter {
            writer: GroupCommit::spawn("billing_account", MAX_CALLS_PER_BATCH, Accounts(store)),
        }
    }

    /// [`BillingStore::ensure_account`], once its batch commits.
    pub async fn ensure(
        &self,
        new: NewAccount,
        meta: AuditMeta,
    ) -> Result<(BillingAccount, bool), BillingError> {
        self.writer
            .submit((new, meta))
            .await
            .map_err(|_| BillingError::Store(StoreError::Other(sqlx::Error::WorkerCrashed)))?
    }
}
