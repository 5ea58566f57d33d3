//! A batch of `ensure_account` calls on PostgreSQL in one statement (issue 10), as the patient
//! creates' batch (`patient::store::sql::pg_batch`): the generic transaction is `BEGIN`, up to four
//! statements (one SQL text per batch size, never kept prepared) and `COMMIT`, while the next
//! batch of a patient create's synchronous billing call waits. [`ENSURE`] inserts the missing
//! accounts and, for those it inserted, their audit rows and `ACCOUNT_CREATED` events — its
//! data-modifying `WITH` parts commit together or not at all — and returns every wanted account,
//! flagged created or not. Its text is fixed (the rows travel as arrays), so it stays prepared.

use std::collections::{HashMap, HashSet};

use sqlx::PgPool;

use crate::events::TOPIC_BILLING;

use super::prelude::*;

/// `$1`…`$4`: the candidate accounts (id, patient, name, email), one per patient, in the
/// callers' order; `$5`…`$9` the audit row each would get (id, actor, role, client address,
/// request id); `$10`…`$13` the event each would announce (id, key, type, payload); `$14` the
/// time; `$15` the audit action, `$16` the topic. Accounts are inserted in patient order (byte
/// order, as the generic path sorts: two batches inserting the same patients in different orders
/// would deadlock); the rows of those that existed come from the statement's snapshot.
const ENSURE: &str = "WITH t AS MATERIALIZED (SELECT * FROM unnest($1::uuid[], $2::text[], \
     $3::text[], $4::text[], $5::uuid[], $6::uuid[], $7::text[], $8::text[], $9::text[], \
     $10::uuid[], $11::text[], $12::text[], $13::bytea[]) WITH ORDINALITY AS t(id, patient_id, \
     name, email, audit_id, actor_id, actor_role, client_ip, request_id, event_id, event_key, \
     event_type, payload, n)), \
   ins AS (INSERT INTO accounts (id, patient_id, name, email, status, currency, balance, \
     created_at, updated_at) \
     SELECT id, patient_id, name, email, 'ACTIVE', NULL, 0, $14, $14 FROM t \
     ORDER BY patient_id COLLATE \"C\" \
     ON CONFLICT (patient_id) DO NOTHING \
     RETURNING id, patient_id, status, currency, balance, created_at, updated_at), \
   audited AS (INSERT INTO audit_log (id, occurred_at, actor_id, actor_role, action, resource, \
     resource_id, account_id, amount, outcome, client_ip, request_id) \
     SELECT t.audit_id, $14, t.actor_id, t.actor_role, $15, 'account', t.id, t.id, NULL, \
     'SUCCESS', t.client_ip, t.request_id FROM t JOIN ins USING (id) ORDER BY t.n), \
   announced AS (INSERT INTO outbox (id, topic, key, event_type, payload, occurred_at) \
     SELECT t.event_id, $16, t.event_key, t.event_type, t.payload, $14 \
     FROM t JOIN ins USING (id) ORDER BY t.n) \
   SELECT id, patient_id, status, currency, balance, created_at, updated_at, true AS created \
     FROM ins \
   UNION ALL \
   SELECT a.id, a.patient_id, a.status, a.currency, a.balance, a.created_at, a.updated_at, false \
     FROM accounts a JOIN t USING (patient_id) WHERE NOT EXISTS \
     (SELECT 1 FROM ins WHERE ins.patient_id = a.patient_id)";

#[derive(sqlx::FromRow)]
struct Ensured {
    #[sqlx(flatten)]
    account: AccountRow,
    created: bool,
}

