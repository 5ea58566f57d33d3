//! The billing store's write transactions. Each one: lock (account, then invoice, then payment),
//! replay the Idempotency-Key if it was used, check the ledger rules against the locked rows,
//! write, book the ledger entry, audit, enqueue the `billing` event, remember the key's result,
//! commit, wake the outbox relay. An early return drops the transaction, which rolls it back.

use std::collections::{HashMap, HashSet};

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
    pub(super) async fn ensure_account_tx(
        &self,
        new: &NewAccount,
        meta: &AuditMeta,
    ) -> Result<(BillingAccount, bool), BillingError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let (row, inserted) = match Self::insert_account(&mut tx, new, meta).await? {
            Some(row) => (row, true),
            None => {
                let row = sqlx::query_as::<_, AccountRow>(concat!(
                    "SELECT ",
                    account_columns!(),
                    " FROM accounts WHERE patient_id = $1"
                ))
                .bind(new.patient.as_str())
                .fetch_one(&mut *tx)
                .await?;
                (row, false)
            }
        };
        tx.commit().await?;
        if inserted {
            self.relay.wake();
        }
        Ok((row.into_api()?, inserted))
    }

    /// [`Self::ensure_account_tx`] for many patients in one transaction: the accounts created
    /// with [`Self::insert_accounts`], the existing ones read back in one statement.
    pub(super) async fn ensure_accounts_tx(
        &self,
        requests: &[(NewAccount, AuditMeta)],
    ) -> Result<Vec<(BillingAccount, bool)>, BillingError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let wanted: Vec<(&NewAccount, &AuditMeta)> =
            requests.iter().map(|(new, meta)| (new, meta)).collect();
        let created = Self::insert_accounts(&mut tx, &wanted).await?;
        let mut accounts: HashMap<String, (AccountRow, bool)> = created
            .into_iter()
            .map(|row| (row.patient_id.clone(), (row, true)))
            .collect();
        let missing: Vec<&str> = requests
            .iter()
            .map(|(new, _)| new.patient.as_str())
            .filter(|patient| !accounts.contains_key(*patient))
            .collect();
        if !missing.is_empty() {
            let mut existing = SqlBuilder::<B>::new(concat!(
                "SELECT ",
                account_columns!(),
                " FROM accounts WHERE patient_id IN ("
            ));
            for (i, patient) in missing.iter().enumerate() {
                existing
                    .push(if i == 0 { "" } else { ", " })
                    .push_bind((*patient).to_owned());
            }
            existing.push(")");
            let (sql, args) = existing.into_parts()?;
            for row in sqlx::query_as_with::<_, AccountRow, _>(&sql, args)
                .persistent(false)
                .fetch_all(&mut *tx)
                .await?
            {
                accounts
                    .entry(row.patient_id.clone())
                    .or_insert((row, false));
            }
        }
        // The answers are built before the commit: once it succeeded nothing may send the
        // requests to the one-by-one fallback (which would report the new accounts as existing).
        // The first request of a patient reports the creation; the others see an existing account.
        let mut reported = HashSet::with_capacity(requests.len());
        let answers = requests
            .iter()
            .map(|(new, _)| {
                let (row, inserted) = accounts
                    .get(new.patient.as_str())
                    .ok_or(BillingError::NotFound("account"))?;
                let first = reported.insert(new.patient.as_str());
                Ok((row.clone().into_api()?, *inserted && first))
            })
            .collect::<Result<Vec<_>, BillingError>>()?;
        let announced = accounts.values().any(|(_, created)| *created);
        tx.commit().await?;
        if announced {
            self.relay.wake();
        }
        Ok(answers)
    }

    pub(super) async fn set_account_status_tx(
        &self,
        id: Uuid,
        status: AccountStatus,
        meta: &AuditMeta,
    ) -> Result<BillingAccount, BillingError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let account = Self::lock_account(&mut tx, id).await?;
        let from = account.status()?;
        ledger::check_account_status(from, status, account.balance)?;
        if from != status {
            Self::change_status(&mut tx, &account, status, meta).await?;
        }
        let row = Self::lock_account(&mut tx, id).await?;
        tx.commit().await?;
        if from != status {
            self.relay.wake();
        }
        Ok(row.into_api()?)
    }

    /// Sets the locked account's status; audited and announced (ACCOUNT_CLOSED or
    /// ACCOUNT_UPDATED).
    pub(super) async fn change_status(
        tx: &mut Tx<B>,
        account: &AccountRow,
        status: AccountStatus,
        meta: &AuditMeta,
    ) -> Result<(), BillingError> {
        let at = now();
        sqlx::query("UPDATE accounts SET status = $2, updated_at = $3 WHERE id = $1")
            .bind(account.id)
            .bind(status.as_str())
            .bind(at)
            .execute(&mut **tx)
            .await?;
        let id = account.id;
        let record = success(BillingAction::AccountUpdate, "account", id, id, None);
        Self::insert_audit(&mut **tx, &record, meta).await?;
        let event_type = match status {
            AccountStatus::Closed => "ACCOUNT_CLOSED",
            _ => "ACCOUNT_UPDATED",
        };
        let event = BillingEvent {
            event_type: event_type.to_owned(),
            account_id: id.to_string(),
            patient_id: account.patient_id.clone(),
            status: status.as_str().to_owned(),
            actor_id: id_text(meta.actor_id),
            ..BillingEvent::default()
        };
        Self::emit(tx, event, at).await
    }

    pub(super) async fn create_invoice_tx(
        &self,
        account_id: Uuid,
        new: &NewInvoice,
        ctx: &WriteContext,
    ) -> Result<Written<Invoice>, BillingError> {
        let mut tx = B::begin_write(&self.pool).await?;
        let account = Self::lock_account(&mut tx, account_id).await?;
        if let Some(value) = Self::replay(&mut *tx, ctx).await? {
            return Ok(Written {
                value,
                replayed: true,
            });
        }
        let fixes_currency = ledger::check_new_invoice(
            account.status()?,
            account.currency.as_deref(),
            new.currency.as_str(),
        )?;
        let at = now();
        if fixes_currency {
            sqlx::query("UPDATE accounts SET currency = $2, updated_at = $3 WHERE id = $1")
                .bind(account_id)
                .bind(new.currency.as_str())
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        // The counter row stays locked until commit: numbers are gapless and in order.
        let number: i64 = sqlx::query_scalar(
            "UPDATE invoice_number_seq SET last = last + 1 WHERE id = 1 RETURNING last",
        )
        .fetch_one(&mut *tx)
        .await?;
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO invoices (id, number, account_id, status, currency, total, paid, \
             due_date, created_at, updated_at, created_by) \
             VALUES ($1, $2, $3, 'DRAFT', $4, $5, 0, $6, $7, $7, $8)",
        )
        .bind(id)
        .bind(number)
        .bind(account_id)
        .bind(new.currency.as_str())
        .bind(new.total)
        .bind(new.due_date)
        .bind(at)
        .bind(ctx.meta.actor_id)
        .execute(&mut *tx)
        .await?;
        for (position, line) in (0i32..).zip(&new.lines) {
            sqlx::query(
                "INSERT INTO invoice_lines \
                 (invoice_id, position, description, quantity, unit_price, amount) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(position)
            .bind(&line.description)
            .bind(line.quantity)
            .bind(line.unit_price)
            .bind(line.amount)
            .execute(&mut *tx)
            .await?;
        }
        let invoice = Self::reload_invoice(&mut tx, id).await?;
        let record = success(
            BillingAction::InvoiceCreate,
            "invoice",
            id,
            account_id,
            Some(new.total),
        );
        Self::insert_audit(&mut *tx, &record, &ctx.meta).await?;
        Self::remember(&mut tx, ctx, &invoice).await?;
        tx.commit().await?;
        Ok(Written {
            value: invoice,
            replayed: false,
        })
    }

    pub(super) async fn issue_invoice_tx(
        &self,
        id: Uuid,
        ctx: &WriteContext,
    ) -> Result<Written<Invoice>, BillingError> {
        let account_id = self.account_of_invoice(id).await?;
        let mut tx = B::begin_write(&self.pool).await?;
        let account = Self::lock_account(&mut tx, account_id).await?;
        if let Some(value) = Self::replay(&mut *tx, ctx).await? {
            return Ok(Written {
                value,
                replayed: true,
            });
        }
        let invoice = Self::lock_invoice(&mut tx, id).await?;
        ledger::check_issue(account.status()?, invoice.status()?)?;
        let at = now();
        sqlx::query(
            "UPDATE invoices SET status = 'ISSUED', issued_at = $2, updated_at = $2 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let entry = Entry {
            kind: LedgerEntryKind::InvoiceIssued,
            invoice_id: id,
            payment_id: None,
            refund_id: None,
            amount: invoice.total,
        };
        Self::book(&mut tx, &account, entry, at).await?;
        let value = Self::reload_invoice(&mut tx, id).await?;
        let record = success(
            BillingAction::InvoiceIssue,
            "invoice",
            id,
            account_id,
            Some(invoice.total),
        );
        Self::insert_audit(&mut *tx, &record, &ctx.meta).await?;
        let event = BillingEvent {
            event_type: "INVOICE_ISSUED".to_owned(),
            account_id: account_id.to_string(),
            patient_id: account.patient_id.clone(),
            invoice_id: id.to_string(),
            amount: invoice.total,
            currency: invoice.currency.clone(),
            status: value.status.as_str().to_owned(),
            actor_id: id_text(ctx.meta.actor_id),
            ..BillingEvent::default()
        };
        Self::emit(&mut tx, event, at).await?;
        Self::remember(&mut tx, ctx, &value).await?;
        tx.commit().await?;
        self.relay.wake();
        Ok(Written {
            value,
            replayed: false,
        })
    }

    pub(super) async fn void_invoice_tx(
        &self,
        id: Uuid,
        ctx: &WriteContext,
    ) -> Result<Written<Invoice>, BillingError> {
        let account_id = self.account_of_invoice(id).await?;
        let mut tx = B::begin_write(&self.pool).await?;
        let account = Self::lock_account(&mut tx, account_id).await?;
        if let Some(value) = Self::replay(&mut *tx, ctx).await? {
            return Ok(Written {
                value,
                replayed: true,
            });
        }
        let invoice = Self::lock_invoice(&mut tx, id).await?;
        let was_issued = ledger::check_void(invoice.status()?, invoice.paid)?;
        let at = now();
        sqlx::query(
            "UPDATE invoices SET status = 'VOID', voided_at = $2, updated_at = $2 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if was_issued {
            let entry = Entry {
                kind: LedgerEntryKind::InvoiceVoided,
                invoice_id: id,
                payment_id: None,
                refund_id: None,
                amount: -invoice.total,
            };
            Self::book(&mut tx, &account, entry, at).await?;
            // Only an issued total was ever announced, so only its reversal is.
            let event = BillingEvent {
                event_type: "INVOICE_VOIDED".to_owned(),
                account_id: account_id.to_string(),
                patient_id: account.patient_id.clone(),
                invoice_id: id.to_string(),
                amount: invoice.total,
                currency: invoice.currency.clone(),
                status: "VOID".to_owned(),
                actor_id: id_text(ctx.meta.actor_id),
                ..BillingEvent::default()
            };
            Self::emit(&mut tx, event, at).await?;
        }
        let value = Self::reload_invoice(&mut tx, id).await?;
        let record = success(BillingAction::InvoiceVoid, "invoice", id, account_id, None);
        Self::insert_audit(&mut *tx, &record, &ctx.meta).await?;
        Self::remember(&mut tx, ctx, &value).await?;
        tx.commit().await?;
        if was_issued {
            self.relay.wake();
        }
        Ok(Written {
            value,
            replayed: false,
        })
    }
}
