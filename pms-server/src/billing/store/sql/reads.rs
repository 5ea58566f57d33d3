//! The billing store's queries: accounts, invoice lists, payments, statements and the audit log.
//! None takes a lock; a statement is read in one transaction so its entries and totals agree.

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
    pub(super) async fn account_row(&self, id: Uuid) -> Result<AccountRow, BillingError> {
        sqlx::query_as::<_, AccountRow>(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(BillingError::NotFound("account"))
    }

    pub(super) async fn account_rows(
        &self,
        limit: i64,
    ) -> Result<Vec<BillingAccount>, BillingError> {
        let rows = sqlx::query_as::<_, AccountRow>(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| r.into_api().map_err(BillingError::from))
            .collect()
    }

    pub(super) async fn account_row_by_patient(
        &self,
        patient: &PatientRef,
    ) -> Result<AccountRow, BillingError> {
        sqlx::query_as::<_, AccountRow>(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE patient_id = $1"
        ))
        .bind(patient.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(BillingError::NotFound("account"))
    }

    pub(super) async fn invoices_of(
        &self,
        account_id: Uuid,
        limit: i64,
    ) -> Result<Vec<Invoice>, BillingError> {
        // Existence first, so an unknown account is a 404 rather than an empty list.
        self.account_row(account_id).await?;
        let rows = sqlx::query_as::<_, InvoiceRow>(concat!(
            "SELECT ",
            invoice_columns!(),
            " FROM invoices WHERE account_id = $1 ORDER BY number DESC LIMIT $2"
        ))
        .bind(account_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let Some(oldest) = rows.last().map(|r| r.number) else {
            return Ok(Vec::new());
        };
        let lines = sqlx::query_as::<_, LineRow>(
            "SELECT l.invoice_id, l.description, l.quantity, l.unit_price, l.amount \
             FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id \
             WHERE i.account_id = $1 AND i.number >= $2 \
             ORDER BY i.number, l.position",
        )
        .bind(account_id)
        .bind(oldest)
        .fetch_all(&self.pool)
        .await?;
        let mut lines = group_lines(lines);
        rows.into_iter()
            .map(|row| {
                let own = lines.remove(&row.id).unwrap_or_default();
                row.into_api(own).map_err(BillingError::from)
            })
            .collect()
    }

    pub(super) async fn payment_by_id(&self, id: Uuid) -> Result<Payment, BillingError> {
        sqlx::query_as::<_, PaymentRow>(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(BillingError::NotFound("payment"))?
        .into_api()
        .map_err(Into::into)
    }

    pub(super) async fn payments_of(&self, invoice_id: Uuid) -> Result<Vec<Payment>, BillingError> {
        self.account_of_invoice(invoice_id).await?;
        let rows = sqlx::query_as::<_, PaymentRow>(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE invoice_id = $1 ORDER BY id"
        ))
        .bind(invoice_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| r.into_api().map_err(BillingError::from))
            .collect()
    }

    pub(super) async fn statement_of(&self, account_id: Uuid) -> Result<Statement, BillingError> {
        let mut tx = self.pool.begin().await?;
        let account = sqlx::query_as::<_, AccountRow>(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE id = $1"
        ))
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(BillingError::NotFound("account"))?;
        let rows = sqlx::query_as::<_, EntryRow>(
            "SELECT e.seq, e.occurred_at, e.kind, e.invoice_id, i.number, e.payment_id, \
             e.refund_id, e.amount, e.balance_after \
             FROM ledger_entries e JOIN invoices i ON i.id = e.invoice_id \
             WHERE e.account_id = $1 ORDER BY e.seq",
        )
        .bind(account_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let entries = rows
            .into_iter()
            .map(EntryRow::into_api)
            .collect::<Result<Vec<_>, _>>()?;
        let (mut invoiced, mut paid, mut refunded) = (0i64, 0i64, 0i64);
        for entry in &entries {
            match entry.kind {
                LedgerEntryKind::InvoiceIssued | LedgerEntryKind::InvoiceVoided => {
                    invoiced += entry.amount
                }
                LedgerEntryKind::Payment => paid -= entry.amount,
                LedgerEntryKind::Refund => refunded += entry.amount,
            }
        }
        Ok(Statement {
            account_id,
            currency: account.currency,
            invoiced,
            paid,
            refunded,
            balance: account.balance,
            entries,
        })
    }

    pub(super) async fn audit_rows(
        &self,
        account_id: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<BillingAuditEntry>, StoreError> {
        // The patient id comes from the account, so rows never duplicate it.
        const COLUMNS: &str = "SELECT l.id, l.occurred_at, l.actor_id, l.actor_role, \
            l.action, l.resource, l.resource_id, l.account_id, a.patient_id, l.amount, \
            l.outcome, l.client_ip, l.request_id \
            FROM audit_log l LEFT JOIN accounts a ON a.id = l.account_id";
        let rows = match account_id {
            Some(account_id) => {
                sqlx::query_as::<_, AuditRow>(&format!(
                    "{COLUMNS} WHERE l.account_id = $1 ORDER BY l.id DESC LIMIT $2"
                ))
                .bind(account_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query_as::<_, AuditRow>(&format!("{COLUMNS} ORDER BY l.id DESC LIMIT $1"))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
        }?;
        Ok(rows.into_iter().map(AuditRow::into_api).collect())
    }
}
