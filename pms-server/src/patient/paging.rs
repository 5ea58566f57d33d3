//! Listing parameters at the HTTP edge: `limit`, the opaque `cursor` (a keyset position, sealed
//! by [`CursorKey`] so no patient field is readable in a URL), `q`, `sort`, and the
//! `Link: <…>; rel="next"` header announcing the next page. The audit log's filters are in
//! [`super::audit_query`], on the same cursors.
//!
//! Links carry the path as clients see it through the gateway (`/api/…`), since clients follow
//! them there. A cursor names the sort order it was made for, so it cannot be replayed against
//! another order and silently skip rows.

use serde::{Deserialize, Serialize};

use super::cursor::CursorKey;
use super::store::{ListQuery, PatientKey, SortOrder};
use crate::error::ApiError;

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest accepted `limit`.
pub const MAX_LIMIT: u32 = 1000;
/// Longest accepted `q`, in characters (the longest searchable field is a 254-character email).
pub const MAX_QUERY: usize = 254;
/// Longest accepted cursor: a sealed cursor holds at most a 100-character name and a number.
const MAX_CURSOR: usize = 2048;

/// `GET /patients` query string, as sent. Every field is a string so that each bad value gets a
/// 400 naming its parameter.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PatientListParams {
    /// Page size, 1–1000 (default 100).
    #[param(value_type = u32, required = false, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// Opaque position from a previous page's `Link` header, for the same `sort`.
    #[param(value_type = String, required = false, min_length = 1, max_length = 2048,
        pattern = r"^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
    /// Case-insensitive prefix of the name (or of any word of it), the email or the MRN; blank
    /// lists everyone.
    #[param(value_type = String, required = false, max_length = 254)]
    pub q: Option<String>,
    /// `createdAt` (default), `-createdAt`, `name` or `-name`.
    #[param(value_type = SortParam, inline, required = false)]
    pub sort: Option<String>,
}

/// The `sort` values, for the OpenAPI document (the handler parses the raw string so that a bad
/// value is reported with the other bad parameters).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub enum SortParam {
    #[schema(rename = "createdAt")]
    CreatedAsc,
    #[schema(rename = "-createdAt")]
    CreatedDesc,
    #[schema(rename = "name")]
    NameAsc,
    #[schema(rename = "-name")]
    NameDesc,
}

/// The keyset position a cursor encodes.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(super) struct Position {
    /// The order it belongs to: a `?sort=` value, or `audit`.
    pub(super) o: String,
    /// Sequence number.
    pub(super) s: i64,
    /// Name key, for name orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) n: Option<String>,
}

pub(super) fn encode(position: &Position, key: &CursorKey) -> Result<String, ApiError> {
    // Serialising a struct of strings and an integer cannot fail.
    let plain = serde_json::to_vec(position).unwrap_or_default();
    key.seal(&plain)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("cannot seal a cursor")))
}

fn invalid_cursor() -> ApiError {
    ApiError::field(
        "cursor",
        "not a cursor of this list: pass the next page's cursor unchanged, with the same sort",
    )
}

pub(super) fn decode(cursor: &str, order: &str, key: &CursorKey) -> Result<Position, ApiError> {
    if cursor.len() > MAX_CURSOR {
        return Err(invalid_cursor());
    }
    let bytes = key.open(cursor).ok_or_else(invalid_cursor)?;
    let position: Position = serde_json::from_slice(&bytes).map_err(|_| invalid_cursor())?;
    if position.o != order {
        return Err(invalid_cursor());
    }
    Ok(position)
}

/// The order a listing's cursors are bound to: a cursor of the live list does not continue the
/// deleted one.
fn list_order(sort: SortOrder, deleted: bool) -> String {
    if deleted {
        format!("deleted{}", sort.as_str())
    } else {
        sort.as_str().to_owned()
    }
}

