//! Parse, don't validate: the patient service's domain types. A [`PatientRequest`] is parsed once,
//! at the HTTP edge, into a [`NewPatient`] or a [`PatientChanges`]; every field is checked and every
//! problem reported at once (one [`FieldError`] per bad field, under its JSON name). Inner layers
//! (the store) only ever see valid values.

use chrono::{Duration, NaiveDate, Utc};
use pms_proto::rest::{FieldError, PatientRequest, Sex};

/// Longest accepted name, in characters (reference system: `@Size(max = 100)`).
pub const NAME_MAX: usize = 100;
use crate::email::EmailError;
pub use crate::email::{EMAIL_MAX, Email};
/// Longest accepted address, in characters.
pub const ADDRESS_MAX: usize = 500;
/// Phone length bounds, in characters.
pub const PHONE_LEN: std::ops::RangeInclusive<usize> = 5..=30;

/// The earliest accepted date of birth.
pub fn earliest_birth_date() -> NaiveDate {
    // Invariant: 1900-01-01 is a valid calendar date.
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// The latest date that is "today" somewhere on Earth (UTC+14). Dates after it are in the future
/// for every user; comparing with the UTC date instead would refuse a clinic east of Greenwich
/// registering a patient "today" in the morning.
pub fn latest_today() -> NaiveDate {
    (Utc::now() + Duration::hours(14)).date_naive()
}

/// A patient's full name: trimmed, non-empty, at most [`NAME_MAX`] characters, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientName(String);

impl PatientName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("Name is required".to_owned());
        }
        // The length as sent counts too: the OpenAPI document's `maxLength` is of the raw value.
        if raw.chars().count() > NAME_MAX {
            return Err(format!("Name cannot exceed {NAME_MAX} characters"));
        }
        if name.chars().any(char::is_control) {
            return Err("Name must not contain control characters".to_owned());
        }
        Ok(PatientName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key names sort and search by: lowercase, whitespace runs collapsed to one space.
    pub fn sort_key(&self) -> String {
        name_key(&self.0)
    }
}

/// The sort/search key of a stored name (see [`PatientName::sort_key`]).
pub fn name_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A patient's email: the server's one [`Email`] type, with the reference system's messages.
fn parse_email(raw: &str) -> Result<Email, String> {
    Email::parse(raw).map_err(|e| match e {
        EmailError::Empty => "Email is required".to_owned(),
        EmailError::TooLong => format!("Email cannot exceed {EMAIL_MAX} characters"),
        EmailError::Invalid => "Email should be valid".to_owned(),
    })
}

/// A postal address: trimmed, non-empty, at most [`ADDRESS_MAX`] characters. Line breaks are
/// allowed; other control characters are not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address(String);

impl Address {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let address = raw.trim();
        if address.is_empty() {
            return Err("Address is required".to_owned());
        }
        // The length as sent, like the document's `maxLength`.
        if raw.chars().count() > ADDRESS_MAX {
            return Err(format!("Address cannot exceed {ADDRESS_MAX} characters"));
        }
        if address
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
        {
            return Err("Address must not contain control characters".to_owned());
        }
        Ok(Address(address.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A date of birth: `YYYY-MM-DD`, not before 1900-01-01, not in the future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateOfBirth(NaiveDate);

impl DateOfBirth {
    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, String> {
        let date = parse_iso_date(raw, "Date of birth")?;
        if date > today {
            return Err("Date of birth cannot be in the future".to_owned());
        }
        if date < earliest_birth_date() {
            return Err("Date of birth cannot be before 1900-01-01".to_owned());
        }
        Ok(DateOfBirth(date))
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }
}

/// The date a patient was registered: `YYYY-MM-DD`, not before 1900-01-01 (a typo, like a birth
/// date that early), not in the future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisteredDate(NaiveDate);

impl RegisteredDate {
    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, String> {
        let date = parse_iso_date(raw, "Registered date")?;
        if date > today {
            return Err("Registered date cannot be in the future".to_owned());
        }
        if date < earliest_birth_date() {
            return Err("Registered date cannot be before 1900-01-01".to_owned());
        }
        Ok(RegisteredDate(date))
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }
}

/// Strict `YYYY-MM-DD` (chrono alone would also take `2024-2-3`), and a real calendar date.
fn parse_iso_date(raw: &str, what: &str) -> Result<NaiveDate, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(format!("{what} is required"));
    }
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return Err(format!("{what} must be a date in the format YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| format!("{what} is not a valid calendar date"))
}

/// A phone number: digits, spaces and `+-()` only, 5 to 30 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let phone = raw.trim();
        if !phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c))
        {
            return Err("Phone may only contain digits, spaces and + - ( )".to_owned());
        }
        if !PHONE_LEN.contains(&phone.chars().count()) {
            return Err(format!(
                "Phone must be between {} and {} characters",
                PHONE_LEN.start(),
                PHONE_LEN.end()
            ));
        }
        Ok(Phone(phone.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A valid patient to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPatient {
    pub name: PatientName,
    pub email: Email,
    pub address: Address,
    pub date_of_birth: DateOfBirth,
    pub registered_date: RegisteredDate,
    pub phone: Option<Phone>,
    pub sex: Option<Sex>,
}

/// What an optional field of an update does to the stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Absent from the body: keep the stored value (reference clients know nothing of it).
    Keep,
    /// Sent as an empty string: clear it.
    Clear,
    Set(T),
}

impl<T> Change<T> {
    /// The value after applying the change to `current`.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Change::Keep => current,
            Change::Clear => None,
            Change::Set(value) => Some(value),
        }
    }
}

