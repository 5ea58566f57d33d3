//! `GET /audit` parameters at the HTTP edge: the filters (patient, actor, action, time range),
//! `limit`, the sealed `cursor` (newest first, by sequence number) and the `Link` header of the
//! next page, which repeats the filters.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::cursor::CursorKey;
use super::paging::{Position, collect_errors, decode, encode, parse_limit};
use super::store::{AuditQuery, PatientAction};
use crate::audit::AuditAction;
use crate::error::ApiError;

/// The order audit cursors are bound to.
const AUDIT_ORDER: &str = "audit";

/// `GET /audit` query string, as sent. Every field is a string so that each bad value gets a
/// 400 naming its parameter.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AuditListParams {
    /// Only rows about this patient.
    #[param(value_type = Uuid, required = false)]
    pub patient_id: Option<String>,
    /// Only rows of this user (the `actorId` of the rows).
    #[param(value_type = Uuid, required = false)]
    pub actor_id: Option<String>,
    /// Only rows of this action.
    #[param(value_type = AuditActionParam, inline, required = false)]
    pub action: Option<String>,
    /// Only rows at or after this time (RFC 3339).
    #[param(value_type = DateTime<Utc>, required = false)]
    pub since: Option<String>,
    /// Only rows before this time (RFC 3339, exclusive).
    #[param(value_type = DateTime<Utc>, required = false)]
    pub until: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(value_type = u32, required = false, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// Opaque position from a previous page's `Link` header.
    #[param(value_type = String, required = false, min_length = 1, max_length = 2048,
        pattern = r"^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

/// The `action` values, for the OpenAPI document (a test keeps it equal to
/// [`PatientAction::ALL`]).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub enum AuditActionParam {
    #[schema(rename = "patient.list")]
    List,
    #[schema(rename = "patient.search")]
    Search,
    #[schema(rename = "patient.read")]
    Read,
    #[schema(rename = "patient.create")]
    Create,
    #[schema(rename = "patient.update")]
    Update,
    #[schema(rename = "patient.delete")]
    Delete,
    #[schema(rename = "patient.history")]
    History,
    #[schema(rename = "audit.read")]
    AuditRead,
    #[schema(rename = "patient.list_deleted")]
    ListDeleted,
    #[schema(rename = "patient.restore")]
    Restore,
}

/// The hyphenated form only, as the document's `format: uuid` says (`Uuid::parse_str` would
/// also take the simple, braced and URN forms).
fn parse_uuid(field: &str, raw: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    raw.map(|raw| {
        Some(raw)
            .filter(|raw| raw.len() == 36)
            .and_then(|raw| Uuid::parse_str(raw).ok())
            .ok_or_else(|| ApiError::field(field, format!("{field} must be a UUID")))
    })
    .transpose()
}

fn parse_time(field: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|raw| {
        DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::field(
                    field,
                    format!("{field} must be an RFC 3339 time such as 2026-01-31T09:00:00Z"),
                )
            })
    })
    .transpose()
}

fn parse_action(raw: Option<&str>) -> Result<Option<PatientAction>, ApiError> {
    raw.map(|raw| {
        PatientAction::ALL
            .into_iter()
            .find(|a| a.name() == raw)
            .ok_or_else(|| {
                let names: Vec<&str> = PatientAction::ALL.iter().map(|a| a.name()).collect();
                ApiError::field(
                    "action",
                    format!("action must be one of {}", names.join(", ")),
                )
            })
    })
    .transpose()
}

/// Parses an audit listing query; every bad parameter is reported. A `since` after `until`
/// is no error: nothing matches.
pub fn parse_audit_list(params: &AuditListParams, key: &CursorKey) -> Result<AuditQuery, ApiError> {
    let mut errors = Vec::new();
    let patient_id = collect_errors(
        &mut errors,
        parse_uuid("patientId", params.patient_id.as_deref()),
    );
    let actor_id = collect_errors(
        &mut errors,
        parse_uuid("actorId", params.actor_id.as_deref()),
    );
    let action = collect_errors(&mut errors, parse_action(params.action.as_deref()));
    let since = collect_errors(&mut errors, parse_time("since", params.since.as_deref()));
    let until = collect_errors(&mut errors, parse_time("until", params.until.as_deref()));
    let limit = collect_errors(&mut errors, parse_limit(params.limit.as_deref()));
    let before = collect_errors(
        &mut errors,
        params
            .cursor
            .as_deref()
            .map(|c| decode(c, AUDIT_ORDER, key).map(|p| p.s))
            .transpose(),
    );
    match (patient_id, actor_id, action, since, until, limit, before) {
        (
            Some(patient_id),
            Some(actor_id),
            Some(action),
            Some(since),
            Some(until),
            Some(limit),
            Some(before),
        ) => Ok(AuditQuery {
            patient_id,
            actor_id,
            action: action.map(|a| a.name()),
            since,
            until,
            before,
            limit,
        }),
        _ => Err(ApiError::fields(errors)),
    }
}

