//! What every service's OpenAPI document says the same way, applied by each service's `ApiDoc`
//! as the [`Conventions`] modifier so that the service's own `/openapi.json` and the gateway's
//! `/api-docs/{service}` tell the truth about the shared HTTP layers:
//! - every error is `application/problem+json` with the `Problem` schema (utoipa writes
//!   `application/json` for any `body = Problem`);
//! - every operation lists the statuses the common layers can answer it with, whatever its
//!   handler does: 400 (bad path, query or body), 401 (secured), 413 and 415 (JSON body),
//!   431 (request head too large), 500 (a bug) and 503 (request deadline, connection cap or a
//!   dependency down). They are shared `components.responses`, referenced by each operation, and
//!   never replace an operation's own, more specific description.

use serde_json::{Map, Value, json};

/// The `Modify` every service's `ApiDoc` lists: see the module doc.
pub struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // The document is plain data: serializing it cannot fail, and the rewritten value has
        // the same shape (only responses added or renamed media types). Should either step
        // fail anyway, the document is served unmodified rather than not at all.
        let Ok(mut doc) = serde_json::to_value(&*openapi) else {
            return;
        };
        apply(&mut doc);
        match serde_json::from_value(doc) {
            Ok(rewritten) => *openapi = rewritten,
            Err(e) => tracing::error!(error = %e, "cannot apply the OpenAPI conventions"),
        }
    }
}

/// The shared responses: (status, component name, description).
const SHARED: [(&str, &str, &str); 7] = [
    (
        "400",
        "BadRequest",
        "Invalid path, query, header or body (one error per bad field)",
    ),
    (
        "401",
        "Unauthorized",
        "Missing, invalid, expired or revoked access token",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is larger than the server accepts",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not `application/json`",
    ),
    (
        "431",
        "HeadersTooLarge",
        "The request head is larger than the server accepts",
    ),
    (
        "500",
        "InternalError",
        "An unexpected server error (the detail is generic)",
    ),
    (
        "503",
        "Unavailable",
        "Overloaded, past the request deadline, or a dependency is down; retry shortly",
    ),
];

/// Applies the conventions to a document in its JSON form.
pub fn apply(doc: &mut Value) {
    let secured_by_default = doc
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|r| r.as_object().is_some_and(|o| !o.is_empty()))
        });
    let problem = json!({ "$ref": "#/components/schemas/Problem" });
    if let Some(components) = doc
        .as_object_mut()
        .map(|d| d.entry("components").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        let responses = components.entry("responses").or_insert_with(|| json!({}));
        if let Some(responses) = responses.as_object_mut() {
            for (_, name, description) in SHARED {
                responses.insert(
                    name.to_owned(),
                    json!({ "description": description,
                            "content": { "application/problem+json": { "schema": problem } } }),
                );
            }
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        let path_parameters = item
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty());
        for (method, operation) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "put" | "post" | "delete" | "patch") {
                continue;
            }
            if let Some(operation) = operation.as_object_mut() {
                apply_to_operation(operation, path_parameters, secured_by_default);
            }
        }
    }
}

fn apply_to_operation(operation: &mut Map<String, Value>, path_params: bool, secured: bool) {
    let json_body = operation
        .get("requestBody")
        .and_then(|b| b.get("content"))
        .and_then(|c| c.get("application/json"))
        .is_some();
    let parameters = path_params
        || operation
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty());
    let secured = match operation.get("security").and_then(Value::as_array) {
        Some(schemes) => schemes
            .iter()
            .any(|s| s.as_object().is_some_and(|o| !o.is_empty())),
        None => secured,
    };
    let responses = operation.entry("responses").or_insert_with(|| json!({}));
    let Some(responses) = responses.as_object_mut() else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        let content = response.entry("content").or_insert_with(|| json!({}));
        if let Some(content) = content.as_object_mut() {
            let schema = content
                .remove("application/json")
                .unwrap_or_else(|| json!({ "schema": { "$ref": "#/components/schemas/Problem" } }));
            content.entry("application/problem+json").or_insert(schema);
        }
    }
    for (status, name, _) in SHARED {
        let applies = match status {
            "400" => parameters || json_body,
            "401" => secured,
            "413" | "415" => json_body,
            _ => true,
        };
        if applies {
            responses
                .entry(status)
                .or_insert_with(|| json!({ "$ref": format!("#/components/responses/{name}") }));
        }
    }
}

