//! `pms patients delete ID…`: soft delete (the record stays for the audit trail). Each id is
//! tried and reported in turn; one that fails does not stop the others. A patient who still owes
//! money is named: billing suspends (not closes) their account and keeps the balance.

use clap::Args;
use pms_cli::api::PatientKey;
use pms_cli::{ApiClient, Error, Result, money};
use uuid::Uuid;

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
            let owed = owed_by(&client, id).await;
            client.delete_patient(id).await.map(|()| (id, owed))
        };
        match deleted.await {
            Ok((id, owed)) => {
                app.note(&format!("Deleted patient {id}."));
                if let Some(owed) = owed {
                    app.note(&format!(
                        "Patient {id} still owes {owed}: the billing account is suspended, not closed, and the balance is kept."
                    ));
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
    match failures.len() {
        0 => Ok(()),
        n => {
            let not_found = failures
                .iter()
                .all(|e| present::exit_code(e) == present::ExitCode::NotFound);
            let summary = format!("{n} of {total} patients were not deleted (see above)");
            // The exit code still tells what went wrong: 3 when every failure was a 404.
            Err(if not_found {
                Error::NotFound(summary)
            } else {
                Error::Other(summary)
            })
        }
    }
}

/// What the patient's billing account still owes (`50.00 USD`), if anything and if this user
/// may see billing at all (a lookup that fails only means no note).
async fn owed_by(client: &ApiClient, id: Uuid) -> Option<String> {
    let accounts = client
        .billing_accounts(Some(&id.to_string()), Some(1))
        .await
        .ok()?;
    let account = accounts.into_iter().find(|a| a.balance > 0)?;
    Some(money::format(
        account.balance,
        account.currency.as_deref().unwrap_or_default(),
    ))
}
