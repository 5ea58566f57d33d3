//! `pms patients update ID`: reads the record, applies the given fields, and writes it back with
//! `If-Match` on the version read (or `--if-match`), so a concurrent change is never overwritten
//! (exit 5, "precondition failed").

use clap::Args;
use pms_cli::api::PatientKey;
use pms_cli::api::etag_for;
use pms_cli::output;
use pms_cli::{Error, Result};
use pms_proto::rest::PatientRequest;

use super::super::App;
use super::FieldArgs;

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The patient: MRN (MRN-000001) or id.
    #[arg(value_parser = super::parse_id, value_name = "PATIENT")]
    pub id: PatientKey,
    #[command(flatten)]
    pub fields: FieldArgs,
    /// Only update if the record is still at this version: a number (3) or its ETag ("3")
    /// [default: the version just read].
    #[arg(long, value_name = "VERSION", value_parser = parse_version)]
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
    let id = client.resolve_patient(&args.id).await?;
    let current = client.get_patient(id).await?;
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
    let updated = client.update_patient(id, &body, Some(&tag)).await?;
    app.note(&format!(
        "Updated patient {} (version {}).",
        updated.value.id, updated.value.version
    ));
    app.print(&output::one(&updated.value, app.style)?)
}

/// `3`, `"3"` or `W/"3"` → `3`; anything else is a usage error (exit 2), not a conflict.
fn parse_version(raw: &str) -> std::result::Result<String, String> {
    let v = raw.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v);
    match v.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n.to_string()),
        _ => Err(format!(
            "`{raw}` is not a version: pass the record's version number (e.g. 3)"
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbers_or_their_etags() {
        assert_eq!(parse_version("3").unwrap(), "3");
        assert_eq!(parse_version("\"12\"").unwrap(), "12");
        assert_eq!(parse_version("W/\"4\"").unwrap(), "4");
        assert!(parse_version("abc").is_err());
        assert!(parse_version("0").is_err());
        assert!(parse_version("-1").is_err());
    }
}
