//! [`LiveView`]: the terminal in ratatui's full-screen mode for as long as the view lives.

use std::io;
use std::time::{Duration, Instant};

use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use super::render::render;
use super::state::ViewState;

/// How often the view is redrawn.
const REFRESH: Duration = Duration::from_secs(1);

/// The live view on the terminal; dropping it gives the terminal back.
pub struct LiveView {
    terminal: DefaultTerminal,
    /// What it shows.
    pub state: ViewState,
    drawn_at: Option<Instant>,
}

impl LiveView {
    /// Takes the terminal over (raw mode, alternate screen).
    pub fn start() -> io::Result<Self> {
        Ok(Self {
            terminal: ratatui::try_init()?,
            state: ViewState::default(),
            drawn_at: None,
        })
    }

    /// Once a second, lets `update` refresh the state and redraws; `true` when the user asked
    /// to quit (q, Esc or Ctrl-C: raw mode turns Ctrl-C into a key, not a signal).
    pub fn tick(&mut self, update: impl FnOnce(&mut ViewState)) -> io::Result<bool> {
        if self.drawn_at.is_none_or(|at| at.elapsed() >= REFRESH) {
            update(&mut self.state);
            let state = &self.state;
            self.terminal.draw(|frame| render(frame, state))?;
            self.drawn_at = Some(Instant::now());
        }
        quit_requested()
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

fn quit_requested() -> io::Result<bool> {
    while event::poll(Duration::ZERO)? {
        let Event::Key(key) = event::read()? else {
            continue;
        };
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        let quit = matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c;
        if key.kind == KeyEventKind::Press && quit {
            return Ok(true);
        }
    }
    Ok(false)
}
