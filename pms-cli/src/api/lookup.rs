//! Human ids: wherever a command takes a patient or a user, people may type what they see — a
//! patient's MRN (`MRN-000001`) or a user's email — instead of a UUID. Each is resolved through
//! the list endpoints the server already has (an exact match on the search results).

use uuid::Uuid;

use super::{ApiClient, PatientQuery};
use crate::error::{Error, Result};

/// A patient as typed: its id or its MRN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientKey {
    Id(Uuid),
    Mrn(String),
}

impl PatientKey {
    /// A UUID, or an MRN (`MRN-` and digits, any case).
    pub fn parse(raw: &str) -> std::result::Result<PatientKey, String> {
        let raw = raw.trim();
        if let Ok(id) = Uuid::parse_str(raw) {
            return Ok(PatientKey::Id(id));
        }
        let upper = raw.to_ascii_uppercase();
        match upper.strip_prefix("MRN-") {
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(PatientKey::Mrn(upper))
            }
            _ => Err(format!(
                "`{raw}` is not a patient: pass its MRN (MRN-000001) or id (a UUID)"
            )),
        }
    }
}

impl std::fmt::Display for PatientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatientKey::Id(id) => write!(f, "{id}"),
            PatientKey::Mrn(mrn) => f.write_str(mrn),
        }
    }
}

/// A user as typed: its id or its email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserKey {
    Id(Uuid),
    Email(String),
}

impl UserKey {
    /// A UUID, or anything with an `@` (an email; matched case-insensitively).
    pub fn parse(raw: &str) -> std::result::Result<UserKey, String> {
        let raw = raw.trim();
        if let Ok(id) = Uuid::parse_str(raw) {
            return Ok(UserKey::Id(id));
        }
        if raw.contains('@') {
            return Ok(UserKey::Email(raw.to_owned()));
        }
        Err(format!(
            "`{raw}` is not a user: pass their email or id (a UUID)"
        ))
    }
}

impl ApiClient {
    /// The patient's id: as given, or found by its MRN (exit 3 when no patient has it).
    pub async fn resolve_patient(&self, key: &PatientKey) -> Result<Uuid> {
        let mrn = match key {
            PatientKey::Id(id) => return Ok(*id),
            PatientKey::Mrn(mrn) => mrn,
        };
        let query = PatientQuery {
            q: Some(mrn.clone()),
            limit: Some(100),
            ..PatientQuery::default()
        };
        let page = self.list_patients(&query, false).await?;
        page.items
            .iter()
            .find(|p| p.mrn.eq_ignore_ascii_case(mrn))
            .map(|p| p.id)
            .ok_or_else(|| Error::NotFound(format!("no patient has MRN {mrn}")))
    }

    /// The user's id: as given, or found by email (exit 3 when no user has it).
    pub async fn resolve_user(&self, key: &UserKey) -> Result<Uuid> {
        let email = match key {
            UserKey::Id(id) => return Ok(*id),
            UserKey::Email(email) => email,
        };
        self.list_users()
            .await?
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
            .map(|u| u.id)
            .ok_or_else(|| Error::NotFound(format!("no user has the email {email}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patients_are_ids_or_mrns() {
        let id = "6f9619ff-8b86-4011-b42d-00c04fc964ff";
        assert_eq!(
            PatientKey::parse(id),
            Ok(PatientKey::Id(Uuid::parse_str(id).unwrap()))
        );
        assert_eq!(
            PatientKey::parse(" mrn-000042 "),
            Ok(PatientKey::Mrn("MRN-000042".into()))
        );
        assert!(PatientKey::parse("MRN-").is_err());
        assert!(PatientKey::parse("MRN-12a").is_err());
        assert_eq!(
            PatientKey::parse("Jane").unwrap_err(),
            "`Jane` is not a patient: pass its MRN (MRN-000001) or id (a UUID)"
        );
    }

    #[test]
    fn users_are_ids_or_emails() {
        assert_eq!(
            UserKey::parse("Ann@Clinic.test"),
            Ok(UserKey::Email("Ann@Clinic.test".into()))
        );
        assert!(matches!(
            UserKey::parse("00000000-0000-4000-8000-000000000001"),
            Ok(UserKey::Id(_))
        ));
        assert!(UserKey::parse("ann").is_err());
    }
}
