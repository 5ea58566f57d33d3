//! The Analytics tab: summary cards (patients, accounts, money per currency) and the
//! registrations chart by day, week or month (`b` cycles).

use pms_proto::rest::{AnalyticsSummary, RegistrationBucket};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Borders, Paragraph};

use crate::action::Bucket;
use crate::money;
use crate::theme::Theme;

/// State of the Analytics tab.
#[derive(Debug)]
pub struct AnalyticsView {
    pub summary: Option<AnalyticsSummary>,
    pub buckets: Vec<RegistrationBucket>,
    pub bucket: Bucket,
    pub loading: bool,
    pub loaded: bool,
    pub error: Option<String>,
}

impl Default for AnalyticsView {
    fn default() -> AnalyticsView {
        AnalyticsView {
            summary: None,
            buckets: Vec::new(),
            bucket: Bucket::Day,
            loading: false,
            loaded: false,
            error: None,
        }
    }
}

impl AnalyticsView {
    /// `b`: the next bucket size.
    pub fn cycle_bucket(&mut self) -> Bucket {
        self.bucket = match self.bucket {
            Bucket::Day => Bucket::Week,
            Bucket::Week => Bucket::Month,
            Bucket::Month => Bucket::Day,
        };
        self.bucket
    }

    /// Draws the tab.
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let [cards, chart] =
            Layout::vertical([Constraint::Length(7), Constraint::Min(5)]).areas(area);
        let [patients, accounts, billing] = Layout::horizontal([
            Constraint::Ratio(1, 3),
            Constraint::Ratio(1, 3),
            Constraint::Ratio(1, 3),
        ])
        .areas(cards);
        let card = |title: &str, lines: Vec<Line<'static>>| {
            Paragraph::new(lines).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(Span::styled(format!(" {title} "), theme.title())),
            )
        };
        let loading = || {
            vec![Line::styled(
                if self.loading { "loading…" } else { "—" },
                theme.dim(),
            )]
        };
        match &self.summary {
            Some(s) => {
                frame.render_widget(
                    card(
                        "Patients",
                        vec![
                            Line::raw(format!("total   {}", s.patients.total)),
                            Line::raw(format!("active  {}", s.patients.active)),
                            Line::raw(format!("today   {}", s.patients.new_today)),
                        ],
                    ),
                    patients,
                );
                frame.render_widget(
                    card(
                        "Accounts",
                        vec![
                            Line::raw(format!("total   {}", s.accounts.total)),
                            Line::raw(format!("active  {}", s.accounts.active)),
                            Line::raw(format!("closed  {}", s.accounts.closed)),
                        ],
                    ),
                    accounts,
                );
                let mut lines = Vec::new();
                for t in &s.billing {
                    lines.push(Line::raw(format!(
                        "invoiced    {}",
                        money::format(t.invoiced, &t.currency)
                    )));
                    lines.push(Line::raw(format!(
                        "collected   {}",
                        money::format(t.collected, &t.currency)
                    )));
                    lines.push(Line::raw(format!(
                        "outstanding {}",
                        money::format(t.outstanding, &t.currency)
                    )));
                }
                if lines.is_empty() {
                    lines.push(Line::styled("nothing invoiced yet", theme.dim()));
                }
                frame.render_widget(card("Money", lines), billing);
            }
            None => {
                frame.render_widget(card("Patients", loading()), patients);
                frame.render_widget(card("Accounts", loading()), accounts);
                frame.render_widget(card("Money", loading()), billing);
            }
        }
        let title = format!(
            " Registrations per {} — b day/week/month ",
            self.bucket.as_str()
        );
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(title, theme.title()));
        if let Some(e) = &self.error {
            frame.render_widget(
                Paragraph::new(Span::styled(format!("✗ {e}"), theme.error())).block(block),
                chart,
            );
            return;
        }
        // Show as many of the latest buckets as fit, each bar 3 wide plus a gap.
        let fit = (chart.width.saturating_sub(2) / 4) as usize;
        let shown = &self.buckets[self.buckets.len().saturating_sub(fit)..];
        let bars: Vec<Bar> = shown
            .iter()
            .map(|b| {
                let label = match self.bucket {
                    Bucket::Month => b.start.format("%m").to_string(),
                    _ => b.start.format("%d").to_string(),
                };
                Bar::default()
                    .value(u64::try_from(b.count).unwrap_or(0))
                    .label(Line::raw(label))
            })
            .collect();
        let widget = BarChart::default()
            .block(block)
            .bar_width(3)
            .bar_gap(1)
            .bar_style(theme.bar())
            .data(BarGroup::default().bars(&bars));
        frame.render_widget(widget, chart);
    }
}
