//! `pms patients update ID`: reads the record, applies the given fields, and writes it back with
//! `If-Match` on the version read (or `--if-match`), so a concurrent change is never overwritten
//! (exit 5, "precondition failed").

use clap::Args;
use pms_cli::api::etag_for;
use pms_cli::output;
use pms_cli::{Error, Result};
use pms_proto::rest::PatientRequest;
use uuid::Uuid;

use super::super::App;
use super::FieldArgs;

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Patient id.
    #[arg(value_parser = super::parse_id)]
    pub id: Uuid,
    #[command(flatten)]
    pub fields: FieldArgs,
    /// Only update if the record is still at this version (default: the version just read).
    #[arg(long, value_name = "VERSION")]
    pub if_match: Option<String>,
}

pub async fn run(app: &App, args: UpdateArgs) -> Result<()> {
    let changes = args.fields.body()?;
    if is_empty(&changes) {
        return Err(Error::Usage(
            "nothing to update: pass at least one field (--name, --email, …) or --from-file".into(),
        ));
    }
    let client = app.client()?;
    let current = client.get_patient(args.id).await?;
    let p = &current.value;
    let body = PatientRequest {
        name: changes.name.or_else(|| Some(p.name.clone())),
        email: changes.email.or_else(|| Some(p.email.clone())),
        address: changes.address.or_else(|| Some(p.address.clone())),
        date_of_birth: changes
            .date_of_birth
            .or_else(|| Some(p.date_of_birth.to_string())),
        registered_date: changes
            .registered_date
            .or_else(|| Some(p.registered_date.to_string())),
        phone: changes.phone.or_else(|| p.phone.clone()),
        sex: changes.sex.or_else(|| p.sex.map(|s| s.as_str().to_owned())),
    };
    let tag = match &args.if_match {
        Some(v) => etag_for(v),
        None => current
            .etag
            .clone()
            .unwrap_or_else(|| etag_for(&p.version.to_string())),
    };
    let updated = client.update_patient(args.id, &body, Some(&tag)).await?;
    app.note(&format!(
        "Updated patient {} (version {}).",
        updated.value.id, updated.value.version
    ));
    app.print(&output::one(&updated.value, app.style)?)
}

fn is_empty(r: &PatientRequest) -> bool {
    [
        &r.name,
        &r.email,
        &r.address,
        &r.date_of_birth,
        &r.registered_date,
        &r.phone,
        &r.sex,
    ]
    .iter()
    .all(|f| f.is_none())
}