/// `Link` header value announcing the audit page after sequence number `next` (same filters).
pub fn audit_next_link(query: &AuditQuery, next: i64, key: &CursorKey) -> Result<String, ApiError> {
    let cursor = encode(
        &Position {
            o: AUDIT_ORDER.to_owned(),
            s: next,
            n: None,
        },
        key,
    )?;
    let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let mut qs = url::form_urlencoded::Serializer::new(String::new());
    if let Some(patient_id) = query.patient_id {
        qs.append_pair("patientId", &patient_id.to_string());
    }
    if let Some(actor_id) = query.actor_id {
        qs.append_pair("actorId", &actor_id.to_string());
    }
    if let Some(action) = query.action {
        qs.append_pair("action", action);
    }
    if let Some(since) = &query.since {
        qs.append_pair("since", &time(since));
    }
    if let Some(until) = &query.until {
        qs.append_pair("until", &time(until));
    }
    qs.append_pair("limit", &query.limit.to_string());
    qs.append_pair("cursor", &cursor);
    Ok(format!("</api/audit?{}>; rel=\"next\"", qs.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::IntoParams;

    fn key() -> CursorKey {
        CursorKey::from_bytes(&[9; crate::patient::cursor::KEY_LEN]).expect("key")
    }

    fn bad_fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::BadRequest { errors, .. } => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn a_next_link_keeps_every_filter() {
        let (patient, actor) = (Uuid::new_v4(), Uuid::new_v4());
        let query = AuditQuery {
            patient_id: Some(patient),
            actor_id: Some(actor),
            action: Some("patient.read"),
            since: Some("2026-01-02T03:04:05Z".parse().expect("time")),
            until: Some("2026-02-01T00:00:00.5Z".parse().expect("time")),
            before: None,
            limit: 5,
        };
        let link = audit_next_link(&query, 99, &key()).expect("link");
        assert!(
            link.starts_with(&format!("</api/audit?patientId={patient}&actorId={actor}")),
            "{link}"
        );
        let inner = link
            .strip_prefix("</api/audit?")
            .and_then(|l| l.strip_suffix(">; rel=\"next\""))
            .expect("link shape");
        let mut params = AuditListParams::default();
        for (k, v) in url::form_urlencoded::parse(inner.as_bytes()) {
            let v = Some(v.into_owned());
            match k.as_ref() {
                "patientId" => params.patient_id = v,
                "actorId" => params.actor_id = v,
                "action" => params.action = v,
                "since" => params.since = v,
                "until" => params.until = v,
                "limit" => params.limit = v,
                "cursor" => params.cursor = v,
                other => panic!("unexpected {other}"),
            }
        }
        let again = parse_audit_list(&params, &key()).expect("valid");
        assert_eq!(
            again,
            AuditQuery {
                before: Some(99),
                ..query
            }
        );
    }

    #[test]
    fn every_bad_filter_is_reported() {
        let err = parse_audit_list(
            &AuditListParams {
                patient_id: Some("x".into()),
                actor_id: Some("{00000000-0000-0000-0000-000000000000}".into()),
                action: Some("patient.dance".into()),
                since: Some("yesterday".into()),
                until: Some("2026-13-01T00:00:00Z".into()),
                limit: Some("0".into()),
                cursor: Some("e30".into()),
            },
            &key(),
        )
        .expect_err("all bad");
        assert_eq!(
            bad_fields(err),
            [
                "patientId",
                "actorId",
                "action",
                "since",
                "until",
                "limit",
                "cursor"
            ]
        );
        let empty = parse_audit_list(&AuditListParams::default(), &key()).expect("defaults");
        assert_eq!(
            empty,
            AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            }
        );
    }

    #[test]
    fn the_documented_actions_are_the_audited_ones() {
        let params = AuditListParams::into_params(|| None);
        let action = params
            .iter()
            .find(|p| p.name == "action")
            .expect("action parameter");
        let schema = serde_json::to_value(&action.schema).expect("json");
        let documented: Vec<String> =
            serde_json::from_value(schema["enum"].clone()).expect("an enum");
        let audited: Vec<String> = PatientAction::ALL
            .iter()
            .map(|a| a.name().to_owned())
            .collect();
        assert_eq!(documented, audited);
    }
}
