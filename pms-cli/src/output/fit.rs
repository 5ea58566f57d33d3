//! Tables that fit the terminal: which columns to show (the record's narrow set by default,
//! every column with `-o wide`, or `--columns a,b,c`), and cells shortened with `…` so a row
//! fits the terminal's width. Widths are display widths (`unicode-width`): `é` is one column,
//! a CJK character two, so alignment holds for every name.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::{Format, Style};
use crate::error::{Error, Result};

/// The narrowest a shortened column gets (an id prefix, a date, a short name stay readable).
const MIN_WIDTH: usize = 8;
/// Space between columns.
const GAP: usize = 2;

/// Indices into `headers` of the columns to show, in order. `--columns` names must be headers
/// of this record (camelCase, any case); anything else is a usage error naming the valid ones.
pub fn select(headers: &[&str], narrow: &[&str], style: Style) -> Result<Vec<usize>> {
    let index = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    if let Some(wanted) = style.columns {
        return wanted
            .iter()
            .map(|name| {
                index(name.trim()).ok_or_else(|| {
                    Error::Usage(format!(
                        "--columns: no column `{name}` here; choose from {}",
                        headers.join(",")
                    ))
                })
            })
            .collect();
    }
    let names = match style.format {
        Format::Table => narrow,
        Format::Wide | Format::Csv | Format::Json => headers,
    };
    Ok(names.iter().filter_map(|name| index(name)).collect())
}

/// Shortens cells (header row first) so every row fits in `max` display columns: the widest
/// column gives up space first, none below [`MIN_WIDTH`] (a table of many columns may still be
/// wider than a very narrow terminal).
pub fn fit(rows: &mut [Vec<String>], max: usize) {
    let Some(columns) = rows.iter().map(Vec::len).max() else {
        return;
    };
    let mut widths = vec![0; columns];
    for row in rows.iter() {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.width());
        }
    }
    let total = |widths: &[usize]| widths.iter().sum::<usize>() + GAP * columns.saturating_sub(1);
    while total(&widths) > max {
        let Some((widest, &width)) = widths.iter().enumerate().max_by_key(|(_, w)| **w) else {
            return;
        };
        if width <= MIN_WIDTH {
            break;
        }
        widths[widest] = width - 1;
    }
    for row in rows.iter_mut() {
        for (i, cell) in row.iter_mut().enumerate() {
            if cell.width() > widths[i] {
                *cell = truncate(cell, widths[i]);
            }
        }
    }
}

/// `text` cut to at most `width` display columns, ending in `…` when anything was cut.
pub fn truncate(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// The terminal's width when stdout is one (`COLUMNS` overrides, as in `ls`); `None` when
/// piped, so scripts always get whole cells.
pub fn terminal_width(stdout_tty: bool, columns_env: Option<&str>) -> Option<usize> {
    if !stdout_tty {
        return None;
    }
    if let Some(n) = columns_env.and_then(|c| c.trim().parse::<usize>().ok()) {
        return Some(n);
    }
    terminal_size::terminal_size().map(|(w, _)| usize::from(w.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style(format: Format, columns: Option<&'static [String]>) -> Style {
        Style {
            format,
            columns,
            ..Style::default()
        }
    }

    #[test]
    fn columns_come_from_the_format_or_the_flag() {
        let headers = ["id", "mrn", "name", "address"];
        let narrow = ["mrn", "name"];
        assert_eq!(
            select(&headers, &narrow, style(Format::Table, None)).unwrap(),
            [1, 2]
        );
        assert_eq!(
            select(&headers, &narrow, style(Format::Wide, None)).unwrap(),
            [0, 1, 2, 3]
        );
        let wanted: &'static [String] = Box::leak(Box::new(["Address".into(), "id".into()]));
        assert_eq!(
            select(&headers, &narrow, style(Format::Table, Some(wanted))).unwrap(),
            [3, 0]
        );
        let bogus: &'static [String] = Box::leak(Box::new(["phone".into()]));
        let e = select(&headers, &narrow, style(Format::Csv, Some(bogus))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--columns: no column `phone` here; choose from id,mrn,name,address"
        );
    }

    #[test]
    fn truncation_counts_display_columns() {
        assert_eq!(truncate("Jane Doe", 8), "Jane Doe");
        assert_eq!(truncate("Jane Doe", 5), "Jane…");
        assert_eq!(truncate("Zoë Ångström", 6), "Zoë Å…");
        // Each of these takes two columns: four fit in 9 with the ellipsis.
        assert_eq!(truncate("山田太郎さん", 9), "山田太郎…");
        assert_eq!(truncate("山田太郎さん", 9).width(), 9);
    }

    #[test]
    fn the_widest_column_gives_way() {
        let mut rows = vec![
            vec!["NAME".to_owned(), "ADDRESS".to_owned()],
            vec![
                "Jane".to_owned(),
                "1 Very Long Street Name, Springfield".to_owned(),
            ],
        ];
        fit(&mut rows, 30);
        assert_eq!(rows[1][1], "1 Very Long Street Name…");
        assert_eq!(rows[1][0].width() + GAP + rows[1][1].width(), 30);
        let mut tiny = vec![vec!["x".repeat(20), "y".repeat(20)]];
        fit(&mut tiny, 10);
        assert_eq!(tiny[0][0].width(), MIN_WIDTH, "never below the minimum");
    }
}
