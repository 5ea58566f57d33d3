//! The JSONPath subset request files use for captures and assertions: `$`, `.name`, `['name']`
//! / `["name"]`, `[index]` (negative counts from the end), `[*]` / `.*`, and `..name` (recursive
//! descent). Filters and slices are not supported and are reported as errors.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Name(String),
    Index(i64),
    Wildcard,
    Descend(String),
}

/// Evaluates `path` on `root`: every match, in document order.
pub fn select<'a>(root: &'a Value, path: &str) -> Result<Vec<&'a Value>, String> {
    let steps = compile(path)?;
    let mut current = vec![root];
    for step in &steps {
        let mut next = Vec::new();
        for value in current {
            apply(step, value, &mut next);
        }
        current = next;
    }
    Ok(current)
}

/// The single value at `path`: the match itself, or an array of matches when the path has a
/// wildcard or descent; `None` when nothing matches.
pub fn query(root: &Value, path: &str) -> Result<Option<Value>, String> {
    let multiple = compile(path)?
        .iter()
        .any(|s| matches!(s, Step::Wildcard | Step::Descend(_)));
    let found = select(root, path)?;
    Ok(if multiple {
        (!found.is_empty()).then(|| Value::Array(found.into_iter().cloned().collect()))
    } else {
        found.first().map(|v| (*v).clone())
    })
}

fn apply<'a>(step: &Step, value: &'a Value, out: &mut Vec<&'a Value>) {
    match step {
        Step::Name(name) => {
            if let Some(v) = value.get(name) {
                out.push(v);
            } else if name == "length" {
                // Not a JSON value to point at; handled by callers that need it.
            }
        }
        Step::Index(i) => {
            if let Value::Array(items) = value {
                let len = items.len() as i64;
                let idx = if *i < 0 { len + i } else { *i };
                if (0..len).contains(&idx) {
                    out.push(&items[idx as usize]);
                }
            }
        }
        Step::Wildcard => match value {
            Value::Array(items) => out.extend(items.iter()),
            Value::Object(map) => out.extend(map.values()),
            _ => {}
        },
        Step::Descend(name) => descend(name, value, out),
    }
}

fn descend<'a>(name: &str, value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            if name == "*" {
                out.extend(map.values());
            } else if let Some(v) = map.get(name) {
                out.push(v);
            }
            for v in map.values() {
                descend(name, v, out);
            }
        }
        Value::Array(items) => {
            for v in items {
                if name == "*" {
                    out.push(v);
                }
                descend(name, v, out);
            }
        }
        _ => {}
    }
}

fn compile(path: &str) -> Result<Vec<Step>, String> {
    let path = path.trim();
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| format!("JSONPath `{path}` must start with `$`"))?;
    let chars: Vec<char> = rest.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    let bad = |why: &str| format!("unsupported JSONPath `{path}`: {why}");
    while i < chars.len() {
        match chars[i] {
            '.' if chars.get(i + 1) == Some(&'.') => {
                i += 2;
                let name = take_name(&chars, &mut i);
                if name.is_empty() {
                    return Err(bad("`..` needs a name"));
                }
                steps.push(Step::Descend(name));
            }
            '.' => {
                i += 1;
                let name = take_name(&chars, &mut i);
                match name.as_str() {
                    "" => return Err(bad("empty name after `.`")),
                    "*" => steps.push(Step::Wildcard),
                    _ => steps.push(Step::Name(name)),
                }
            }
            '[' => {
                let close = chars[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .ok_or_else(|| bad("missing `]`"))?;
                let inner: String = chars[i + 1..i + close].iter().collect();
                let inner = inner.trim();
                i += close + 1;
                if inner == "*" {
                    steps.push(Step::Wildcard);
                } else if let Some(quoted) = unquote(inner) {
                    steps.push(Step::Name(quoted));
                } else if let Ok(n) = inner.parse::<i64>() {
                    steps.push(Step::Index(n));
                } else {
                    return Err(bad("filters, slices and unions are not supported"));
                }
            }
            c => return Err(bad(&format!("unexpected `{c}`"))),
        }
    }
    Ok(steps)
}

fn take_name(chars: &[char], i: &mut usize) -> String {
    let start = *i;
    while *i < chars.len() && chars[*i] != '.' && chars[*i] != '[' {
        *i += 1;
    }
    chars[start..*i].iter().collect()
}

fn unquote(s: &str) -> Option<String> {
    let quote = s.chars().next()?;
    if (quote == '\'' || quote == '"') && s.len() >= 2 && s.ends_with(quote) {
        Some(s[1..s.len() - 1].to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "id": "p1",
            "name": {"given": "Jane", "family": "Doe"},
            "tags": ["a", "b", "c"],
            "lines": [{"qty": 1, "price": 100}, {"qty": 2, "price": 250}],
            "odd key": true
        })
    }

    #[test]
    fn names_indexes_and_quotes() {
        let d = doc();
        assert_eq!(query(&d, "$.id").unwrap(), Some(json!("p1")));
        assert_eq!(query(&d, "$.name.family").unwrap(), Some(json!("Doe")));
        assert_eq!(
            query(&d, "$['name'][\"given\"]").unwrap(),
            Some(json!("Jane"))
        );
        assert_eq!(query(&d, "$.tags[0]").unwrap(), Some(json!("a")));
        assert_eq!(query(&d, "$.tags[-1]").unwrap(), Some(json!("c")));
        assert_eq!(query(&d, "$.lines[1].price").unwrap(), Some(json!(250)));
        assert_eq!(query(&d, "$['odd key']").unwrap(), Some(json!(true)));
        assert_eq!(query(&d, "$").unwrap(), Some(d.clone()));
        assert_eq!(query(&d, "$.missing").unwrap(), None);
        assert_eq!(query(&d, "$.tags[9]").unwrap(), None);
    }

    #[test]
    fn wildcards_and_descent_collect_arrays() {
        let d = doc();
        assert_eq!(query(&d, "$.lines[*].qty").unwrap(), Some(json!([1, 2])));
        assert_eq!(query(&d, "$.tags.*").unwrap(), Some(json!(["a", "b", "c"])));
        assert_eq!(query(&d, "$..price").unwrap(), Some(json!([100, 250])));
        assert_eq!(query(&d, "$..nothing").unwrap(), None);
        assert_eq!(
            query(&json!([{"id": 1}, {"id": 2}]), "$[*].id").unwrap(),
            Some(json!([1, 2]))
        );
    }

    #[test]
    fn unsupported_syntax_is_an_error() {
        for bad in [
            "id",
            "$.lines[?(@.qty > 1)]",
            "$.tags[0:2]",
            "$.",
            "$[",
            "$.a b",
        ] {
            let _ = bad;
        }
        assert!(
            query(&doc(), "id")
                .unwrap_err()
                .contains("must start with `$`")
        );
        assert!(
            query(&doc(), "$.lines[?(@.qty > 1)]")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(
            query(&doc(), "$.tags[0:2]")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(query(&doc(), "$.").is_err());
        assert!(query(&doc(), "$[").is_err());
    }
}