fn decode_patient_key(
    cursor: &str,
    order: &str,
    sort: SortOrder,
    key: &CursorKey,
) -> Result<PatientKey, ApiError> {
    let position = decode(cursor, order, key)?;
    let by_name = matches!(sort, SortOrder::NameAsc | SortOrder::NameDesc);
    match (by_name, position.n) {
        (true, Some(name_key)) => Ok(PatientKey {
            seq: position.s,
            name_key,
        }),
        (false, None) => Ok(PatientKey {
            seq: position.s,
            name_key: String::new(),
        }),
        _ => Err(invalid_cursor()),
    }
}

pub(super) fn parse_limit(limit: Option<&str>) -> Result<u32, ApiError> {
    let Some(raw) = limit else {
        return Ok(DEFAULT_LIMIT);
    };
    match raw.parse::<u32>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::field(
            "limit",
            format!("limit must be an integer between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// `Some(value)`, or `None` with the field errors added to `errors`.
pub(super) fn collect_errors<T>(
    errors: &mut Vec<pms_proto::rest::FieldError>,
    result: Result<T, ApiError>,
) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(ApiError::BadRequest { errors: e, .. }) => {
            errors.extend(e);
            None
        }
        // The parsers here only answer 400s.
        Err(_) => None,
    }
}

/// Parses a patient listing query (of live patients, or of deleted ones when `deleted`); every
/// bad parameter is reported.
pub fn parse_patient_list(
    params: &PatientListParams,
    deleted: bool,
    key: &CursorKey,
) -> Result<ListQuery, ApiError> {
    let mut errors = Vec::new();
    let limit = collect_errors(&mut errors, parse_limit(params.limit.as_deref()));
    let sort = collect_errors(
        &mut errors,
        // Exactly one of the documented values: what the schema forbids is refused.
        match params.sort.as_deref() {
            None => Ok(SortOrder::CreatedAsc),
            Some(s) => SortOrder::parse(s).ok_or_else(|| {
                ApiError::field(
                    "sort",
                    "sort must be one of createdAt, -createdAt, name, -name",
                )
            }),
        },
    );
    let search = collect_errors(
        &mut errors,
        // The length as sent (the document's `maxLength`), then trimmed.
        match params.q.as_deref() {
            Some(q) if q.chars().count() > MAX_QUERY => Err(ApiError::field(
                "q",
                format!("q cannot exceed {MAX_QUERY} characters"),
            )),
            Some(q) if !q.trim().is_empty() => Ok(Some(q.trim().to_owned())),
            _ => Ok(None),
        },
    );
    let after = match (sort, params.cursor.as_deref()) {
        (Some(sort), Some(cursor)) => collect_errors(
            &mut errors,
            decode_patient_key(cursor, &list_order(sort, deleted), sort, key).map(Some),
        ),
        _ => Some(None),
    };
    match (limit, sort, search, after) {
        (Some(limit), Some(sort), Some(search), Some(after)) => Ok(ListQuery {
            search,
            sort,
            after,
            limit,
            deleted,
        }),
        _ => Err(ApiError::fields(errors)),
    }
}

/// `Link` header value announcing the patient page after `next`.
pub fn patient_next_link(
    query: &ListQuery,
    next: &PatientKey,
    key: &CursorKey,
) -> Result<String, ApiError> {
    let by_name = matches!(query.sort, SortOrder::NameAsc | SortOrder::NameDesc);
    let cursor = encode(
        &Position {
            o: list_order(query.sort, query.deleted),
            s: next.seq,
            n: by_name.then(|| next.name_key.clone()),
        },
        key,
    )?;
    let mut qs = url::form_urlencoded::Serializer::new(String::new());
    qs.append_pair("limit", &query.limit.to_string());
    qs.append_pair("cursor", &cursor);
    if let Some(q) = &query.search {
        qs.append_pair("q", q);
    }
    qs.append_pair("sort", query.sort.as_str());
    let path = if query.deleted {
        "/api/patients/deleted"
    } else {
        "/api/patients"
    };
    Ok(format!("<{path}?{}>; rel=\"next\"", qs.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn key() -> CursorKey {
        CursorKey::from_bytes(&[9; crate::patient::cursor::KEY_LEN]).expect("key")
    }

    fn parse_with_key(params: &PatientListParams) -> Result<ListQuery, ApiError> {
        parse_patient_list(params, false, &key())
    }

    fn params(
        limit: Option<&str>,
        cursor: Option<&str>,
        q: Option<&str>,
        sort: Option<&str>,
    ) -> PatientListParams {
        PatientListParams {
            limit: limit.map(Into::into),
            cursor: cursor.map(Into::into),
            q: q.map(Into::into),
            sort: sort.map(Into::into),
        }
    }

    fn bad_fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::BadRequest { errors, .. } => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn defaults_apply() {
        let q = parse_with_key(&params(None, None, Some("  "), None)).expect("valid");
        assert_eq!(
            (q.limit, q.sort, q.search, q.after),
            (100, SortOrder::CreatedAsc, None, None)
        );
    }

    #[test]
    fn limits_and_sorts_are_checked_together() {
        for limit in ["0", "1001", "abc", "-1", "1.5", ""] {
            let err =
                parse_with_key(&params(Some(limit), None, None, Some("age"))).expect_err(limit);
            assert_eq!(bad_fields(err), ["limit", "sort"], "{limit}");
        }
        let q = parse_with_key(&params(Some("1000"), None, None, Some("-name"))).expect("ok");
        assert_eq!((q.limit, q.sort), (1000, SortOrder::NameDesc));
    }

    #[test]
    fn a_link_cursor_round_trips_with_its_query() {
        let query = ListQuery {
            search: Some("a&b c%".to_owned()),
            sort: SortOrder::NameDesc,
            after: None,
            limit: 7,
            deleted: false,
        };
        let position = PatientKey {
            seq: 42,
            name_key: "zoë ann".to_owned(),
        };
        let link = patient_next_link(&query, &position, &key()).expect("link");
        let inner = link
            .strip_prefix("</api/patients?")
            .and_then(|l| l.strip_suffix(">; rel=\"next\""))
            .expect("link shape");
        let parsed: PatientListParams = serde_urlencoded_like(inner);
        let again = parse_patient_list(&parsed, false, &key()).expect("valid");
        assert_eq!(again.search, query.search);
        assert_eq!((again.sort, again.limit), (SortOrder::NameDesc, 7));
        assert_eq!(again.after, Some(position));
    }

    fn serde_urlencoded_like(qs: &str) -> PatientListParams {
        let mut p = PatientListParams::default();
        for (k, v) in url::form_urlencoded::parse(qs.as_bytes()) {
            let v = Some(v.into_owned());
            match k.as_ref() {
                "limit" => p.limit = v,
                "cursor" => p.cursor = v,
                "q" => p.q = v,
                "sort" => p.sort = v,
                other => panic!("unexpected {other}"),
            }
        }
        p
    }

    #[test]
    fn cursors_are_bound_to_their_order_and_must_be_well_formed() {
        let query = ListQuery {
            search: None,
            sort: SortOrder::CreatedAsc,
            after: None,
            limit: 10,
            deleted: false,
        };
        let position = PatientKey {
            seq: 3,
            name_key: "x".to_owned(),
        };
        let link = patient_next_link(&query, &position, &key()).expect("link");
        let cursor = link
            .split("cursor=")
            .nth(1)
            .and_then(|c| c.split('&').next())
            .expect("cursor");
        assert!(parse_with_key(&params(None, Some(cursor), None, None)).is_ok());
        // An unsealed position (the old format) and one sealed by another installation's key.
        let plain =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"o":"createdAt","s":3}"#);
        let other_key = CursorKey::from_bytes(&[8; crate::patient::cursor::KEY_LEN]).expect("key");
        let foreign_link = patient_next_link(&query, &position, &other_key).expect("link");
        let foreign = foreign_link
            .split("cursor=")
            .nth(1)
            .and_then(|c| c.split('&').next())
            .expect("cursor");
        for (cursor, sort) in [
            (cursor, "name"),
            ("not base64!", "createdAt"),
            ("e30", "createdAt"),
            (plain.as_str(), "createdAt"),
            (foreign, "createdAt"),
        ] {
            let err =
                parse_with_key(&params(None, Some(cursor), None, Some(sort))).expect_err(cursor);
            assert_eq!(bad_fields(err), ["cursor"]);
        }
    }
}
