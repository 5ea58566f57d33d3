//! JSON shapes that belong to the CLI itself (the API's records are printed as the API defines
//! them in `pms_proto::rest`). Field names are camelCase and stable; new fields may be added,
//! none removed or renamed.

use chrono::{DateTime, Utc};
use pms_proto::rest::Role;
use serde::Serialize;
use serde_json::Value;

use super::Tabular;
use super::columns::time;

/// `pms auth status` and `pms login` (`-o json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthStatus {
    pub profile: String,
    pub server: String,
    pub logged_in: bool,
    /// `env` (PMS_TOKEN), `keyring` or `file`; null when logged out.
    pub source: Option<String>,
    /// The store holding the session: `PMS_TOKEN`, `secret-service`, `keyutils`, `keychain`,
    /// `credential-manager` or `file`.
    pub store: Option<String>,
    /// The session file, when `store` is `file`.
    pub store_path: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
    pub access_token_expires_at: Option<DateTime<Utc>>,
    /// Whether the server accepted the token just now (null: not checked).
    pub verified: Option<bool>,
}

impl Tabular for AuthStatus {
    const HEADERS: &'static [&'static str] = &[
        "profile",
        "server",
        "loggedIn",
        "store",
        "email",
        "role",
        "accessTokenExpiresAt",
        "verified",
    ];
    fn row(&self) -> Vec<String> {
        let store = match (&self.store, &self.store_path) {
            (Some(store), Some(path)) => format!("{store} ({path}, plain text)"),
            (Some(store), None) if store == "PMS_TOKEN" => "PMS_TOKEN (environment)".to_owned(),
            (Some(store), None) => format!("{store} (OS keyring)"),
            (None, _) => String::new(),
        };
        vec![
            self.profile.clone(),
            self.server.clone(),
            self.logged_in.to_string(),
            store,
            self.email.clone().unwrap_or_default(),
            self.role.map(|r| r.to_string()).unwrap_or_default(),
            self.access_token_expires_at
                .as_ref()
                .map(time)
                .unwrap_or_default(),
            self.verified.map(|v| v.to_string()).unwrap_or_default(),
        ]
    }
}

/// One event of `pms events tail -o json` (one object per line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventLine {
    /// The stream's event id (resume point), if the server sent one.
    pub id: Option<String>,
    /// The SSE event type (`PATIENT_CREATED`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// The event payload: JSON when it parses, else the raw text.
    pub data: Value,
}

/// A list page with `--page-info` (`-o json`): the items as the plain list would print them and
/// the cursor of the next page (`null` on the last), for `--cursor` (`--after` for
/// `analytics events`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageInfo<'a, T> {
    pub items: &'a [T],
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_its_items_and_the_next_cursor() {
        let page = PageInfo {
            items: &[1, 2],
            next: Some("abc".to_owned()),
        };
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            serde_json::json!({"items": [1, 2], "next": "abc"})
        );
        let last = PageInfo::<u8> {
            items: &[],
            next: None,
        };
        assert_eq!(
            serde_json::to_value(&last).unwrap(),
            serde_json::json!({"items": [], "next": null})
        );
    }
}