/// Checks a service's whole document against the conventions and the rules the handlers
/// enforce everywhere; each service's document test calls it.
#[cfg(test)]
pub(crate) fn assert_conventions(doc: &utoipa::openapi::OpenApi) {
    let doc = serde_json::to_value(doc).expect("json");
    let components = &doc["components"];
    let resolve = |value: &Value| -> Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(r) => doc
                .pointer(r.trim_start_matches('#'))
                .cloned()
                .unwrap_or_else(|| panic!("unresolvable {r}")),
            None => value.clone(),
        }
    };
    assert!(
        components["schemas"]["Problem"].is_object(),
        "Problem schema"
    );
    let secured_by_default = doc["security"].as_array().is_some_and(|s| {
        s.iter()
            .any(|s| s.as_object().is_some_and(|o| !o.is_empty()))
    });
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let name = format!("{method} {path}");
            for param in op["parameters"].as_array().into_iter().flatten() {
                let (pname, place) = (param["name"].as_str().unwrap_or(""), &param["in"]);
                match place.as_str() {
                    Some("path") => {
                        assert!(path.contains(&format!("{{{pname}}}")), "{name}: {pname}")
                    }
                    Some("query" | "header") => {}
                    other => panic!("{name}: {pname} in {other:?}"),
                }
                let ty = &param["schema"]["type"];
                assert!(
                    !ty.as_array().is_some_and(|t| t.iter().any(|t| t == "null")),
                    "{name}: {pname} is not nullable on the wire"
                );
            }
            let responses = op["responses"].as_object().expect("responses");
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let response = resolve(response);
                    let content = response["content"].as_object().expect("error content");
                    let types: Vec<&String> = content.keys().collect();
                    assert_eq!(types, ["application/problem+json"], "{name} {status}");
                }
            }
            let mut must = vec!["431", "500", "503"];
            if let Some(body) = op.get("requestBody") {
                must.extend(["400", "413", "415"]);
                let schema = resolve(&body["content"]["application/json"]["schema"]);
                assert_eq!(
                    schema["additionalProperties"], false,
                    "{name}: unknown fields are refused"
                );
            }
            let secured = match op["security"].as_array() {
                Some(s) => s
                    .iter()
                    .any(|s| s.as_object().is_some_and(|o| !o.is_empty())),
                None => secured_by_default,
            };
            if secured {
                must.push("401");
            }
            for status in must {
                assert!(responses.contains_key(status), "{name} lists {status}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_problems_and_shared_statuses_are_listed() {
        let mut doc = json!({
            "paths": { "/patients/{id}": {
                "parameters": [{ "name": "id", "in": "path" }],
                "put": {
                    "security": [{ "bearer": [] }],
                    "requestBody": { "content": { "application/json": {} } },
                    "responses": {
                        "200": { "content": { "application/json": { "schema": {} } } },
                        "404": { "content": { "application/json": { "schema": { "x": 1 } } } },
                        "409": { "description": "no body declared" }
                    }
                }
            }, "/login": { "post": {
                "security": [{}],
                "responses": { "200": {} }
            } } }
        });
        apply(&mut doc);
        let put = &doc["paths"]["/patients/{id}"]["put"]["responses"];
        assert!(put["200"]["content"]["application/json"].is_object());
        assert_eq!(
            put["404"]["content"]["application/problem+json"]["schema"]["x"],
            1
        );
        assert!(put["404"]["content"].get("application/json").is_none());
        assert_eq!(
            put["409"]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        for (status, name) in [
            ("400", "BadRequest"),
            ("401", "Unauthorized"),
            ("415", "UnsupportedMediaType"),
            ("503", "Unavailable"),
        ] {
            assert_eq!(
                put[status]["$ref"],
                format!("#/components/responses/{name}"),
                "{status}"
            );
        }
        let login = &doc["paths"]["/login"]["post"]["responses"];
        assert!(login.get("401").is_none() && login.get("400").is_none());
        assert!(login.get("500").is_some() && login.get("431").is_some());
        let shared = &doc["components"]["responses"]["Unauthorized"]["content"];
        assert_eq!(
            shared["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
    }
}
