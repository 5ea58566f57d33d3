//! The results of a run: one table for people, the same as JSON for scripts and regressions.

use std::fmt::Write;

use serde::Serialize;

use crate::load::Outcome;
use crate::pgwork::WorkPerOp;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
    /// `(what, operations/s)` of every baseline taken in this run.
    pub baselines: Vec<(String, f64)>,
    pub memory: Vec<Memory>,
    pub work: Vec<WorkPerOp>,
    /// The background work subtracted from `work`, per second.
    pub work_idle: Option<WorkPerOp>,
    /// Why `work` has no statement counts, when it has none.
    pub work_note: Option<String>,
}

/// One measured point.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub target: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What `ratio` compares against, and that figure.
    pub baseline: Option<String>,
    pub baseline_value: Option<f64>,
    pub ratio: Option<f64>,
}

impl Row {
    pub fn plain(target: &str, outcome: Outcome) -> Row {
        Row {
            target: target.into(),
            outcome,
            baseline: None,
            baseline_value: None,
            ratio: None,
        }
    }

    pub fn with_ratio(
        target: &str,
        outcome: Outcome,
        baseline: String,
        ratio: f64,
        value: f64,
    ) -> Row {
        Row {
            target: target.into(),
            outcome,
            baseline: Some(baseline),
            baseline_value: Some(value),
            ratio: Some(ratio),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub target: String,
    pub when: String,
    pub rss_kb: u64,
    pub hwm_kb: u64,
    pub ready_ms: f64,
}

impl Report {
    /// The human table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<9} {:<32} {:>5} {:>9} {:>8} {:>8} {:>6}  {:<26} {:>9} {:>7}",
            "target",
            "operation",
            "conns",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "baseline",
            "base/s",
            "ratio"
        );
        for r in &self.rows {
            let o = &r.outcome;
            let _ = writeln!(
                s,
                "{:<9} {:<32} {:>5} {:>9.0} {:>8.2} {:>8.2} {:>6}  {:<26} {:>9} {:>7}",
                r.target,
                o.label,
                o.connections,
                o.rps,
                o.p50_ms,
                o.p99_ms,
                o.errors,
                r.baseline.as_deref().unwrap_or(""),
                r.baseline_value
                    .map(|v| format!("{v:.0}"))
                    .unwrap_or_default(),
                r.ratio
                    .map(|v| format!("{:.1} %", v * 100.0))
                    .unwrap_or_default(),
            );
        }
        let _ = writeln!(s, "\nbaselines (same machine, same run):");
        for (what, v) in &self.baselines {
            let _ = writeln!(s, "  {what:<40} {v:>9.0} /s");
        }
        let _ = writeln!(s, "\nmemory and start:");
        for m in &self.memory {
            let _ = writeln!(
                s,
                "  {:<9} {:<18} RSS {:>6.1} MB  high-water {:>6.1} MB  ready {:>6.1} ms after exec",
                m.target,
                m.when,
                m.rss_kb as f64 / 1024.0,
                m.hwm_kb as f64 / 1024.0,
                m.ready_ms
            );
        }
        if !self.work.is_empty() {
            let _ = writeln!(
                s,
                "\nPostgreSQL work per operation (pg_stat_database read {} s after each window, idle work subtracted):",
                crate::pgwork::SETTLE.as_secs()
            );
            for w in self.work.iter().chain(&self.work_idle) {
                let _ = writeln!(
                    s,
                    "  {:<40} commits {:>6.2}  inserted {:>6.2}  updated {:>6.2}  returned {:>8.1}  fetched {:>6.1}",
                    w.operation,
                    w.commits,
                    w.rows_inserted,
                    w.rows_updated,
                    w.rows_returned,
                    w.rows_fetched
                );
                if let Some(st) = &w.statements {
                    let _ = writeln!(
                        s,
                        "    statements {:>6.2} calls, {:>6.2} rows (pg_stat_statements); most called:",
                        st.calls, st.rows
                    );
                    for t in &st.top {
                        let _ = writeln!(
                            s,
                            "      {:>6.2} calls {:>6.2} rows  {}",
                            t.calls,
                            t.rows,
                            shorten(&t.query, 90)
                        );
                    }
                }
            }
            if let Some(note) = &self.work_note {
                let _ = writeln!(s, "  ({note})");
            }
        }
        s
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
