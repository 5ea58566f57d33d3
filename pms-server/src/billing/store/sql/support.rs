//! Helpers every billing transaction uses: row locks, loading an invoice with its lines,
//! Idempotency-Key lookup/storage (and settling a lost race for a key), booking a ledger entry
//! with the running balance, creating an account, outbox events and audit rows.

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
    pub(super) async fn lock_account(tx: &mut Tx<B>, id: Uuid) -> Result<AccountRow, BillingError> {
        sqlx::query_as::<_, AccountRow>(&format!(
            "SELECT {} FROM accounts WHERE id = $1{}",
            account_columns!(),
            B::LOCK_ROWS
        ))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(BillingError::NotFound("account"))
    }

    pub(super) async fn lock_invoice(tx: &mut Tx<B>, id: Uuid) -> Result<InvoiceRow, BillingError> {
        sqlx::query_as::<_, InvoiceRow>(&format!(
            "SELECT {} FROM invoices WHERE id = $1{}",
            invoice_columns!(),
            B::LOCK_ROWS
        ))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(BillingError::NotFound("invoice"))
    }

    pub(super) async fn lock_payment(tx: &mut Tx<B>, id: Uuid) -> Result<PaymentRow, BillingError> {
        sqlx::query_as::<_, PaymentRow>(&format!(
            "SELECT {} FROM payments WHERE id = $1{}",
            payment_columns!(),
            B::LOCK_ROWS
        ))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(BillingError::NotFound("payment"))
    }

    /// The invoice with its lines, as `exec` sees it.
    pub(super) async fn load_invoice<'e, E>(exec: E, id: Uuid) -> Result<Invoice, BillingError>
    where
        E: sqlx::Executor<'e, Database = B> + Copy,
    {
        let row = sqlx::query_as::<_, InvoiceRow>(concat!(
            "SELECT ",
            invoice_columns!(),
            " FROM invoices WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(exec)
        .await?
        .ok_or(BillingError::NotFound("invoice"))?;
        let lines = sqlx::query_as::<_, LineRow>(
            "SELECT invoice_id, description, quantity, unit_price, amount \
             FROM invoice_lines WHERE invoice_id = $1 ORDER BY position",
        )
        .bind(id)
        .fetch_all(exec)
        .await?;
        Ok(row.into_api(lines.into_iter().map(LineRow::into_api).collect())?)
    }

    /// [`Self::load_invoice`] inside a transaction.
    pub(super) async fn reload_invoice(tx: &mut Tx<B>, id: Uuid) -> Result<Invoice, BillingError> {
        let row = Self::lock_invoice(tx, id).await?;
        let lines = sqlx::query_as::<_, LineRow>(
            "SELECT invoice_id, description, quantity, unit_price, amount \
             FROM invoice_lines WHERE invoice_id = $1 ORDER BY position",
        )
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
        Ok(row.into_api(lines.into_iter().map(LineRow::into_api).collect())?)
    }

    /// The account an invoice belongs to. It never changes, so it is read without a
    /// lock, before the account is locked.
    pub(super) async fn account_of_invoice(&self, id: Uuid) -> Result<Uuid, BillingError> {
        sqlx::query_scalar::<_, Uuid>("SELECT account_id FROM invoices WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(BillingError::NotFound("invoice"))
    }

    /// The stored result of `ctx`'s Idempotency-Key, if the key was used before; a key
    /// used with a different request is [`BillingError::IdempotencyMismatch`].
    pub(super) async fn replay<'e, E, T>(
        exec: E,
        ctx: &WriteContext,
    ) -> Result<Option<T>, BillingError>
    where
        E: sqlx::Executor<'e, Database = B>,
        T: DeserializeOwned,
    {
        let Some(claim) = &ctx.idempotency else {
            return Ok(None);
        };
        let stored = sqlx::query_as::<_, (String, String)>(
            "SELECT request_hash, response FROM idempotency_keys \
             WHERE actor_id = $1 AND idem_key = $2",
        )
        .bind(claim.actor_id)
        .bind(&claim.key)
        .fetch_optional(exec)
        .await?;
        match stored {
            None => Ok(None),
            Some((hash, _)) if hash != claim.request_hash => Err(BillingError::IdempotencyMismatch),
            Some((_, response)) => serde_json::from_str(&response)
                .map(Some)
                .map_err(decode_json),
        }
    }

    /// Stores `value` as the result of `ctx`'s Idempotency-Key (same transaction as the
    /// write it describes).
    pub(super) async fn remember<T: Serialize>(
        tx: &mut Tx<B>,
        ctx: &WriteContext,
        value: &T,
    ) -> Result<(), BillingError> {
        let Some(claim) = &ctx.idempotency else {
            return Ok(());
        };
        let response = serde_json::to_string(value).map_err(decode_json)?;
        sqlx::query(
            "INSERT INTO idempotency_keys \
             (actor_id, idem_key, request_hash, response, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(claim.actor_id)
        .bind(&claim.key)
        .bind(&claim.request_hash)
        .bind(response)
        .bind(now())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// A write that lost the race for its Idempotency-Key to a concurrent request with
    /// the same key (on another account, so not serialised by the account lock) answers
    /// with that request's result, or 422 if it was a different request.
    pub(super) async fn settle<T: DeserializeOwned>(
        &self,
        result: Result<Written<T>, BillingError>,
        ctx: &WriteContext,
    ) -> Result<Written<T>, BillingError> {
        if !is_key_race(&result) {
            return result;
        }
        match Self::replay(&self.pool, ctx).await? {
            Some(value) => Ok(Written {
                value,
                replayed: true,
            }),
            None => result,
        }
    }

    /// Appends `entry` to the locked account's ledger and moves its balance. Returns the
    /// new balance.
    pub(super) async fn book(
        tx: &mut Tx<B>,
        account: &AccountRow,
        entry: Entry,
        at: DateTime<Utc>,
    ) -> Result<i64, BillingError> {
        let seq: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM ledger_entries WHERE account_id = $1",
        )
        .bind(account.id)
        .fetch_one(&mut **tx)
        .await?;
        let balance = account.balance + entry.amount;
        sqlx::query(
            "INSERT INTO ledger_entries (id, account_id, seq, kind, invoice_id, \
             payment_id, refund_id, amount, balance_after, occurred_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(Uuid::now_v7())
        .bind(account.id)
        .bind(seq)
        .bind(entry.kind.as_str())
        .bind(entry.invoice_id)
        .bind(entry.payment_id)
        .bind(entry.refund_id)
        .bind(entry.amount)
        .bind(balance)
        .bind(at)
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE accounts SET balance = $2, updated_at = $3 WHERE id = $1")
            .bind(account.id)
            .bind(balance)
            .bind(at)
            .execute(&mut **tx)
            .await?;
        Ok(balance)
    }

    /// Enqueues a `billing` topic event in the transaction (published after commit).
    pub(super) async fn emit(
        tx: &mut Tx<B>,
        event: BillingEvent,
        at: DateTime<Utc>,
    ) -> Result<(), BillingError> {
        Enqueue::enqueue(&mut **tx, &billing_event(event, at)).await?;
        Ok(())
    }

    /// [`Self::insert_account`] for many patients with one statement each (the accounts, their
    /// audit rows, their ACCOUNT_CREATED events), inside `tx`: a patient's first entry creates
    /// its account unless one exists. Returns the created accounts.
    ///
    /// The rows go in patient order: two such transactions (a batch of calls, a consumer's run
    /// of creations) waiting on each other's new rows would deadlock if they inserted the same
    /// patients in different orders (PostgreSQL breaks a deadlock only after
    /// `deadlock_timeout`, a second, by failing one — which then retries one by one).
    pub(super) async fn insert_accounts(
        tx: &mut Tx<B>,
        wanted: &[(&NewAccount, &AuditMeta)],
    ) -> Result<Vec<AccountRow>, BillingError> {
        let at = now();
        let mut firsts = std::collections::HashSet::with_capacity(wanted.len());
        let new: Vec<(Uuid, &NewAccount, &AuditMeta)> = wanted
            .iter()
            .filter(|(new, _)| firsts.insert(new.patient.as_str()))
            .map(|(new, meta)| (Uuid::now_v7(), *new, *meta))
            .collect();
        if new.is_empty() {
            return Ok(Vec::new());
        }
        // Inserted in patient order (see above); audited and announced in the callers' order.
        let mut in_patient_order: Vec<&(Uuid, &NewAccount, &AuditMeta)> = new.iter().collect();
        in_patient_order.sort_unstable_by(|a, b| a.1.patient.as_str().cmp(b.1.patient.as_str()));
        let mut insert = SqlBuilder::<B>::new(
            "INSERT INTO accounts (id, patient_id, name, email, status, currency, balance, \
             created_at, updated_at) ",
        );
        insert.push_values(in_patient_order, |row, (id, new, _)| {
            row.push_bind(*id)
                .push_bind(new.patient.as_str().to_owned())
                .push_bind(new.contact.name.clone())
                .push_bind(new.contact.email.clone())
                .push_bind("ACTIVE")
                .push_bind(None::<String>)
                .push_bind(0_i64)
                .push_bind(at)
                .push_bind(at);
        });
        insert.push(concat!(
            " ON CONFLICT (patient_id) DO NOTHING RETURNING ",
            account_columns!()
        ));
        let (sql, args) = insert.into_parts()?;
        let created: Vec<AccountRow> = sqlx::query_as_with::<_, AccountRow, _>(&sql, args)
            .persistent(new.len() == 1)
            .fetch_all(&mut **tx)
            .await?;
        let ids: std::collections::HashSet<Uuid> = created.iter().map(|row| row.id).collect();
        let new: Vec<&(Uuid, &NewAccount, &AuditMeta)> =
            new.iter().filter(|(id, _, _)| ids.contains(id)).collect();
        let records: Vec<AuditRecord> = new
            .iter()
            .map(|(id, _, _)| success(BillingAction::AccountCreate, "account", *id, *id, None))
            .collect();
        let audits: Vec<(&AuditRecord, &AuditMeta)> = records
            .iter()
            .zip(&new)
            .map(|(record, (_, _, meta))| (record, *meta))
            .collect();
        Self::insert_audit_rows(&mut **tx, &audits).await?;
        let events: Vec<_> = new
            .iter()
            .map(|(id, account, meta)| super::account_created(*id, account, meta, at))
            .collect();
        Enqueue::enqueue_many(&mut **tx, &events).await?;
        Ok(created)
    }

    /// Inserts the patient's ACTIVE account unless one exists; a creation is audited and
    /// announced (ACCOUNT_CREATED). Returns the created account (none: it existed).
    /// Concurrent first calls for one patient: the loser inserts nothing (PostgreSQL
    /// waits for the winner's commit; SQLite serialises writers).
    pub(super) async fn insert_account(
        tx: &mut Tx<B>,
        new: &NewAccount,
        meta: &AuditMeta,
    ) -> Result<Option<AccountRow>, BillingError> {
        // RETURNING: a creation needs no second statement to read the account back.
        Ok(Self::insert_accounts(tx, &[(new, meta)]).await?.pop())
    }

    pub(super) async fn insert_audit<'e, E>(
        exec: E,
        record: &AuditRecord,
        meta: &AuditMeta,
    ) -> Result<(), sqlx::Error>
    where
        E: sqlx::Executor<'e, Database = B>,
    {
        Self::insert_audits(exec, std::slice::from_ref(record), meta).await
    }

    /// Audit rows of one request, in one statement. The request id and client address
    /// were bounded at the edge (`request_meta`).
    pub(super) async fn insert_audits<'e, E>(
        exec: E,
        records: &[AuditRecord],
        meta: &AuditMeta,
    ) -> Result<(), sqlx::Error>
    where
        E: sqlx::Executor<'e, Database = B>,
    {
        let rows: Vec<_> = records.iter().map(|record| (record, meta)).collect();
        Self::insert_audit_rows(exec, &rows).await
    }

    /// Audit rows of many requests (each with its own caller), in one statement.
    pub(super) async fn insert_audit_rows<'e, E>(
        exec: E,
        rows: &[(&AuditRecord, &AuditMeta)],
    ) -> Result<(), sqlx::Error>
    where
        E: sqlx::Executor<'e, Database = B>,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let at = now();
        let mut sql = SqlBuilder::<B>::new(
            "INSERT INTO audit_log (id, occurred_at, actor_id, actor_role, action, \
             resource, resource_id, account_id, amount, outcome, client_ip, request_id) ",
        );
        sql.push_values(rows, |row, (record, meta)| {
            row.push_bind(Uuid::now_v7())
                .push_bind(at)
                .push_bind(meta.actor_id)
                .push_bind(meta.role_str())
                .push_bind(record.action.name())
                .push_bind(record.resource)
                .push_bind(record.resource_id)
                .push_bind(record.account_id)
                .push_bind(record.amount)
                .push_bind(record.outcome.as_str())
                .push_bind(meta.client_ip())
                .push_bind(meta.request_id().map(str::to_owned));
        });
        // Each row count is its own SQL text: only the one-row statement stays prepared.
        let (sql, args) = sql.into_parts()?;
        sqlx::query_with(&sql, args)
            .persistent(rows.len() == 1)
            .execute(exec)
            .await
            .map(|_| ())
    }
}
