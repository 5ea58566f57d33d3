//! Output formats: human tables (`table`, the default: each record's narrow set of columns,
//! fitted to the terminal; `wide`: every column), `json` (a stable contract: the API's camelCase
//! shapes, pretty-printed, golden-tested) and `csv` (RFC 4180, header row first, every column).
//! `--columns a,b,c` picks the columns of tables and CSV.
//!
//! Rendering returns strings; the binary writes them to stdout (data only — notes and warnings go
//! to stderr). Colour (a bold header) only when asked for: on a TTY and without `NO_COLOR`.

mod columns;
pub mod fit;
pub mod shapes;

pub use columns::{Tabular, time as columns_time};

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// `-o` / `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people, the most useful ones, fitted to the terminal (the default).
    #[default]
    Table,
    /// Every column, cells never shortened.
    Wide,
    /// JSON: the documented shapes (arrays for lists).
    Json,
    /// CSV with a header row (lists).
    Csv,
}

/// How to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    pub format: Format,
    /// ANSI colour allowed (stdout is a TTY and `NO_COLOR` is unset).
    pub color: bool,
    /// Fit `table` output into this many columns (stdout is a terminal); `None`: never shorten.
    pub width: Option<usize>,
    /// `--columns`: the columns of tables and CSV, in order. (Parsed once per process and kept
    /// for its life, so `Style` stays `Copy`.)
    pub columns: Option<&'static [String]>,
}

impl Style {
    /// Table or wide: output for people.
    pub fn is_table(&self) -> bool {
        matches!(self.format, Format::Table | Format::Wide)
    }
}

const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Renders a list.
pub fn list<T: Serialize + Tabular>(items: &[T], style: Style) -> Result<String> {
    if style.format == Format::Json {
        return json(&items);
    }
    rows(T::HEADERS, T::NARROW, items.iter().map(Tabular::row), style)
}

/// Renders rows of `headers` (all of a record's columns) as a table or CSV with the columns the
/// style selects (`narrow` for the default table). JSON has no rows: callers print their records.
pub fn rows(
    headers: &[&str],
    narrow: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
    style: Style,
) -> Result<String> {
    if style.format == Format::Json {
        // A caller bug, not the user's: JSON prints the records themselves.
        return Err(Error::Other("rows have no JSON form".into()));
    }
    let chosen = fit::select(headers, narrow, style)?;
    let names: Vec<&str> = chosen.iter().map(|&i| headers[i]).collect();
    let picked = rows.map(|row| chosen.iter().map(|&i| row[i].clone()).collect::<Vec<_>>());
    Ok(match style.format {
        Format::Csv => csv(&names, picked),
        _ => table(&names, picked, style),
    })
}

/// Renders one record (`table` shows it as `FIELD  value` lines, every field).
pub fn one<T: Serialize + Tabular>(item: &T, style: Style) -> Result<String> {
    match style.format {
        Format::Json => json(item),
        Format::Csv => rows(T::HEADERS, T::HEADERS, std::iter::once(item.row()), style),
        Format::Table | Format::Wide => Ok(detail(T::HEADERS, &item.row(), style.color)),
    }
}

/// Renders any JSON value: `table` flattens it to `key  value` lines (`a.b`, `a[0]`).
pub fn value(value: &Value, style: Style) -> Result<String> {
    let mut pairs = Vec::new();
    flatten("", value, &mut pairs);
    match style.format {
        Format::Json => json(value),
        Format::Csv => Ok(csv(
            &["key", "value"],
            pairs.into_iter().map(|(k, v)| vec![k, v]),
        )),
        Format::Table | Format::Wide => {
            let width = pairs
                .iter()
                .map(|(k, _)| k.chars().count())
                .max()
                .unwrap_or(0);
            let mut out = String::new();
            for (k, v) in pairs {
                let key = format!("{k:<width$}");
                let key = if style.color {
                    format!("{BOLD}{key}{RESET}")
                } else {
                    key
                };
                let _ = writeln!(out, "{key}  {v}");
            }
            Ok(out)
        }
    }
}

/// Pretty JSON plus a newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| Error::Other(format!("cannot render JSON: {e}")))
}

/// One compact JSON line (NDJSON).
pub fn json_line<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map(|s| s + "\n")
        .map_err(|e| Error::Other(format!("cannot render JSON: {e}")))
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        Value::Null => out.push((prefix.to_owned(), String::new())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled; CRLF endings.
/// A field starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'` (OWASP "CSV
/// injection"): a spreadsheet would run it as a formula. Negative numbers become text too —
/// the price of never letting a patient's name run as a formula.
pub fn csv(headers: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    fn field(s: &str) -> String {
        let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{s}")
        } else {
            s.to_owned()
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    }
    let mut out = headers
        .iter()
        .map(|h| field(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    for row in rows {
        out.push_str(&row.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

/// Aligned columns, no borders, upper-case headers (like kubectl); with `style.width` (a
/// terminal) and the `table` format, cells are shortened with `…` to fit.
pub fn table(headers: &[&str], rows: impl Iterator<Item = Vec<String>>, style: Style) -> String {
    let color = style.color;
    let mut all: Vec<Vec<String>> = vec![headers.iter().map(|h| header_words(h)).collect()];
    // Tables are one line per record: line breaks inside a value would break alignment.
    all.extend(rows.map(|row| {
        row.into_iter()
            .map(|c| c.replace(['\n', '\r'], " "))
            .collect()
    }));
    if let (Format::Table, Some(width)) = (style.format, style.width) {
        fit::fit(&mut all, width);
    }
    let mut all = all.into_iter();
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    t.set_header(all.next().unwrap_or_default());
    for row in all {
        t.add_row(row);
    }
    for column in t.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let text = t.to_string();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if i == 0 && color {
            let _ = writeln!(out, "{BOLD}{line}{RESET}");
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// `dateOfBirth` → `DATE OF BIRTH`.
fn header_words(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_uppercase() && !out.is_empty() {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out
}

fn detail(headers: &[&str], row: &[String], color: bool) -> String {
    let width = headers.iter().map(|h| h.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (h, v) in headers.iter().zip(row) {
        let key = format!("{:<width$}", format!("{h}:"), width = width + 1);
        let key = if color {
            format!("{BOLD}{key}{RESET}")
        } else {
            key
        };
        let _ = writeln!(out, "{key}  {v}");
    }
    out
}

#[cfg(test)]
mod tests;
