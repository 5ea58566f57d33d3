//! `pms_tui`: the interactive terminal UI of PMS. The app is state + [`action::Action`] +
//! `App::update` + a read-only draw ([`view`]); a background [`worker`] owns the
//! `pms_cli::ApiClient` and the live event stream and answers with actions; [`run`] is the
//! loop that ties input, answers and the timer to redraws (only when something changed).
#![forbid(unsafe_code)]
// Tests may unwrap: a panic is the failure report there.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod action;
pub mod app;
pub mod components;
pub mod keys;
pub mod money;
mod routes;
pub mod theme;
pub mod tui;
pub mod view;
pub mod worker;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossterm::event::{Event, MouseEventKind};
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use action::{Action, Request};
use app::App;

/// The slow timer: expires status messages. Nothing is drawn on a tick unless one expired.
pub const TICK: Duration = Duration::from_millis(250);

/// Warnings from the session layer (keyring fallbacks), shown in the status bar.
pub type Warnings = Arc<Mutex<Vec<String>>>;

impl App {
    /// Draws the whole screen; never changes the app.
    pub fn draw(&self, frame: &mut ratatui::Frame) {
        view::draw(self, frame);
    }
}

/// Maps a terminal event to an action (`None`: ignored).
pub fn from_event(event: Event) -> Option<Action> {
    match event {
        Event::Key(key) => Some(Action::Key(key)),
        Event::Resize(w, h) => Some(Action::Resize(w, h)),
        Event::Mouse(mouse) => match mouse.kind {
            MouseEventKind::ScrollUp => Some(Action::Up),
            MouseEventKind::ScrollDown => Some(Action::Down),
            _ => None,
        },
        _ => None,
    }
}

/// Applies an action and the follow-ups it leads to. Returns whether the screen changed.
pub fn apply(app: &mut App, action: Action) -> bool {
    let tick = matches!(action, Action::Tick);
    let before = tick.then(|| app.flash.is_some());
    let mut next = Some(action);
    let mut steps = 0;
    while let Some(action) = next.take() {
        next = app.update(action);
        steps += 1;
        if steps > 8 {
            break; // follow-ups are short chains; never loop forever on a bug
        }
    }
    match before {
        Some(had_flash) => had_flash && app.flash.is_none(),
        None => true,
    }
}

fn send_requests(app: &mut App, requests: &UnboundedSender<Request>) {
    for request in app.requests.drain(..) {
        let _ = requests.send(request);
    }
}

fn draw(guard: &mut tui::TerminalGuard, app: &App) -> std::io::Result<()> {
    // One synchronized update per frame: terminals that support it never show half a frame.
    crossterm::execute!(guard.terminal.backend_mut(), BeginSynchronizedUpdate)?;
    let result = guard.terminal.draw(|frame| app.draw(frame)).map(|_| ());
    crossterm::execute!(guard.terminal.backend_mut(), EndSynchronizedUpdate)?;
    result
}

/// The run loop: the first frame is drawn before any network answer; then it waits for input,
/// a worker answer or the timer, applies everything already queued, sends the requests that
/// produced, and redraws once if anything changed. Returns when the user quits.
pub async fn run(
    guard: &mut tui::TerminalGuard,
    mut app: App,
    requests: UnboundedSender<Request>,
    mut answers: UnboundedReceiver<Action>,
    warnings: Warnings,
) -> std::io::Result<()> {
    let (input_tx, mut input) = unbounded_channel();
    // crossterm's read blocks: it gets its own thread, which ends with the process.
    std::thread::spawn(move || {
        while let Ok(event) = crossterm::event::read() {
            if let Some(action) = from_event(event)
                && input_tx.send(action).is_err()
            {
                break;
            }
        }
    });
    let size = guard.terminal.size()?;
    app.size = (size.width, size.height);
    draw(guard, &app)?;
    send_requests(&mut app, &requests);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let first = tokio::select! {
            Some(action) = input.recv() => action,
            Some(action) = answers.recv() => action,
            _ = tick.tick() => Action::Tick,
        };
        let mut dirty = apply(&mut app, first);
        while let Ok(action) = input.try_recv() {
            dirty |= apply(&mut app, action);
        }
        while let Ok(action) = answers.try_recv() {
            dirty |= apply(&mut app, action);
        }
        if let Ok(mut pending) = warnings.lock()
            && let Some(last) = pending.pop()
        {
            pending.clear();
            app.flash = Some(app::Flash {
                text: format!("! {last}"),
                error: true,
                ticks_left: u32::MAX,
            });
            dirty = true;
        }
        send_requests(&mut app, &requests);
        if app.quit {
            return Ok(());
        }
        if dirty {
            draw(guard, &app)?;
        }
    }
}
