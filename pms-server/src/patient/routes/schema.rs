//! The request bodies as the OpenAPI document states them. The wire type
//! ([`pms_proto::rest::PatientRequest`]) is deliberately loose (every field optional) so that the
//! handler reports every bad field at once; these twins say what the handler actually accepts:
//! required fields, lengths, character classes, enums, date ranges. A test keeps their field
//! names equal to the wire type's.
//!
//! Dates may not lie in the future, which no static pattern can say: [`DateBounds`] rewrites the
//! date patterns when the document is served, from 1900-01-01 through the latest date that is
//! "today" somewhere on Earth (the handler's own bound, [`latest_today`]).

#![allow(dead_code)] // Fields are read by the `ToSchema` derive only.

use chrono::{Datelike, NaiveDate};
use utoipa::ToSchema;

use crate::patient::model::latest_today;

/// `POST /patients`.
// `Deserialize` only for its `serde` attributes, which utoipa reads: unknown fields are refused.
#[derive(ToSchema, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatientCreate {
    /// Trimmed; at most 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^\s*([^\s\x00-\x1F\x7F-\x9F]|[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])\s*$"
    )]
    name: String,
    /// A valid address, at most 254 characters; unique (case-insensitive) among patients.
    #[schema(format = Email, min_length = 3, max_length = 254)]
    email: String,
    /// Trimmed; at most 500 characters; line breaks and tabs allowed, other control characters not.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^\s*([^\s\x00-\x1F\x7F-\x9F]|[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])\s*$"
    )]
    address: String,
    /// `YYYY-MM-DD`, from 1900-01-01, not in the future.
    #[schema(format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    date_of_birth: String,
    /// `YYYY-MM-DD`, from 1900-01-01, not in the future.
    #[schema(format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    registered_date: String,
    /// Digits, spaces and `+-()`, 5–30 characters; blank or `null` means none.
    #[schema(pattern = r"^\s*([0-9+()-][0-9 +()-]{3,28}[0-9+()-])?\s*$")]
    phone: Option<String>,
    /// Administrative sex: `FEMALE`, `MALE`, `OTHER` or `UNKNOWN` (any case); blank or `null`
    /// means none.
    #[schema(
        pattern = r"^\s*([Ff][Ee][Mm][Aa][Ll][Ee]|[Mm][Aa][Ll][Ee]|[Oo][Tt][Hh][Ee][Rr]|[Uu][Nn][Kk][Nn][Oo][Ww][Nn])?\s*$"
    )]
    sex: Option<String>,
}

/// `PUT /patients/{id}`: like [`PatientCreate`], but `registeredDate`, `phone` and `sex` are kept
/// when absent (or `null`), and a blank `phone` or `sex` clears it.
#[derive(ToSchema, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatientUpdate {
    /// Trimmed; at most 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^\s*([^\s\x00-\x1F\x7F-\x9F]|[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])\s*$"
    )]
    name: String,
    /// A valid address, at most 254 characters; unique (case-insensitive) among patients.
    #[schema(format = Email, min_length = 3, max_length = 254)]
    email: String,
    /// Trimmed; at most 500 characters; line breaks and tabs allowed, other control characters not.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^\s*([^\s\x00-\x1F\x7F-\x9F]|[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F])\s*$"
    )]
    address: String,
    /// `YYYY-MM-DD`, from 1900-01-01, not in the future.
    #[schema(format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    date_of_birth: String,
    /// `YYYY-MM-DD`, from 1900-01-01, not in the future; absent keeps the stored date.
    #[schema(format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    registered_date: Option<String>,
    /// Digits, spaces and `+-()`, 5–30 characters; blank clears, absent keeps.
    #[schema(pattern = r"^\s*([0-9+()-][0-9 +()-]{3,28}[0-9+()-])?\s*$")]
    phone: Option<String>,
    /// Administrative sex: `FEMALE`, `MALE`, `OTHER` or `UNKNOWN` (any case); blank clears, absent
    /// keeps.
    #[schema(
        pattern = r"^\s*([Ff][Ee][Mm][Aa][Ll][Ee]|[Mm][Aa][Ll][Ee]|[Oo][Tt][Hh][Ee][Rr]|[Uu][Nn][Kk][Nn][Oo][Ww][Nn])?\s*$"
    )]
    sex: Option<String>,
}

/// Replaces the date placeholder of every patient body with the accepted range, as of now.
pub struct DateBounds;

