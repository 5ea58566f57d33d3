//! `pms-server default-config`: the commented configuration file. The comments and layout live
//! in `example.toml`, where a key's line is only `key =`; the value is filled in from
//! [`Settings::default`], so every default is written once (in [`super::sections`]). Optional
//! keys without a default appear commented with an example. Tests check that every key of
//! [`Settings`] appears, in its section, and that the text reads back as the defaults.

use serde_json::Value;

use super::Settings;

/// The template: comments, sections, `key =` lines to fill and `# key = example` lines.
pub(super) const TEMPLATE: &str = include_str!("example.toml");

/// Every key with its default, commented (what `pms-server default-config` prints).
pub fn default_config_toml() -> String {
    render(TEMPLATE, &Settings::default())
}

/// Fills each `key =` line of `template` with `settings`' value of `section.key`.
pub(super) fn render(template: &str, settings: &Settings) -> String {
    // Serializing plain data (strings, numbers, maps with string keys) cannot fail; were it
    // to, every line would say "no default" and the tests would fail.
    let values = serde_json::to_value(settings).unwrap_or(Value::Null);
    let mut out = String::with_capacity(template.len() + 1024);
    let mut section: Option<&str> = None;
    for line in template.lines() {
        if let Some(name) = section_header(line) {
            section = Some(name);
        } else if let Some(key) = line.strip_suffix(" =").filter(|k| is_key(k)) {
            match lookup(&values, section, key).and_then(toml_literal) {
                Some(value) => out.push_str(&format!("{key} = {value}\n")),
                None => out.push_str(&format!("# {key} = (no default)\n")),
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `[name]` → `name`.
pub(super) fn section_header(line: &str) -> Option<&str> {
    line.strip_prefix('[')?.strip_suffix(']')
}

/// A bare TOML key as configuration keys are spelled.
pub(super) fn is_key(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// `settings.section.key` (or the top-level `key`) in the serialized settings.
pub(super) fn lookup<'v>(values: &'v Value, section: Option<&str>, key: &str) -> Option<&'v Value> {
    match section {
        Some(section) => values.get(section)?.get(key),
        None => values.get(key),
    }
}

/// A TOML literal for a scalar (JSON's string escapes are valid in a TOML basic string).
fn toml_literal(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => serde_json::to_string(s).ok(),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}
