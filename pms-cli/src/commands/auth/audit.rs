//! `pms auth audit` (ADMIN): the auth audit log — logins (failed and throttled too), refreshes,
//! refresh-token reuse, logouts, user changes — newest first. Tables show users by email.

use clap::Args;
use pms_cli::Result;
use pms_cli::output::{self, Format, Tabular, columns_time};
use pms_proto::rest::AuthAuditEntry;
use serde::Serialize;

use super::super::App;
use super::super::audit::person;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// How many entries, newest first (server default 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
}

pub async fn run(app: &App, args: AuditArgs) -> Result<()> {
    let client = app.client()?;
    let entries = client.auth_audit(args.limit).await?;
    if entries.is_empty() && app.style.is_table() {
        app.note("No auth audit entries found.");
        return Ok(());
    }
    if app.style.format == Format::Json {
        // The log has no pages: `next` is always null with --page-info.
        return app.print_json_page(&entries, None);
    }
    let emails = client.user_emails().await.unwrap_or_default();
    let rows: Vec<AuthAuditLine> = entries
        .iter()
        .map(|entry| AuthAuditLine {
            entry,
            actor: person(entry.actor_id, &emails),
            subject: person(entry.subject_user_id, &emails),
        })
        .collect();
    app.print(&output::list(&rows, app.style)?)
}

/// An auth audit entry as tables show it: `actor` and `subject` are emails when known.
#[derive(Debug, Serialize)]
struct AuthAuditLine<'a> {
    #[serde(flatten)]
    entry: &'a AuthAuditEntry,
    actor: String,
    subject: String,
}

impl Tabular for AuthAuditLine<'_> {
    const NARROW: &'static [&'static str] =
        &["occurredAt", "action", "outcome", "actor", "subject"];
    const HEADERS: &'static [&'static str] = &[
        "occurredAt",
        "action",
        "outcome",
        "actor",
        "actorId",
        "actorRole",
        "subject",
        "subjectUserId",
        "clientIp",
        "requestId",
    ];
    fn row(&self) -> Vec<String> {
        let e = self.entry;
        let id = |v: Option<uuid::Uuid>| v.map(|id| id.to_string()).unwrap_or_default();
        vec![
            columns_time(&e.occurred_at),
            e.action.clone(),
            e.outcome.clone(),
            self.actor.clone(),
            id(e.actor_id),
            e.actor_role.map(|r| r.to_string()).unwrap_or_default(),
            self.subject.clone(),
            id(e.subject_user_id),
            e.client_ip.clone().unwrap_or_default(),
            e.request_id.clone().unwrap_or_default(),
        ]
    }
}
