//! A batch of creates on PostgreSQL in two round trips and no transaction (issue 10). The
//! generic batch ([`super::SqlPatientStore::create_batch`]) is `BEGIN`, seven statements and
//! `COMMIT`, each waiting its turn on a busy server while the next batch queues behind it; with
//! a different SQL text per batch size none of them stays prepared. Here:
//!
//! 1. [`NUMBER`]: per email, a new number unless a live patient has it (so a refusal spends no
//!    number, as the generic path);
//! 2. [`WRITE`]: the patient rows, their versions, events and audit rows in one statement — its
//!    data-modifying `WITH` parts commit together or not at all, like a transaction's.
//!
//! Both texts are fixed (the rows travel as arrays through `unnest`), so they are parsed and
//! planned once per connection. The patients are built here from what is inserted (nothing is
//! computed by the database), exactly as a read of the rows would decode them.

use chrono::{DateTime, NaiveDate, Utc};
use pms_proto::rest::Patient;
use sqlx::PgPool;
use uuid::Uuid;

use super::super::AuditRecord;
use super::super::rows::PatientRow;
use super::support::{email_taken, unknown_outcome};
use super::{format_mrn, now};
use crate::audit::AuditAction;
use crate::error::StoreError;
use crate::patient::events::patient_event;
use crate::patient::model::NewPatient;

/// `$1`: emails (keys), distinct. One row each, in order: a new number, or NULL where a live
/// patient has the email. A lateral probe of the unique index per email: as `EXISTS (…)` the
/// plan cached while the table was small hashed every live patient's email on each call, a
/// cost that grew with the table (3.3 ms a batch at 16,000 patients).
const NUMBER: &str = "SELECT CASE WHEN live.hit IS NULL THEN nextval('patient_mrn_seq') END \
     FROM unnest($1::text[]) WITH ORDINALITY AS k(key, n) \
     LEFT JOIN LATERAL (SELECT true AS hit FROM patients p \
       WHERE p.email_key = k.key AND p.deleted_at IS NULL LIMIT 1) live ON true \
     ORDER BY k.n";

/// The rows of a batch of creates: patients `$1`…`$13` (the last their creator), the time `$14`;
/// events `$15`…`$19`; audit rows `$20`…`$28`. Patients go in email order (byte order, as the
/// generic path sorts and the unique index compares): two batches (two replicas) inserting the
/// same emails in different orders would deadlock on the unique index until PostgreSQL failed
/// one.
const WRITE: &str = "WITH t AS MATERIALIZED (SELECT * FROM unnest($1::uuid[], $2::int8[], \
     $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::date[], \
     $10::date[], $11::text[], $12::text[], $13::uuid[]) AS t(id, seq, mrn, name, name_key, \
     email, email_key, address, date_of_birth, registered_date, phone, sex, changed_by)), \
   p AS (INSERT INTO patients (id, seq, mrn, name, name_key, email, email_key, address, \
     date_of_birth, registered_date, phone, sex, created_at, updated_at, version) \
     SELECT id, seq, mrn, name, name_key, email, email_key, address, date_of_birth, \
     registered_date, phone, sex, $14, $14, 1 FROM t ORDER BY email_key COLLATE \"C\"), \
   v AS (INSERT INTO patient_versions (patient_id, version, change_type, changed_at, \
     changed_by, mrn, name, email, address, date_of_birth, registered_date, phone, sex, \
     created_at, updated_at) \
     SELECT id, 1, 'CREATED', $14, changed_by, mrn, name, email, address, date_of_birth, \
     registered_date, phone, sex, $14, $14 FROM t), \
   o AS (INSERT INTO outbox (id, topic, key, event_type, payload, occurred_at) \
     SELECT *, $14 FROM unnest($15::uuid[], $16::text[], $17::text[], $18::text[], \
     $19::bytea[])) \
   INSERT INTO patient_audit (id, occurred_at, actor_id, actor_role, action, resource, \
     patient_id, outcome, client_ip, request_id) \
   SELECT a.id, $14, a.actor_id, a.actor_role, a.action, a.resource, a.patient_id, \
     a.outcome, a.client_ip, a.request_id \
   FROM unnest($20::uuid[], $21::uuid[], $22::text[], $23::text[], $24::text[], $25::uuid[], \
     $26::text[], $27::text[], $28::text[]) \
     AS a(id, actor_id, actor_role, action, resource, patient_id, outcome, client_ip, request_id)";

