//! Measured figures, printed (never pass/fail on time): the first frame, key-to-frame with
//! 10,000 patients loaded (only the visible rows are built), and the resident memory. Run with
//! `cargo test -p pms-tui --release --test figures -- --nocapture` for representative numbers;
//! the real binary's first frame and RSS are printed by the end-to-end test (tests/e2e/tui.rs).
#![allow(clippy::unwrap_used)]

mod fixtures;

use std::time::{Duration, Instant};

use crossterm::event::KeyCode;
use fixtures::*;
use pms_cli::api::Page;
use pms_tui::action::Action;
use pms_tui::app::App;
use pms_tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn first_frame_key_to_frame_and_memory() {
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();

    let started = Instant::now();
    let app = App::new(
        Theme::new(false),
        "http://127.0.0.1:4004".into(),
        false,
        None,
    );
    terminal.draw(|f| app.draw(f)).unwrap();
    let first = started.elapsed();

    let rss_before = rss_kib();
    let mut app = fixtures::app(120, 40);
    app.update(Action::PatientsLoaded {
        append: false,
        page: Page {
            items: patients(10_000),
            next: None,
        },
    });
    let rss_after = rss_kib();
    terminal.draw(|f| app.draw(f)).unwrap();

    let mut samples = Vec::new();
    let keys = [KeyCode::Down, KeyCode::PageDown, KeyCode::Down, KeyCode::Up];
    for i in 0..400 {
        let t = Instant::now();
        pms_tui::apply(&mut app, key(keys[i % keys.len()]));
        terminal.draw(|f| app.draw(f)).unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    // The cursor really moved through the 10,000 rows and the screen shows that row.
    let selected = app.patients.cursor.selected;
    assert!(selected > 2_000, "cursor at {selected}");
    let name = app.patients.items[selected].name.clone();
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains(&name), "{name} not on screen:\n{screen}");

    println!("figure: first frame (login screen, in process, 120x40): {first:?}");
    println!(
        "figure: key-to-frame with 10,000 patients (120x40, {} keys): median {:?}, p99 {:?}, max {:?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        println!(
            "figure: RSS of the test process {:.1} MiB; 10,000 patients add {:.1} MiB",
            after as f64 / 1024.0,
            after.saturating_sub(before) as f64 / 1024.0
        );
    }
}