/// A valid full update (`PUT`): name, email, address and date of birth are replaced;
/// registered date, phone and sex are kept when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientChanges {
    pub name: PatientName,
    pub email: Email,
    pub address: Address,
    pub date_of_birth: DateOfBirth,
    pub registered_date: Option<RegisteredDate>,
    pub phone: Change<Phone>,
    pub sex: Change<Sex>,
}

/// Collects the field errors of one request.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    /// Parses a required field, recording "… is required" when it is missing.
    fn required<T>(
        &mut self,
        field: &str,
        label: &str,
        value: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match value {
            None => self.push(field, format!("{label} is required")),
            Some(raw) => parse(raw).map_err(|m| self.push::<()>(field, m)).ok(),
        }
    }

    /// Parses an optional field: absent → `Keep`, blank → `Clear`.
    fn optional<T>(
        &mut self,
        field: &str,
        value: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Change<T> {
        match value {
            None => Change::Keep,
            Some(raw) if raw.trim().is_empty() => Change::Clear,
            Some(raw) => match parse(raw) {
                Ok(value) => Change::Set(value),
                Err(message) => {
                    self.push::<()>(field, message);
                    Change::Keep
                }
            },
        }
    }

    fn push<T>(&mut self, field: &str, message: String) -> Option<T> {
        self.0.push(FieldError {
            field: field.to_owned(),
            message,
        });
        None
    }
}

fn parse_sex(raw: &str) -> Result<Sex, String> {
    Sex::parse(raw.trim()).ok_or_else(|| "Sex must be one of FEMALE, MALE, OTHER, UNKNOWN".into())
}

/// The fields every write requires, parsed.
struct CommonFields {
    name: PatientName,
    email: Email,
    address: Address,
    date_of_birth: DateOfBirth,
    phone: Change<Phone>,
    sex: Change<Sex>,
}

fn parse_common(
    req: &PatientRequest,
    today: NaiveDate,
    errors: &mut Errors,
) -> Option<CommonFields> {
    let name = errors.required("name", "Name", req.name.as_deref(), PatientName::parse);
    let email = errors.required("email", "Email", req.email.as_deref(), parse_email);
    let address = errors.required("address", "Address", req.address.as_deref(), Address::parse);
    let date_of_birth = errors.required(
        "dateOfBirth",
        "Date of birth",
        req.date_of_birth.as_deref(),
        |raw| DateOfBirth::parse(raw, today),
    );
    let phone = errors.optional("phone", req.phone.as_deref(), Phone::parse);
    let sex = errors.optional("sex", req.sex.as_deref(), parse_sex);
    Some(CommonFields {
        name: name?,
        email: email?,
        address: address?,
        date_of_birth: date_of_birth?,
        phone,
        sex,
    })
}

impl NewPatient {
    /// Parses a create request; `today` is the latest date not in the future.
    pub fn parse(req: &PatientRequest, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let mut errors = Errors::default();
        let common = parse_common(req, today, &mut errors);
        let registered_date = errors.required(
            "registeredDate",
            "Registered date",
            req.registered_date.as_deref(),
            |raw| RegisteredDate::parse(raw, today),
        );
        match (common, registered_date) {
            (Some(c), Some(registered_date)) if errors.0.is_empty() => Ok(NewPatient {
                name: c.name,
                email: c.email,
                address: c.address,
                date_of_birth: c.date_of_birth,
                registered_date,
                phone: c.phone.apply(None),
                sex: c.sex.apply(None),
            }),
            _ => Err(errors.0),
        }
    }
}

impl PatientChanges {
    /// Parses an update request; `today` is the latest date not in the future.
    pub fn parse(req: &PatientRequest, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let mut errors = Errors::default();
        let common = parse_common(req, today, &mut errors);
        let registered_date = match req.registered_date.as_deref() {
            None => None,
            Some(raw) => RegisteredDate::parse(raw, today)
                .map_err(|m| errors.push::<()>("registeredDate", m))
                .ok(),
        };
        match common {
            Some(c) if errors.0.is_empty() => Ok(PatientChanges {
                name: c.name,
                email: c.email,
                address: c.address,
                date_of_birth: c.date_of_birth,
                registered_date,
                phone: c.phone,
                sex: c.sex,
            }),
            _ => Err(errors.0),
        }
    }
}

#[cfg(test)]
mod tests;
