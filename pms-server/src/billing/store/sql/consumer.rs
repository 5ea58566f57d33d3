//! Applying `patient` topic events: claim the event id (dedup, same transaction), then create the
//! account, refresh its contact details, close (suspend while it owes) or reopen it.

/// Expands the patient-event transaction as an inherent method of `$store`.
macro_rules! sql_consumer {
    ($store:ident, $lock:literal) => {
        impl $store {
            async fn apply_patient_event_tx(
                &self,
                event_id: Uuid,
                patient: &NewAccount,
                change: PatientChange,
                actor: Option<Uuid>,
            ) -> Result<bool, BillingError> {
                let meta = AuditMeta {
                    actor_id: actor,
                    ..AuditMeta::default()
                };
                let mut tx = self.pool.begin_write().await?;
                if !Claim::claim(&mut *tx, CONSUMER_GROUP, event_id).await? {
                    return Ok(false);
                }
                let announced = match change {
                    PatientChange::Created | PatientChange::Updated | PatientChange::Restored => {
                        let created = Self::insert_account(&mut tx, patient, &meta)
                            .await?
                            .is_some();
                        if !created && change != PatientChange::Created {
                            let id: Uuid = sqlx::query_scalar(
                                "UPDATE accounts SET name = $2, email = $3, updated_at = $4 \
                                 WHERE patient_id = $1 RETURNING id",
                            )
                            .bind(patient.patient.as_str())
                            .bind(&patient.contact.name)
                            .bind(&patient.contact.email)
                            .bind(now())
                            .fetch_one(&mut *tx)
                            .await?;
                            let record =
                                success(BillingAction::AccountUpdate, "account", id, id, None);
                            Self::insert_audit(&mut *tx, &record, &meta).await?;
                        }
                        let reopened = if change == PatientChange::Restored && !created {
                            Self::reopen_account(&mut tx, patient, &meta).await?
                        } else {
                            false
                        };
                        created || reopened
                    }
                    PatientChange::Deleted => {
                        let account = sqlx::query_as::<_, AccountRow>(concat!(
                            "SELECT ",
                            account_columns!(),
                            " FROM accounts WHERE patient_id = $1",
                            $lock
                        ))
                        .bind(patient.patient.as_str())
                        .fetch_optional(&mut *tx)
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
                                    Self::change_status(&mut tx, &account, target, &meta).await?;
                                }
                                change
                            }
                            None => false,
                        }
                    }
                };
                tx.commit().await?;
                if announced {
                    self.relay.wake();
                }
                Ok(true)
            }

            /// A restored patient's account becomes ACTIVE again (whether the delete closed or
            /// suspended it); whether its status changed.
            async fn reopen_account(
                tx: &mut Tx,
                patient: &NewAccount,
                meta: &AuditMeta,
            ) -> Result<bool, BillingError> {
                let account = sqlx::query_as::<_, AccountRow>(concat!(
                    "SELECT ",
                    account_columns!(),
                    " FROM accounts WHERE patient_id = $1",
                    $lock
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
    };
}
pub(in crate::billing::store) use sql_consumer;
