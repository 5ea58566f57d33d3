//! `?? …` assertions, with httpyac's syntax and semantics so the same files pass in both
//! runners: `?? <field> [<path>] <predicate> [<expected>]`.
//!
//! Fields: `status`, `duration` (ms), `header <name>`, `body` (the whole body), `body <path>`
//! (a JS-style path into the JSON body: `id`, `items[0].name`, `items.length`; a JSONPath starting
//! with `$` works too), and `js response.parsedBody.<path>` / `js response.statusCode`.
//! The expected text is converted to the type of the actual value (number, boolean, string, JSON),
//! as httpyac does; `exists`/`isTrue` and `isFalse` test JavaScript truthiness.

use serde_json::Value;

use super::jsonpath;

/// A predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Predicate {
    Equals,
    NotEquals,
    Greater,
    GreaterEquals,
    Lower,
    LowerEquals,
    StartsWith,
    EndsWith,
    Includes,
    Exists,
    IsFalse,
    IsNumber,
    IsBoolean,
    IsString,
    IsArray,
}

const PREDICATES: [(&str, Predicate); 19] = [
    ("===", Predicate::Equals),
    ("==", Predicate::Equals),
    ("equals", Predicate::Equals),
    ("!=", Predicate::NotEquals),
    (">=", Predicate::GreaterEquals),
    (">", Predicate::Greater),
    ("<=", Predicate::LowerEquals),
    ("<", Predicate::Lower),
    ("startsWith", Predicate::StartsWith),
    ("endsWith", Predicate::EndsWith),
    ("includes", Predicate::Includes),
    ("contains", Predicate::Includes),
    ("exists", Predicate::Exists),
    ("isTrue", Predicate::Exists),
    ("isFalse", Predicate::IsFalse),
    ("isNumber", Predicate::IsNumber),
    ("isBoolean", Predicate::IsBoolean),
    ("isString", Predicate::IsString),
    ("isArray", Predicate::IsArray),
];

/// One `??` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    /// `status`, `duration`, `header`, `body` or `js`.
    pub field: String,
    /// The header name or body path.
    pub path: Option<String>,
    pub predicate: Predicate,
    /// Expected text as written (variables are resolved when it runs).
    pub expected: String,
    /// The line as written, for reports.
    pub text: String,
}

/// What the assertion is checked against.
pub struct Actual<'a> {
    pub status: u16,
    pub duration_ms: u128,
    pub headers: &'a [(String, String)],
    pub body_text: &'a str,
    pub body_json: Option<&'a Value>,
}

