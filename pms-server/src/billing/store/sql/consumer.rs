//! Applying `patient` topic events: claim the event id (dedup, same transaction), then create the
//! account, refresh its contact details, close (suspend while it owes) or reopen it.

use super::prelude::*;

impl<B> SqlBillingStore<B>
where
    B: Backend,
    B::Connection: Enqueue + Claim,
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> B::Arguments<'q>: IntoArguments<'q, B>,
    for<'q> Uuid: Param<'q, B>,
    for<'q> Option<Uuid>: Param<'q, B>,
    for<'q> i32: Param<'q, B>,
    for<'q> i64: Param<'q, B>,
    for<'q> Option<i64>: Param<'q, B>,
    for<'q> &'q str: Param<'q, B>,
    for<'q> Option<&'q str>: Param<'q, B>,
    for<'q> String: Param<'q, B>,
    for<'q> Option<String>: Param<'q, B>,
    for<'q> DateTime<Utc>: Param<'q, B>,
    for<'q> Option<NaiveDate>: Param<'q, B>,
    AccountRow: Fetched<B>,
    InvoiceRow: Fetched<B>,
    PaymentRow: Fetched<B>,
    LineRow: Fetched<B>,
    EntryRow: Fetched<B>,
    AuditRow: Fetched<B>,
    (i64,): Fetched<B>,
    (Uuid,): Fetched<B>,
    (String, String): Fetched<B>,
    (Uuid, Uuid): Fetched<B>,
{
    pub(super) async fn apply_patient_event_tx(
        &self,
        event_id: Uuid,
        patient: &NewAccount,
        change: PatientChange,
        actor: Option<Uuid>,
    ) -> Result<bool, BillingError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let Some(announced) = Self::apply_in(&mut tx, event_id, patient, change, actor).await?
        else {
            return Ok(false);
        };
        tx.commit().await?;
        if announced {
            self.relay.wake();
        }
        Ok(true)
    }

    /// Several events in order in one transaction (one commit for a consumer's whole batch).
    pub(super) async fn apply_patient_events_tx(
        &self,
        events: &[ConsumedPatientEvent],
    ) -> Result<usize, BillingError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let mut claimed = Claim::claim_all(&mut *tx, CONSUMER_GROUP, &ids).await?;
        // Every creation of the batch goes first, in one statement: a patient's PATIENT_CREATED
        // is its first event, so its later changes still apply after it, and the transaction
        // inserts accounts with one statement only — in patient order, like a batch of
        // `CreateBillingAccount` calls, so the two cannot deadlock on each other's new rows.
        let fresh: Vec<(&ConsumedPatientEvent, AuditMeta)> = events
            .iter()
            // `remove`: an event twice in the batch applies once.
            .filter(|e| claimed.remove(&e.event_id))
            .map(|e| {
                let meta = AuditMeta {
                    actor_id: e.actor,
                    ..AuditMeta::default()
                };
                (e, meta)
            })
            .collect();
        let creations: Vec<(&NewAccount, &AuditMeta)> = fresh
            .iter()
            .filter(|(e, _)| e.change == PatientChange::Created)
            .map(|(e, meta)| (&e.account, meta))
            .collect();
        let mut announced = !Self::insert_accounts(&mut tx, &creations).await?.is_empty();
        for (e, meta) in fresh
            .iter()
            .filter(|(e, _)| e.change != PatientChange::Created)
        {
            announced |= Self::apply_change(&mut tx, &e.account, e.change, meta).await?;
        }
        let applied = fresh.len();
        tx.commit().await?;
        if announced {
            self.relay.wake();
        }
        Ok(applied)
    }

    /// One event inside `tx`: `None` when its id was already claimed (a redelivery), else whether
    /// it wrote a billing event to the outbox.
    async fn apply_in(
        tx: &mut Tx<B>,
        event_id: Uuid,
        patient: &NewAccount,
        change: PatientChange,
        actor: Option<Uuid>,
    ) -> Result<Option<bool>, BillingError> {
        let meta = AuditMeta {
            actor_id: actor,
            ..AuditMeta::default()
        };
        if !Claim::claim(&mut **tx, CONSUMER_GROUP, event_id).await? {
            return Ok(None);
        }
        Self::apply_change(tx, patient, change, &meta)
            .await
            .map(Some)
    }

    /// The effect of one claimed event inside `tx`: whether it wrote a billing event to the
    /// outbox.
    async fn apply_change(
        tx: &mut Tx<B>,
        patient: &NewAccount,
        change: PatientChange,
        meta: &AuditMeta,
    ) -> Result<bool, BillingError> {
        let meta = meta.clone();
        let announced = match change {
            PatientChange::Created | PatientChange::Updated | PatientChange::Restored => {
                let created = Self::insert_account(tx, patient, &meta).await?.is_some();
                if !created && change != PatientChange::Created {
                    let id: Uuid = sqlx::query_scalar(
                        "UPDATE accounts SET name = $2, email = $3, updated_at = $4 \
                         WHERE patient_id = $1 RETURNING id",
                    )
                    .bind(patient.patient.as_str())
                    .bind(&patient.contact.name)
                    .bind(&patient.contact.email)
                    .bind(now())
                    .fetch_one(&mut **tx)
                    .await?;
                    let record = success(BillingAction::AccountUpdate, "account", id, id, None);
                    Self::insert_audit(&mut **tx, &record, &meta).await?;
                }
                let reopened = if change == PatientChange::Restored && !created {
                    Self::reopen_account(tx, patient, &meta).await?
                } else {
                    false
                };
                created || reopened
            }
            PatientChange::Deleted => {
                let account = sqlx::query_as::<_, AccountRow>(&format!(
                    "SELECT {} FROM accounts WHERE patient_id = $1{}",
                    account_columns!(),
                    B::LOCK_ROWS
                ))
                .bind(patient.patient.as_str())
                .fetch_optional(&mut **tx)
                .await?;
                match account {
                    Some(account) => {
                        let current = account.status()?;
                        // An account that still owes stays collectible, but takes no new
                        // invoices.
                        let target = if account.balance == 0 {
                            AccountStatus::Closed
                        } else {
                            AccountStatus::Suspended
                        };
                        let change = current != AccountStatus::Closed && current != target;
                        if change {
                            Self::change_status(tx, &account, target, &meta).await?;
                        }
                        change
                    }
                    None => false,
                }
            }
        };
        Ok(announced)
    }

    /// A restored patient's account becomes ACTIVE again (whether the delete closed or suspended
    /// it); whether its status changed.
    async fn reopen_account(
        tx: &mut Tx<B>,
        patient: &NewAccount,
        meta: &AuditMeta,
    ) -> Result<bool, BillingError> {
        let account = sqlx::query_as::<_, AccountRow>(&format!(
            "SELECT {} FROM accounts WHERE patient_id = $1{}",
            account_columns!(),
            B::LOCK_ROWS
        ))
        .bind(patient.patient.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        match account {
            Some(account) if account.status()? != AccountStatus::Active => {
                Self::change_status(tx, &account, AccountStatus::Active, meta).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