/// Creates `creates` as [`super::SqlPatientStore::create_batch`] does (one answer each: the
/// patient, or a conflict when a live patient or an earlier create of the batch has its email).
/// An error fails the whole batch: nothing of it was written. A write whose outcome is unknown
/// (the connection lost while it ran) answers each create with that error instead.
pub(super) async fn create_batch(
    pool: &PgPool,
    creates: &[(NewPatient, AuditRecord)],
) -> Result<Vec<Result<Patient, StoreError>>, StoreError> {
    // The first create of each email asks for a number; a later one of the batch is refused.
    let keys: Vec<String> = creates.iter().map(|(new, _)| new.email.key()).collect();
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    let first: Vec<bool> = keys.iter().map(|key| seen.insert(key.as_str())).collect();
    let asked: Vec<&str> = keys
        .iter()
        .zip(&first)
        .filter_map(|(key, first)| first.then_some(key.as_str()))
        .collect();
    let numbers: Vec<Option<i64>> = sqlx::query_scalar(NUMBER)
        .bind(&asked)
        .fetch_all(pool)
        .await?;
    if numbers.len() != asked.len() {
        return Err(StoreError::Other(sqlx::Error::RowNotFound));
    }
    // Ascending numbers in the order of the requests, whatever order nextval ran in.
    let mut seqs: Vec<i64> = numbers.iter().flatten().copied().collect();
    seqs.sort_unstable();
    let mut seqs = seqs.into_iter();
    let mut numbers = numbers.into_iter();
    let seq_of: Vec<Option<i64>> = first
        .iter()
        .map(|first| {
            if *first {
                numbers.next().flatten().and_then(|_| seqs.next())
            } else {
                None
            }
        })
        .collect();
    let at = now();
    let mut rows = Rows::default();
    let mut answers = Vec::with_capacity(creates.len());
    for ((new, audit), seq) in creates.iter().zip(seq_of) {
        let Some(seq) = seq else {
            answers.push(None);
            continue;
        };
        let patient = rows.push(Uuid::new_v4(), seq, new, audit, at)?;
        answers.push(Some(patient));
    }
    if !rows.ids.is_empty() {
        let written = sqlx::query(WRITE)
            .bind(&rows.ids)
            .bind(&rows.seqs)
            .bind(&rows.mrns)
            .bind(&rows.names)
            .bind(&rows.name_keys)
            .bind(&rows.emails)
            .bind(&rows.email_keys)
            .bind(&rows.addresses)
            .bind(&rows.births)
            .bind(&rows.registered)
            .bind(&rows.phones)
            .bind(&rows.sexes)
            .bind(&rows.changed_by)
            .bind(at)
            .bind(&rows.event_ids)
            .bind(&rows.topics)
            .bind(&rows.event_keys)
            .bind(&rows.event_types)
            .bind(&rows.payloads)
            .bind(&rows.audit_ids)
            .bind(&rows.changed_by)
            .bind(&rows.roles)
            .bind(&rows.actions)
            .bind(&rows.resources)
            .bind(&rows.ids)
            .bind(&rows.outcomes)
            .bind(&rows.client_ips)
            .bind(&rows.request_ids)
            .execute(pool)
            .await;
        match written {
            Ok(_) => {}
            // PostgreSQL refused it (a concurrent replica took an email, …): nothing was
            // written, and the caller may create one by one.
            Err(e @ sqlx::Error::Database(_)) => return Err(e.into()),
            // Whether it committed is unknown (a lost connection).
            Err(e) => return Ok(unknown_outcome(creates.len(), "write", &e)),
        }
    }
    Ok(answers
        .into_iter()
        .map(|patient| patient.ok_or_else(email_taken))
        .collect())
}

/// The columns of [`WRITE`], one array each.
#[derive(Default)]
struct Rows {
    ids: Vec<Uuid>,
    seqs: Vec<i64>,
    mrns: Vec<String>,
    names: Vec<String>,
    name_keys: Vec<String>,
    emails: Vec<String>,
    email_keys: Vec<String>,
    addresses: Vec<String>,
    births: Vec<NaiveDate>,
    registered: Vec<NaiveDate>,
    phones: Vec<Option<String>>,
    sexes: Vec<Option<&'static str>>,
    changed_by: Vec<Option<Uuid>>,
    event_ids: Vec<Uuid>,
    topics: Vec<String>,
    event_keys: Vec<String>,
    event_types: Vec<String>,
    payloads: Vec<Vec<u8>>,
    audit_ids: Vec<Uuid>,
    roles: Vec<Option<&'static str>>,
    actions: Vec<&'static str>,
    resources: Vec<&'static str>,
    outcomes: Vec<&'static str>,
    client_ips: Vec<Option<String>>,
    request_ids: Vec<Option<String>>,
}

impl Rows {
    /// Adds the rows of one create; returns its patient as a read of them would.
    fn push(
        &mut self,
        id: Uuid,
        seq: i64,
        new: &NewPatient,
        audit: &AuditRecord,
        at: DateTime<Utc>,
    ) -> Result<Patient, StoreError> {
        let sex = new.sex.map(|s| s.as_str());
        let (patient, _) = PatientRow {
            id,
            seq,
            mrn: format_mrn(seq),
            name: new.name.as_str().to_owned(),
            name_key: new.name.sort_key(),
            email: new.email.as_str().to_owned(),
            address: new.address.as_str().to_owned(),
            date_of_birth: new.date_of_birth.date(),
            registered_date: new.registered_date.date(),
            phone: new.phone.as_ref().map(|p| p.as_str().to_owned()),
            sex: sex.map(str::to_owned),
            created_at: at,
            updated_at: at,
            version: 1,
        }
        .into_patient()?;
        let actor = audit.meta.actor_id;
        let event = patient_event(&patient, "CREATED", actor, at);
        self.ids.push(id);
        self.seqs.push(seq);
        self.mrns.push(patient.mrn.clone());
        self.names.push(patient.name.clone());
        self.name_keys.push(new.name.sort_key());
        self.emails.push(patient.email.clone());
        self.email_keys.push(new.email.key());
        self.addresses.push(patient.address.clone());
        self.births.push(patient.date_of_birth);
        self.registered.push(patient.registered_date);
        self.phones.push(patient.phone.clone());
        self.sexes.push(sex);
        self.changed_by.push(actor);
        self.event_ids.push(event.id);
        self.topics.push(event.topic);
        self.event_keys.push(event.key);
        self.event_types.push(event.event_type);
        self.payloads.push(event.payload);
        self.audit_ids.push(audit.id);
        self.roles.push(audit.meta.role_str());
        self.actions.push(audit.action.name());
        self.resources.push(audit.action.resource());
        self.outcomes.push(audit.outcome.as_str());
        self.client_ips.push(audit.meta.client_ip());
        self.request_ids
            .push(audit.meta.request_id().map(str::to_owned));
        Ok(patient)
    }
}
