//! `pms patients delete ID…`: soft delete (the record stays for the audit trail). Each id is
//! tried and reported in turn; one that fails does not stop the others. A patient who still owes
//! money is named, with what the server says becomes of the account (billing suspends it, not
//! closes it, and keeps the balance).

use clap::Args;
use pms_cli::api::PatientKey;
use pms_cli::{Error, Result, money};
use pms_proto::rest::PatientDeletion;

use super::super::App;
use super::super::present;

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The patients: MRNs (MRN-000001) or ids.
    #[arg(required = true, value_parser = super::parse_id, value_name = "PATIENT")]
    pub ids: Vec<PatientKey>,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

pub async fn run(app: &App, args: DeleteArgs) -> Result<()> {
    let client = app.client()?;
    let total = args.ids.len();
    let named: Vec<String> = args.ids.iter().map(ToString::to_string).collect();
    let question = match total {
        1 => format!("Delete patient {}?", named[0]),
        n => format!("Delete {n} patients ({})?", named.join(", ")),
    };
    super::super::prompt::confirm(app, &question, args.yes)?;
    let mut failures: Vec<Error> = Vec::new();
    for key in args.ids {
        let deleted = async {
            let id = client.resolve_patient(&key).await?;
            client
                .delete_patient(id)
                .await
                .map(|deletion| (id, deletion))
        };
        match deleted.await {
            Ok((id, deletion)) => {
                app.note(&format!("Deleted patient {id}."));
                if let Some(note) = deletion.as_ref().and_then(owing_note) {
                    app.note(&format!("Patient {id} {note}"));
                }
            }
            // Several ids: report this one and go on with the next.
            Err(e) if total > 1 => {
                eprintln!("error: {}", present::message(&e));
                failures.push(e);
            }
            Err(e) => return Err(e),
        }
    }
    // The exit code still tells what went wrong: 3 when every failure was a 404.
    super::summarize(&failures, total, "deleted")
}

/// `still owes 50.00 USD: <what billing does>`, when the deleted patient owes money (the server
/// says so when billing answered and the caller may read billing).
fn owing_note(deletion: &PatientDeletion) -> Option<String> {
    let account = deletion.billing.as_ref().filter(|a| a.balance > 0)?;
    let owed = money::format(
        account.balance,
        account.currency.as_deref().unwrap_or_default(),
    );
    Some(format!("still owes {owed}: {}.", account.note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pms_proto::rest::{AccountStatus, DeletedAccount};

    #[test]
    fn a_balance_is_named_with_what_billing_does() {
        let patient = serde_json::from_value(serde_json::json!({
            "id": "00000000-0000-4000-8000-000000000001", "mrn": "MRN-000001", "name": "A",
            "email": "a@x.test", "address": "1 Main", "dateOfBirth": "1990-01-01",
            "registeredDate": "2024-01-01", "createdAt": "2024-01-01T00:00:00Z",
            "updatedAt": "2024-01-01T00:00:00Z", "version": 2
        }))
        .unwrap();
        let account = |balance| {
            DeletedAccount::after_delete(
                uuid::Uuid::nil(),
                AccountStatus::Active,
                balance,
                Some("USD".into()),
            )
        };
        let owing = PatientDeletion {
            patient,
            billing: Some(account(5000)),
        };
        let note = owing_note(&owing).unwrap();
        assert!(note.starts_with("still owes 50.00 USD: the patient still owes money: the billing account is suspended"), "{note}");
        let settled = PatientDeletion {
            billing: Some(account(0)),
            ..owing.clone()
        };
        assert_eq!(owing_note(&settled), None);
        let unknown = PatientDeletion {
            billing: None,
            ..owing
        };
        assert_eq!(owing_note(&unknown), None);
    }
}