impl utoipa::Modify for DateBounds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let pattern = date_range_pattern(latest_today());
        let Ok(mut doc) = serde_json::to_value(&*openapi) else {
            return;
        };
        if let Some(schemas) = doc
            .pointer_mut("/components/schemas")
            .and_then(serde_json::Value::as_object_mut)
        {
            for name in ["PatientCreate", "PatientUpdate"] {
                for field in ["dateOfBirth", "registeredDate"] {
                    if let Some(p) = schemas
                        .get_mut(name)
                        .and_then(|s| s.pointer_mut(&format!("/properties/{field}/pattern")))
                    {
                        *p = serde_json::Value::String(pattern.clone());
                    }
                }
            }
        }
        // Same shape as before, one string changed: this cannot fail to read back.
        if let Ok(rewritten) = serde_json::from_value(doc) {
            *openapi = rewritten;
        }
    }
}

/// A regular expression matching `YYYY-MM-DD` strings from 1900-01-01 through `last` (calendar
/// validity is left to `format: date`).
pub fn date_range_pattern(last: NaiveDate) -> String {
    const MONTH: &str = "(0[1-9]|1[0-2])";
    const DAY: &str = "(0[1-9]|[12][0-9]|3[01])";
    let two = |n: u32| format!("{n:02}");
    let mut alternatives = Vec::new();
    // Whole years 1900 ..= last year, a decade at a time.
    let last_year = u32::try_from(last.year()).unwrap_or(1900);
    let mut year = 1900;
    while year < last_year {
        let decade = year / 10;
        let end = (decade * 10 + 9).min(last_year - 1);
        alternatives.push(format!(
            "{decade}[{}-{}]-{MONTH}-{DAY}",
            year % 10,
            end % 10
        ));
        year = end + 1;
    }
    // This year's whole months, then this month's days.
    let months: Vec<String> = (1..last.month()).map(two).collect();
    if !months.is_empty() {
        alternatives.push(format!("{last_year}-({})-{DAY}", months.join("|")));
    }
    let days: Vec<String> = (1..=last.day()).map(two).collect();
    alternatives.push(format!(
        "{last_year}-{}-({})",
        two(last.month()),
        days.join("|")
    ));
    format!("^({})$", alternatives.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(pattern: &str) -> regex::Regex {
        regex::Regex::new(pattern).expect("a valid pattern")
    }

    #[test]
    fn the_date_pattern_spans_1900_to_the_given_day() {
        let last = NaiveDate::from_ymd_opt(2026, 11, 30).expect("date");
        let pattern = re(&date_range_pattern(last));
        let served = documented("PatientCreate", "dateOfBirth");
        assert!(served.is_match("1900-01-01") && !served.is_match("1899-12-31"));
        for ok in [
            "1900-01-01",
            "1999-12-31",
            "2025-02-28",
            "2026-10-31",
            "2026-11-30",
        ] {
            assert!(pattern.is_match(ok), "{ok}");
        }
        for bad in [
            "1899-12-31",
            "2026-12-01",
            "2027-01-01",
            "2126-01-01",
            "1900-1-01",
            " 2000-01-01",
            "2000-13-01",
        ] {
            assert!(!pattern.is_match(bad), "{bad}");
        }
        let january = re(&date_range_pattern(
            NaiveDate::from_ymd_opt(2030, 1, 2).expect("date"),
        ));
        assert!(january.is_match("2029-12-31") && january.is_match("2030-01-02"));
        assert!(!january.is_match("2030-01-03") && !january.is_match("2030-02-01"));
    }

    /// The pattern the served document states for `field` of `body`.
    fn documented(body: &str, field: &str) -> regex::Regex {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(super::super::ApiDoc::openapi()).expect("json");
        let pointer = format!("/components/schemas/{body}/properties/{field}/pattern");
        re(doc
            .pointer(&pointer)
            .and_then(|p| p.as_str())
            .expect("a pattern"))
    }

    #[test]
    fn text_patterns_agree_with_the_parsers() {
        use crate::patient::model::{Address, PatientName, Phone};
        let name = documented("PatientCreate", "name");
        let address = documented("PatientUpdate", "address");
        let phone = documented("PatientCreate", "phone");
        for text in [
            "12345",
            "+1 (555) 010-99",
            "1234",
            "abcde",
            "  ",
            "",
            "-)(2 ",
            " 12345 ",
            "1 2 3",
        ] {
            let accepted = text.trim().is_empty() || Phone::parse(text).is_ok();
            assert_eq!(phone.is_match(text), accepted, "phone {text:?}");
        }
        for text in [
            "Ann",
            " Ann Lee ",
            "Zoë",
            "a\tb",
            "a\nb",
            " ",
            "",
            "\u{85}x",
            "\tAnn\n",
            "a\u{85}b",
            "a\r\nb",
            "x\u{7f}",
            "\u{3000}",
        ] {
            assert_eq!(
                name.is_match(text),
                PatientName::parse(text).is_ok(),
                "name {text:?}"
            );
            assert_eq!(
                address.is_match(text),
                Address::parse(text).is_ok(),
                "address {text:?}"
            );
        }
    }
}
