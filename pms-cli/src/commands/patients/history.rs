//! `pms patients history ID`.

use clap::Args;
use pms_cli::Result;
use pms_cli::api::PatientKey;
use pms_cli::output::{self, Tabular};
use pms_proto::rest::PatientVersion;

use super::super::App;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The patient: MRN (MRN-000001) or id.
    #[arg(value_parser = super::parse_id, value_name = "PATIENT")]
    pub id: PatientKey,
}

pub async fn run(app: &App, args: HistoryArgs) -> Result<()> {
    let client = app.client()?;
    let id = client.resolve_patient(&args.id).await?;
    let versions = client.patient_history(id).await?;
    if app.style.format == output::Format::Json {
        return app.print_page(&versions, None);
    }
    // Table and CSV: every column plus `changed`, the fields that differ from the version before.
    let mut headers = PatientVersion::HEADERS.to_vec();
    headers.push("changed");
    let mut narrow = PatientVersion::NARROW.to_vec();
    narrow.push("changed");
    let rows = versions.iter().enumerate().map(|(i, v)| {
        let mut row = v.row();
        let changed = match i.checked_sub(1).and_then(|p| versions.get(p)) {
            Some(before) => changed_fields(&before.row(), &row),
            None => String::new(),
        };
        row.push(changed);
        row
    });
    app.print(&output::rows(&headers, &narrow, rows, app.style)?)
}

/// The record columns (after the four version columns) whose values differ, comma-separated.
fn changed_fields(before: &[String], after: &[String]) -> String {
    PatientVersion::HEADERS
        .iter()
        .enumerate()
        .skip(4)
        .filter(|(i, _)| before.get(*i) != after.get(*i))
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_every_field_that_differs() {
        let row = |name: &str, phone: &str| {
            let mut r = vec![
                "1", "UPDATED", "t", "u", name, "e", "a", "d", "r", phone, "s",
            ];
            r.truncate(PatientVersion::HEADERS.len());
            r.into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        assert_eq!(changed_fields(&row("A", "1"), &row("A", "2")), "phone");
        assert_eq!(changed_fields(&row("A", "1"), &row("B", "2")), "name,phone");
        assert_eq!(changed_fields(&row("A", "1"), &row("A", "1")), "");
    }
}