impl Assertion {
    /// Parses the text after `??`.
    pub fn parse(text: &str) -> Result<Assertion, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some(pos) = words
            .iter()
            .position(|w| PREDICATES.iter().any(|(id, _)| id == w))
        else {
            return Err(format!(
                "assertion `?? {}` has no known predicate (==, !=, <, >, exists, includes, …)",
                text.trim()
            ));
        };
        if pos == 0 {
            return Err(format!(
                "assertion `?? {}` names no field (status, header, body, duration, js)",
                text.trim()
            ));
        }
        let field = words[0].to_owned();
        if !matches!(
            field.as_str(),
            "status" | "duration" | "header" | "body" | "js"
        ) {
            return Err(format!(
                "assertion field `{field}` is not supported (status, header, body, duration, js)"
            ));
        }
        let path = (pos > 1).then(|| words[1..pos].join(" "));
        if field == "header" && path.is_none() {
            return Err("`?? header` needs a header name".into());
        }
        let predicate = PREDICATES
            .iter()
            .find(|(id, _)| *id == words[pos])
            .map(|(_, p)| *p)
            .unwrap_or(Predicate::Equals);
        Ok(Assertion {
            field,
            path,
            predicate,
            expected: words[pos + 1..].join(" "),
            text: text.trim().to_owned(),
        })
    }

    /// The value the assertion looks at (`None`: undefined).
    pub fn actual(&self, actual: &Actual<'_>) -> Result<Option<Value>, String> {
        match (self.field.as_str(), self.path.as_deref()) {
            ("status", _) => Ok(Some(Value::from(actual.status))),
            ("duration", _) => Ok(Some(Value::from(actual.duration_ms as u64))),
            ("header", Some(name)) => Ok(actual
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| Value::String(v.clone()))),
            ("body", None) => Ok(Some(Value::String(actual.body_text.to_owned()))),
            ("body", Some(path)) => Ok(actual
                .body_json
                .and_then(|b| js_path(b, path).ok().flatten())),
            ("js", Some(expr)) => {
                if expr == "response.statusCode" {
                    Ok(Some(Value::from(actual.status)))
                } else if let Some(path) = expr.strip_prefix("response.parsedBody") {
                    let path = path.trim_start_matches('.');
                    match actual.body_json {
                        Some(b) if path.is_empty() => Ok(Some(b.clone())),
                        Some(b) => Ok(js_path(b, path).ok().flatten()),
                        None => Ok(None),
                    }
                } else {
                    Err(format!(
                        "`?? js {expr}`: only response.statusCode and response.parsedBody.<path> are supported"
                    ))
                }
            }
            _ => Err(format!("cannot evaluate `?? {}`", self.text)),
        }
    }

    /// Checks `value` against the (resolved) expected text.
    pub fn check(&self, value: Option<&Value>, expected: &str) -> bool {
        use Predicate::*;
        match self.predicate {
            Exists => truthy(value),
            IsFalse => !truthy(value),
            IsNumber => matches!(value, Some(Value::Number(_))),
            IsBoolean => matches!(value, Some(Value::Bool(_))),
            IsString => matches!(value, Some(Value::String(_))),
            IsArray => matches!(value, Some(Value::Array(_))),
            Equals => equals(value, expected),
            NotEquals => !equals(value, expected),
            Greater | GreaterEquals | Lower | LowerEquals => {
                let (Some(a), Ok(b)) = (value.and_then(as_number), expected.trim().parse::<f64>())
                else {
                    return false;
                };
                match self.predicate {
                    Greater => a > b,
                    GreaterEquals => a >= b,
                    Lower => a < b,
                    _ => a <= b,
                }
            }
            StartsWith => text(value).is_some_and(|t| t.starts_with(expected)),
            EndsWith => text(value).is_some_and(|t| t.ends_with(expected)),
            Includes => match value {
                Some(Value::Array(items)) => items.iter().any(|i| equals(Some(i), expected)),
                other => text(other).is_some_and(|t| t.contains(expected)),
            },
        }
    }
}

/// A JS-style property path (`a.b[0].c`, `items.length`) or a JSONPath (`$.a`).
pub fn js_path(root: &Value, path: &str) -> Result<Option<Value>, String> {
    let path = path.trim();
    let (base, length) = match path.strip_suffix(".length") {
        Some(base) => (base, true),
        None if path == "length" => ("", true),
        None => (path, false),
    };
    let json_path = if base.starts_with('$') {
        base.to_owned()
    } else if base.is_empty() || base.starts_with('[') {
        format!("${base}")
    } else {
        format!("$.{base}")
    };
    let found = jsonpath::query(root, &json_path)?;
    if !length {
        return Ok(found);
    }
    Ok(match found {
        Some(Value::Array(items)) => Some(Value::from(items.len())),
        Some(Value::String(s)) => Some(Value::from(s.chars().count())),
        Some(Value::Object(map)) => map.get("length").cloned(),
        _ => None,
    })
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Equality after converting `expected` to the actual value's type (httpyac's rule).
fn equals(value: Option<&Value>, expected: &str) -> bool {
    match value {
        None => expected == "undefined",
        Some(Value::Null) => expected == "null",
        Some(Value::Number(n)) => expected.trim().parse::<f64>().ok() == n.as_f64(),
        Some(Value::Bool(b)) => expected.trim().parse::<bool>().ok() == Some(*b),
        Some(Value::String(s)) => s == expected,
        Some(other) => serde_json::from_str::<Value>(expected).ok().as_ref() == Some(other),
    }
}

#[cfg(test)]
#[path = "assert_tests.rs"]
mod tests;
