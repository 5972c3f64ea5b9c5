//! Event-time windows: tumbling and hopping, cut into panes.
//!
//! A pane is the largest interval every window boundary falls on (the gcd of size and advance):
//! events are aggregated once per pane, and a window is the merge of its panes.

use std::fmt;

/// Milliseconds since the Unix epoch, event time.
pub type Millis = i64;

/// A window's size and advance (equal for a tumbling window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    /// Window length in ms.
    pub size: Millis,
    /// Distance between window starts in ms; `<= size`.
    pub advance: Millis,
}

/// One window's bounds, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowBounds {
    /// Inclusive start, ms.
    pub start: Millis,
    /// Exclusive end, ms.
    pub end: Millis,
}

impl WindowSpec {
    /// A tumbling window of `size` ms.
    pub fn tumbling(size: Millis) -> Self {
        Self {
            size,
            advance: size,
        }
    }

    /// A hopping window; `advance` must be positive and at most `size`.
    pub fn hopping(size: Millis, advance: Millis) -> Self {
        Self { size, advance }
    }

    /// Length of a pane in ms.
    pub fn pane(&self) -> Millis {
        gcd(self.size, self.advance)
    }

    /// Start of the pane holding `time`.
    pub fn pane_start(&self, time: Millis) -> Millis {
        time.div_euclid(self.pane()) * self.pane()
    }

    /// The earliest window that contains `time`.
    pub fn first_window(&self, time: Millis) -> WindowBounds {
        // Window starts are multiples of `advance`; the earliest one still covering `time`.
        let last_start = time.div_euclid(self.advance) * self.advance;
        let windows_back = (self.size - 1).div_euclid(self.advance);
        let start = last_start - windows_back * self.advance;
        let start = if start + self.size <= time {
            start + self.advance
        } else {
            start
        };
        self.window_at(start)
    }

    /// The latest window that contains `time`.
    pub fn last_window(&self, time: Millis) -> WindowBounds {
        self.window_at(time.div_euclid(self.advance) * self.advance)
    }

    /// The window starting at `start` (a multiple of `advance`).
    pub fn window_at(&self, start: Millis) -> WindowBounds {
        WindowBounds {
            start,
            end: start + self.size,
        }
    }

    /// Every window that contains `time`, earliest first.
    pub fn windows_of(&self, time: Millis) -> impl Iterator<Item = WindowBounds> + '_ {
        let first = self.first_window(time);
        (0..)
            .map(move |n| self.window_at(first.start + n * self.advance))
            .take_while(move |window| window.start <= time)
    }
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.size == self.advance {
            write!(f, "tumbling {} ms", self.size)
        } else {
            write!(f, "hopping {} ms advancing {} ms", self.size, self.advance)
        }
    }
}

fn gcd(a: Millis, b: Millis) -> Millis {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_windows_hold_each_time_once() {
        let spec = WindowSpec::tumbling(300);
        let windows: Vec<_> = spec.windows_of(299).collect();
        assert_eq!(windows, vec![WindowBounds { start: 0, end: 300 }]);
        assert_eq!(spec.first_window(300).start, 300);
        assert_eq!(spec.first_window(-1).start, -300);
    }

    #[test]
    fn hopping_windows_overlap() {
        let spec = WindowSpec::hopping(60, 15);
        assert_eq!(spec.pane(), 15);
        let starts: Vec<_> = spec.windows_of(61).map(|w| w.start).collect();
        assert_eq!(starts, vec![15, 30, 45, 60]);
        let starts: Vec<_> = spec.windows_of(60).map(|w| w.start).collect();
        assert_eq!(starts, vec![15, 30, 45, 60]);
        let uneven = WindowSpec::hopping(50, 20);
        assert_eq!(uneven.pane(), 10);
        let starts: Vec<_> = uneven.windows_of(45).map(|w| w.start).collect();
        assert_eq!(starts, vec![0, 20, 40]);
    }
}
