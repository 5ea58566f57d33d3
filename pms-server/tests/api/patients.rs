//! Patient API tests over real sockets, on SQLite and PostgreSQL, in two environments (see
//! [`env`]): `standalone::*` (the patient service alone, with minted tokens) and `full_app::*`
//! (the all-in-one app, with tokens from the auth service). The same test bodies run in both.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

mod access;
mod env;
mod lifecycle;
mod listing;
mod restore;
mod validation;

/// Generates, for each test body, one `#[tokio::test]` per environment, each looping over both
/// backends.
macro_rules! api_tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod standalone {
            $(#[tokio::test]
            async fn $name() {
                for backend in crate::helpers::BACKENDS {
                    println!("--- {backend:?}");
                    let env = super::env::Env::standalone(backend).await;
                    super::$module::$name(&env).await;
                }
            })*
        }
        mod full_app {
            $(#[tokio::test]
            async fn $name() {
                for backend in crate::helpers::BACKENDS {
                    println!("--- {backend:?}");
                    let env = super::env::Env::full_app(backend).await;
                    super::$module::$name(&env).await;
                }
            })*
        }
    };
}

api_tests!(
    lifecycle::lifecycle_create_read_update_delete_history,
    lifecycle::the_reference_body_is_accepted,
    lifecycle::updates_validate_and_keep_what_is_absent,
    lifecycle::duplicate_emails_conflict_case_insensitively,
    validation::each_validation_rule_names_its_field,
    validation::several_invalid_fields_are_reported_together,
    validation::hostile_input_is_refused_or_stored_verbatim,
    listing::link_paging_returns_every_patient_exactly_once,
    listing::q_searches_names_emails_and_mrns,
    listing::bad_listing_parameters_are_rejected,
    listing::cursors_reveal_no_patient_field_and_tampered_ones_are_refused,
    access::roles_are_enforced,
    access::admins_see_an_audit_trail_without_field_values,
    access::lists_and_searches_are_audited_once_per_returned_patient,
    access::requests_without_a_valid_token_are_unauthorized,
    access::the_openapi_document_is_served,
    restore::deleted_patients_are_listed_and_restored_by_writers,
);

fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.org", Uuid::new_v4().simple())
}

/// The reference system's create body.
fn reference_body(name: &str, email: &str) -> Value {
    json!({
        "name": name,
        "email": email,
        "address": "221B Baker Street, London",
        "dateOfBirth": "1985-06-15",
        "registeredDate": "2024-01-10",
    })
}

/// `YYYY-MM-DD`, `days` from today (UTC).
fn today_plus(days: i64) -> String {
    (Utc::now() + Duration::days(days))
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header").to_owned())
}
