//! Human ids: wherever a command takes a patient, a user or an invoice, people may type what they
//! see — a patient's MRN (`MRN-000001`), a user's email, an invoice number (`INV-000042`) —
//! instead of a UUID. Each is resolved through the server's list and lookup endpoints (an exact
//! match on the results).

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

/// An invoice as typed: its id or its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvoiceKey {
    Id(Uuid),
    /// `INV-` and digits, upper case.
    Number(String),
}

impl InvoiceKey {
    /// A UUID, or an invoice number (`INV-` and digits, any case).
    pub fn parse(raw: &str) -> std::result::Result<InvoiceKey, String> {
        let raw = raw.trim();
        if let Ok(id) = Uuid::parse_str(raw) {
            return Ok(InvoiceKey::Id(id));
        }
        let upper = raw.to_ascii_uppercase();
        match upper.strip_prefix("INV-") {
            Some(digits)
                if (1..=18).contains(&digits.len())
                    && digits.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Ok(InvoiceKey::Number(upper))
            }
            _ => Err(format!(
                "`{raw}` is not an invoice: pass its number (INV-000042) or id (a UUID)"
            )),
        }
    }
}

impl ApiClient {
    /// The patient's id: as given, or found by its MRN (exit 3 when no patient has it).
    pub async fn resolve_patient(&self, key: &PatientKey) -> Result<Uuid> {
        self.resolve_mrn(key, false).await
    }

    /// A deleted patient's id: as given, or found by its MRN among the deleted patients.
    pub async fn resolve_deleted_patient(&self, key: &PatientKey) -> Result<Uuid> {
        self.resolve_mrn(key, true).await
    }

    async fn resolve_mrn(&self, key: &PatientKey, deleted: bool) -> Result<Uuid> {
        let mrn = match key {
            PatientKey::Id(id) => return Ok(*id),
            PatientKey::Mrn(mrn) => mrn,
        };
        let query = PatientQuery {
            q: Some(mrn.clone()),
            limit: Some(100),
            ..PatientQuery::default()
        };
        let page = if deleted {
            self.list_deleted_patients(&query, false).await?
        } else {
            self.list_patients(&query, false).await?
        };
        let which = if deleted {
            "deleted patient"
        } else {
            "patient"
        };
        page.items
            .iter()
            .find(|p| p.mrn.eq_ignore_ascii_case(mrn))
            .map(|p| p.id)
            .ok_or_else(|| Error::NotFound(format!("no {which} has MRN {mrn}")))
    }

    /// The invoice's id: as given, or found by its number (exit 3 when no invoice has it).
    pub async fn resolve_invoice(&self, key: &InvoiceKey) -> Result<Uuid> {
        match key {
            InvoiceKey::Id(id) => Ok(*id),
            InvoiceKey::Number(number) => self
                .find_invoice(number)
                .await?
                .map(|invoice| invoice.id)
                .ok_or_else(|| Error::NotFound(format!("no invoice has the number {number}"))),
        }
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
    fn invoices_are_ids_or_numbers() {
        assert_eq!(
            InvoiceKey::parse(" inv-000042 "),
            Ok(InvoiceKey::Number("INV-000042".into()))
        );
        assert!(matches!(
            InvoiceKey::parse("00000000-0000-4000-8000-000000000001"),
            Ok(InvoiceKey::Id(_))
        ));
        for bad in ["INV-", "INV-4x", "42", "INV-1234567890123456789"] {
            assert!(InvoiceKey::parse(bad).is_err(), "{bad}");
        }
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
