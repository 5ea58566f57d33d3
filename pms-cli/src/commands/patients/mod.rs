//! `pms patients …`: the patient records (`/api/patients`).

mod create;
mod delete;
mod get;
mod history;
mod list;
pub use list::more_note;
mod restore;
mod update;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use pms_cli::api::PatientKey;
use pms_cli::{Error, Result};
use pms_proto::rest::PatientRequest;

use super::App;

#[derive(Debug, Subcommand)]
pub enum PatientsCommand {
    /// List patients (search with -q; one page unless --all).
    List(list::ListArgs),
    /// Show one patient.
    Get(get::GetArgs),
    /// Register a patient (flags, or a JSON body with --from-file).
    Create(create::CreateArgs),
    /// Change a patient: only the fields given change (optimistic concurrency with If-Match).
    Update(update::UpdateArgs),
    /// Delete patients (soft delete: kept for the audit trail).
    Delete(delete::DeleteArgs),
    /// Every version of a patient record.
    History(history::HistoryArgs),
    /// List deleted patients (same search and paging as `list`).
    Deleted(list::ListArgs),
    /// Restore deleted patients: live again with the same MRN; billing reopens the account.
    Restore(restore::RestoreArgs),
}

pub async fn run(app: &App, command: PatientsCommand) -> Result<()> {
    match command {
        PatientsCommand::List(args) => list::run(app, args, false).await,
        PatientsCommand::Get(args) => get::run(app, args).await,
        PatientsCommand::Create(args) => create::run(app, args).await,
        PatientsCommand::Update(args) => update::run(app, args).await,
        PatientsCommand::Delete(args) => delete::run(app, args).await,
        PatientsCommand::History(args) => history::run(app, args).await,
        PatientsCommand::Deleted(args) => list::run(app, args, true).await,
        PatientsCommand::Restore(args) => restore::run(app, args).await,
    }
}

/// The patient fields as flags (create and update).
#[derive(Debug, Args)]
pub struct FieldArgs {
    /// Full name (at most 100 characters).
    #[arg(long)]
    pub name: Option<String>,
    /// Email (unique among patients).
    #[arg(long)]
    pub email: Option<String>,
    /// Postal address.
    #[arg(long)]
    pub address: Option<String>,
    /// Date of birth, YYYY-MM-DD.
    #[arg(long = "date-of-birth", visible_alias = "dob", value_name = "DATE")]
    pub date_of_birth: Option<String>,
    /// Registration date, YYYY-MM-DD [create default: today].
    #[arg(long = "registered-date", value_name = "DATE")]
    pub registered_date: Option<String>,
    /// Phone number.
    #[arg(long)]
    pub phone: Option<String>,
    /// Administrative sex.
    #[arg(long, value_parser = parse_sex)]
    pub sex: Option<String>,
    /// A JSON body (the API's camelCase fields) from a file, or `-` for stdin; flags override it.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
}

impl FieldArgs {
    /// The request body: the file's fields (if any) with the flags on top.
    pub fn body(&self) -> Result<PatientRequest> {
        let mut body = match &self.from_file {
            None => PatientRequest::default(),
            Some(path) => read_body(path)?,
        };
        let set = |slot: &mut Option<String>, value: &Option<String>| {
            if let Some(v) = value {
                *slot = Some(v.clone());
            }
        };
        set(&mut body.name, &self.name);
        set(&mut body.email, &self.email);
        set(&mut body.address, &self.address);
        set(&mut body.date_of_birth, &self.date_of_birth);
        set(&mut body.registered_date, &self.registered_date);
        set(&mut body.phone, &self.phone);
        set(&mut body.sex, &self.sex);
        Ok(body)
    }
}

fn read_body(path: &std::path::Path) -> Result<PatientRequest> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| Error::io("reading stdin", e))?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
    };
    serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "{}: not a patient body ({e}); expected {{\"name\", \"email\", \"address\", \"dateOfBirth\", \"registeredDate\", \"phone\", \"sex\"}}",
            path.display()
        ))
    })
}

/// `--sex`: FEMALE, MALE, OTHER or UNKNOWN, any case.
fn parse_sex(raw: &str) -> std::result::Result<String, String> {
    pms_proto::rest::Sex::parse(raw)
        .map(|s| s.as_str().to_owned())
        .ok_or_else(|| format!("`{raw}`: expected FEMALE, MALE, OTHER or UNKNOWN"))
}

/// The end of a command over several patients that reports each failure and goes on: exit 3
/// when every failure was a 404, 1 otherwise.
pub fn summarize(failures: &[Error], total: usize, not_done: &str) -> Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    let not_found = failures
        .iter()
        .all(|e| super::present::exit_code(e) == super::present::ExitCode::NotFound);
    let summary = format!(
        "{} of {total} patients were not {not_done} (see above)",
        failures.len()
    );
    Err(if not_found {
        Error::NotFound(summary)
    } else {
        Error::Other(summary)
    })
}

/// Parses a patient argument: an MRN (`MRN-000001`) or an id (resolved with
/// `ApiClient::resolve_patient`).
pub fn parse_id(raw: &str) -> std::result::Result<PatientKey, String> {
    PatientKey::parse(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(
            &path,
            r#"{"name":"Jane","email":"j@x.test","address":"1 Main","dateOfBirth":"1990-01-01"}"#,
        )
        .unwrap();
        let args = FieldArgs {
            name: Some("Janet".into()),
            email: None,
            address: None,
            date_of_birth: None,
            registered_date: None,
            phone: Some("555".into()),
            sex: None,
            from_file: Some(path.clone()),
        };
        let body = args.body().unwrap();
        assert_eq!(body.name.as_deref(), Some("Janet"));
        assert_eq!(body.email.as_deref(), Some("j@x.test"));
        assert_eq!(body.phone.as_deref(), Some("555"));
        std::fs::write(&path, r#"{"nmae":"typo"}"#).unwrap();
        let err = args.body().unwrap_err();
        assert_eq!(
            crate::commands::present::exit_code(&err),
            crate::commands::present::ExitCode::Usage
        );
        assert!(err.to_string().contains("unknown field `nmae`"), "{err}");
    }
}