/// [`SqlBillingStore::ensure_accounts_tx`]'s answers (the account of each call; created only for
/// the first call of a patient whose account this batch inserted). An error PostgreSQL answered
/// fails the whole batch, which then wrote nothing (the caller ensures the accounts one by one);
/// a statement whose outcome is unknown (the connection lost while it ran) answers each call
/// with that error instead, since redoing them would report accounts it created as existing.
pub(super) async fn ensure_accounts(
    pool: &PgPool,
    requests: &[(NewAccount, AuditMeta)],
) -> Result<Vec<Ensure>, BillingError> {
    let at = now();
    let mut rows = Rows::default();
    let mut wanted = HashSet::with_capacity(requests.len());
    for (new, meta) in requests {
        if wanted.insert(new.patient.as_str()) {
            rows.push(new, meta, at);
        }
    }
    let ensured: Result<Vec<Ensured>, sqlx::Error> = sqlx::query_as(ENSURE)
        .bind(&rows.ids)
        .bind(&rows.patients)
        .bind(&rows.names)
        .bind(&rows.emails)
        .bind(&rows.audit_ids)
        .bind(&rows.actors)
        .bind(&rows.roles)
        .bind(&rows.client_ips)
        .bind(&rows.request_ids)
        .bind(&rows.event_ids)
        .bind(&rows.event_keys)
        .bind(&rows.event_types)
        .bind(&rows.payloads)
        .bind(at)
        .bind(BillingAction::AccountCreate.name())
        .bind(TOPIC_BILLING)
        .fetch_all(pool)
        .await;
    let ensured = match ensured {
        Ok(ensured) => ensured,
        Err(e @ sqlx::Error::Database(_)) => return Err(StoreError::from(e).into()),
        Err(e) => {
            tracing::warn!(error = %e, calls = requests.len(), "the write of a batch of accounts failed");
            return Ok(requests
                .iter()
                .map(|_| {
                    Err(BillingError::Store(StoreError::Other(
                        sqlx::Error::Protocol(format!(
                            "the write of a batch of accounts failed: {e}"
                        )),
                    )))
                })
                .collect());
        }
    };
    let mut accounts: HashMap<String, (AccountRow, bool)> = ensured
        .into_iter()
        .map(|e| (e.account.patient_id.clone(), (e.account, e.created)))
        .collect();
    // An account another transaction inserted while the statement ran (billing's consumer, for
    // the same patient's event) is not in its snapshot: read again, after the statement.
    let missing: Vec<&str> = rows
        .patients
        .iter()
        .map(String::as_str)
        .filter(|patient| !accounts.contains_key(*patient))
        .collect();
    // A failed read-back fails the calls it was for with its error (not "no account").
    let mut read_back: Option<sqlx::Error> = None;
    if !missing.is_empty() {
        let existing: Result<Vec<AccountRow>, sqlx::Error> = sqlx::query_as(EXISTING)
            .bind(&missing)
            .fetch_all(pool)
            .await;
        match existing {
            Ok(existing) => accounts.extend(
                existing
                    .into_iter()
                    .map(|row| (row.patient_id.clone(), (row, false))),
            ),
            Err(e) => read_back = Some(e),
        }
    }
    // The first call of a patient reports the creation; the others see an existing account.
    Ok(requests
        .iter()
        .map(|(new, _)| {
            let (row, created) =
                accounts
                    .get_mut(new.patient.as_str())
                    .ok_or_else(|| match &read_back {
                        Some(e) => BillingError::Store(StoreError::Other(sqlx::Error::Protocol(
                            format!("cannot read back the accounts of a batch: {e}"),
                        ))),
                        None => BillingError::NotFound("account"),
                    })?;
            let answer = (row.clone().into_api()?, *created);
            *created = false;
            Ok(answer)
        })
        .collect())
}

/// One call's answer: its account and whether this call created it.
pub(super) type Ensure = Result<(BillingAccount, bool), BillingError>;

/// The accounts of patients `$1` (after the batch statement, for those not in its snapshot).
const EXISTING: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM accounts WHERE patient_id = ANY($1)"
);

/// The arrays of [`ENSURE`].
#[derive(Default)]
struct Rows {
    ids: Vec<Uuid>,
    patients: Vec<String>,
    names: Vec<String>,
    emails: Vec<String>,
    audit_ids: Vec<Uuid>,
    actors: Vec<Option<Uuid>>,
    roles: Vec<Option<&'static str>>,
    client_ips: Vec<Option<String>>,
    request_ids: Vec<Option<String>>,
    event_ids: Vec<Uuid>,
    event_keys: Vec<String>,
    event_types: Vec<String>,
    payloads: Vec<Vec<u8>>,
}

impl Rows {
    /// The rows of one candidate account, as the generic transaction would write them.
    fn push(&mut self, new: &NewAccount, meta: &AuditMeta, at: DateTime<Utc>) {
        let id = Uuid::now_v7();
        let event = super::account_created(id, new, meta, at);
        self.ids.push(id);
        self.patients.push(new.patient.as_str().to_owned());
        self.names.push(new.contact.name.clone());
        self.emails.push(new.contact.email.clone());
        self.audit_ids.push(Uuid::now_v7());
        self.actors.push(meta.actor_id);
        self.roles.push(meta.role_str());
        self.client_ips.push(meta.client_ip());
        self.request_ids.push(meta.request_id().map(str::to_owned));
        self.event_ids.push(event.id);
        self.event_keys.push(event.key);
        self.event_types.push(event.event_type);
        self.payloads.push(event.payload);
    }
}
