//! The payment transactions: recording a payment against an issued invoice and refunding one,
//! in the same shape as [`super::writes`] (lock account → invoice → payment, replay, check, write,
//! book, audit, enqueue, remember, commit).

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
    pub(super) async fn record_payment_tx(
        &self,
        invoice_id: Uuid,
        new: &NewPayment,
        ctx: &WriteContext,
    ) -> Result<Written<Payment>, BillingError> {
        let account_id = self.account_of_invoice(invoice_id).await?;
        let mut tx = B::begin_write(&self.pool).await?;
        let account = Self::lock_account(&mut tx, account_id).await?;
        if let Some(value) = Self::replay(&mut *tx, ctx).await? {
            return Ok(Written {
                value,
                replayed: true,
            });
        }
        let invoice = Self::lock_invoice(&mut tx, invoice_id).await?;
        let status = ledger::check_payment(
            account.status()?,
            invoice.status()?,
            invoice.total,
            invoice.paid,
            new.amount,
        )?;
        let at = now();
        let payment = Payment {
            id: Uuid::now_v7(),
            invoice_id,
            account_id,
            amount: new.amount,
            currency: invoice.currency.clone(),
            method: new.method,
            reference: new.reference.clone(),
            refunded: 0,
            received_at: at,
        };
        sqlx::query(
            "INSERT INTO payments (id, invoice_id, account_id, amount, currency, method, \
             reference, refunded, received_at, recorded_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9)",
        )
        .bind(payment.id)
        .bind(invoice_id)
        .bind(account_id)
        .bind(payment.amount)
        .bind(&payment.currency)
        .bind(payment.method.as_str())
        .bind(payment.reference.as_deref())
        .bind(at)
        .bind(ctx.meta.actor_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE invoices SET paid = paid + $2, status = $3, updated_at = $4 \
             WHERE id = $1",
        )
        .bind(invoice_id)
        .bind(new.amount)
        .bind(status.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let entry = Entry {
            kind: LedgerEntryKind::Payment,
            invoice_id,
            payment_id: Some(payment.id),
            refund_id: None,
            amount: -new.amount,
        };
        Self::book(&mut tx, &account, entry, at).await?;
        let record = success(
            BillingAction::PaymentCreate,
            "payment",
            payment.id,
            account_id,
            Some(new.amount),
        );
        Self::insert_audit(&mut *tx, &record, &ctx.meta).await?;
        let event = BillingEvent {
            event_type: "PAYMENT_RECEIVED".to_owned(),
            account_id: account_id.to_string(),
            patient_id: account.patient_id.clone(),
            invoice_id: invoice_id.to_string(),
            payment_id: payment.id.to_string(),
            amount: payment.amount,
            currency: payment.currency.clone(),
            status: status.as_str().to_owned(),
            actor_id: id_text(ctx.meta.actor_id),
            ..BillingEvent::default()
        };
        Self::emit(&mut tx, event, at).await?;
        Self::remember(&mut tx, ctx, &payment).await?;
        tx.commit().await?;
        self.relay.wake();
        Ok(Written {
            value: payment,
            replayed: false,
        })
    }

    pub(super) async fn refund_payment_tx(
        &self,
        payment_id: Uuid,
        new: &NewRefund,
        ctx: &WriteContext,
    ) -> Result<Written<Refund>, BillingError> {
        let (account_id, invoice_id) = sqlx::query_as::<_, (Uuid, Uuid)>(
            "SELECT account_id, invoice_id FROM payments WHERE id = $1",
        )
        .bind(payment_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(BillingError::NotFound("payment"))?;
        let mut tx = B::begin_write(&self.pool).await?;
        let account = Self::lock_account(&mut tx, account_id).await?;
        if let Some(value) = Self::replay(&mut *tx, ctx).await? {
            return Ok(Written {
                value,
                replayed: true,
            });
        }
        let invoice = Self::lock_invoice(&mut tx, invoice_id).await?;
        let payment = Self::lock_payment(&mut tx, payment_id).await?;
        let amount = ledger::check_refund(payment.amount, payment.refunded, new.amount)?;
        // A refund can only reach a paid (in part or whole) invoice: VOID ones have
        // nothing left to refund, so the status is always recomputed from what is paid.
        let status = ledger::issued_status(invoice.total, invoice.paid - amount);
        let at = now();
        let refund = Refund {
            id: Uuid::now_v7(),
            payment_id,
            invoice_id,
            amount,
            currency: payment.currency.clone(),
            reason: new.reason.clone(),
            created_at: at,
        };
        sqlx::query(
            "INSERT INTO refunds (id, payment_id, invoice_id, account_id, amount, \
             currency, reason, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(refund.id)
        .bind(payment_id)
        .bind(invoice_id)
        .bind(account_id)
        .bind(amount)
        .bind(&refund.currency)
        .bind(refund.reason.as_deref())
        .bind(at)
        .bind(ctx.meta.actor_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE payments SET refunded = refunded + $2 WHERE id = $1")
            .bind(payment_id)
            .bind(amount)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE invoices SET paid = paid - $2, status = $3, updated_at = $4 \
             WHERE id = $1",
        )
        .bind(invoice_id)
        .bind(amount)
        .bind(status.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let entry = Entry {
            kind: LedgerEntryKind::Refund,
            invoice_id,
            payment_id: Some(payment_id),
            refund_id: Some(refund.id),
            amount,
        };
        Self::book(&mut tx, &account, entry, at).await?;
        let record = success(
            BillingAction::RefundCreate,
            "refund",
            refund.id,
            account_id,
            Some(amount),
        );
        Self::insert_audit(&mut *tx, &record, &ctx.meta).await?;
        let event = BillingEvent {
            event_type: "PAYMENT_REFUNDED".to_owned(),
            account_id: account_id.to_string(),
            patient_id: account.patient_id.clone(),
            invoice_id: invoice_id.to_string(),
            payment_id: payment_id.to_string(),
            amount,
            currency: refund.currency.clone(),
            status: status.as_str().to_owned(),
            actor_id: id_text(ctx.meta.actor_id),
            ..BillingEvent::default()
        };
        Self::emit(&mut tx, event, at).await?;
        Self::remember(&mut tx, ctx, &refund).await?;
        tx.commit().await?;
        self.relay.wake();
        Ok(Written {
            value: refund,
            replayed: false,
        })
    }
}
