//! `pms audit` (ADMIN): the patient audit log — who read or changed what, never field values —
//! filtered by patient, actor, action and time. Tables show actors by email (looked up in the
//! users API; the id when that fails); JSON keeps the API's entries.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use pms_cli::Result;
use pms_cli::api::{AuditFilter, PatientKey, UserKey};
use pms_cli::output::{self, Format, Tabular, columns_time};
use pms_proto::rest::AuditEntry;
use serde::Serialize;
use uuid::Uuid;

use super::App;
use super::patients::more_note;

/// The actions `--action` takes (the server's list).
const ACTIONS: [&str; 10] = [
    "patient.list",
    "patient.search",
    "patient.read",
    "patient.create",
    "patient.update",
    "patient.delete",
    "patient.history",
    "audit.read",
    "patient.list_deleted",
    "patient.restore",
];

/// The patient audit log (ADMIN). The auth log (logins, user changes) is `pms auth audit`; the
/// billing log is `pms billing audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries about this patient (MRN or id).
    #[arg(long, value_name = "PATIENT", value_parser = super::patients::parse_id)]
    pub patient: Option<PatientKey>,
    /// Only entries of this user (email or id).
    #[arg(long, value_name = "USER", value_parser = super::users::parse_id)]
    pub actor: Option<UserKey>,
    /// Only entries of this action (patient.read, patient.update, patient.delete, …).
    #[arg(long, value_name = "ACTION", value_parser = ACTIONS)]
    pub action: Option<String>,
    /// Only entries at or after: a time (2026-01-31T09:00:00Z), a day (2026-01-31, UTC) or a
    /// duration ago (2h, 7d).
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub since: Option<DateTime<Utc>>,
    /// Only entries before: a time, a day (its start, UTC) or a duration ago.
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub until: Option<DateTime<Utc>>,
    /// Page size.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Start at this page (the cursor printed by a previous run; opaque).
    #[arg(
        long,
        value_name = "CURSOR",
        conflicts_with = "all",
        allow_hyphen_values = true
    )]
    pub cursor: Option<String>,
    /// Fetch every page.
    #[arg(long)]
    pub all: bool,
}

/// `--since` / `--until`: an RFC 3339 time, a day (midnight UTC) or a duration before now.
pub fn parse_when(raw: &str) -> std::result::Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(raw) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    let ago = pms_cli::duration::parse(raw).map_err(|_| {
        format!("`{raw}`: expected a time (2026-01-31T09:00:00Z), a day (2026-01-31) or a duration ago (2h, 7d)")
    })?;
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|ago| Utc::now().checked_sub_signed(ago))
        .ok_or_else(|| format!("`{raw}` is too long ago"))
}

pub async fn run(app: &App, args: AuditArgs) -> Result<()> {
    let client = app.client()?;
    let patient = match &args.patient {
        Some(key) => Some(client.resolve_patient(key).await?),
        None => None,
    };
    let actor = match &args.actor {
        Some(key) => Some(client.resolve_user(key).await?),
        None => None,
    };
    let filter = AuditFilter {
        patient,
        actor,
        action: args.action,
        since: args.since,
        until: args.until,
        limit: args.limit,
        cursor: args.cursor,
    };
    let page = client.audit_filtered(&filter, args.all).await?;
    if page.items.is_empty() && app.style.is_table() {
        app.note("No audit entries found.");
        return Ok(());
    }
    let next = page.next_cursor();
    if app.style.format == Format::Json {
        app.print_page(&page.items, next.clone())?;
    } else {
        // People read emails; a user who may not list users (or a deleted one) stays an id.
        let emails = client.user_emails().await.unwrap_or_default();
        let rows: Vec<AuditLine> = page
            .items
            .iter()
            .map(|entry| AuditLine::new(entry, &emails))
            .collect();
        app.print(&output::list(&rows, app.style)?)?;
    }
    more_note(app, "entries", page.next.is_some(), next.as_deref());
    Ok(())
}

/// An audit entry as tables show it: `actor` is the email when known.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditLine<'a> {
    #[serde(flatten)]
    entry: &'a AuditEntry,
    actor: String,
}

impl<'a> AuditLine<'a> {
    pub fn new(entry: &'a AuditEntry, emails: &HashMap<Uuid, String>) -> Self {
        AuditLine {
            entry,
            actor: person(entry.actor_id, emails),
        }
    }
}

/// A user as people know them: the email, else the id, else nothing.
pub fn person(id: Option<Uuid>, emails: &HashMap<Uuid, String>) -> String {
    match id {
        Some(id) => emails.get(&id).cloned().unwrap_or_else(|| id.to_string()),
        None => String::new(),
    }
}

impl Tabular for AuditLine<'_> {
    const NARROW: &'static [&'static str] =
        &["occurredAt", "action", "outcome", "actor", "patientId"];
    const HEADERS: &'static [&'static str] = &[
        "occurredAt",
        "action",
        "outcome",
        "actor",
        "actorId",
        "actorRole",
        "resource",
        "patientId",
        "clientIp",
        "requestId",
    ];
    fn row(&self) -> Vec<String> {
        let e = self.entry;
        let opt = |v: Option<String>| v.unwrap_or_default();
        vec![
            columns_time(&e.occurred_at),
            e.action.clone(),
            e.outcome.clone(),
            self.actor.clone(),
            opt(e.actor_id.map(|id| id.to_string())),
            opt(e.actor_role.clone()),
            e.resource.clone(),
            opt(e.patient_id.map(|id| id.to_string())),
            opt(e.client_ip.clone()),
            opt(e.request_id.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_is_a_time_a_day_or_a_duration_ago() {
        assert_eq!(
            parse_when("2026-01-31T09:00:00+01:00").unwrap(),
            "2026-01-31T08:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            parse_when("2026-01-31").unwrap(),
            "2026-01-31T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let ago = Utc::now() - parse_when("2h").unwrap();
        assert!((7190..=7210).contains(&ago.num_seconds()), "{ago}");
        assert!(
            parse_when("yesterday")
                .unwrap_err()
                .contains("expected a time")
        );
    }

    #[test]
    fn actors_show_as_emails_when_known() {
        let (known, unknown) = (Uuid::new_v4(), Uuid::new_v4());
        let emails = HashMap::from([(known, "ann@clinic.test".to_owned())]);
        assert_eq!(person(Some(known), &emails), "ann@clinic.test");
        assert_eq!(person(Some(unknown), &emails), unknown.to_string());
        assert_eq!(person(None, &emails), "");
    }
}
