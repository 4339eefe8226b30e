//! Progress of a run on the terminal: overall cells done of total with ETA, and the current
//! cell's phase (launching, loading, warm-up, batch i with the repetitions done and the last
//! t/s). When stderr is not a terminal (CI logs), one plain line per finished cell instead.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// The run's progress display.
pub struct Progress {
    overall: ProgressBar,
    phase: ProgressBar,
    plain: bool,
}

impl Progress {
    /// A display for `total_cells` cells; hidden bars and plain lines when stderr is not a
    /// terminal or `quiet` is set (quiet also drops the plain lines).
    pub fn new(total_cells: usize, quiet: bool) -> Progress {
        let tty = std::io::stderr().is_terminal() && !quiet;
        let multi = MultiProgress::with_draw_target(if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let overall = multi.add(ProgressBar::new(total_cells as u64));
        overall.set_style(
            ProgressStyle::with_template("{prefix:.bold} [{bar:30}] {pos}/{len} cells, ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        overall.set_prefix("run");
        let phase = multi.add(ProgressBar::new_spinner());
        phase.set_style(
            ProgressStyle::with_template("  {spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        if tty {
            phase.enable_steady_tick(Duration::from_millis(200));
        }
        Progress {
            overall,
            phase,
            plain: !tty && !quiet,
        }
    }

    /// Shows what the current cell is doing.
    pub fn phase(&self, msg: impl Into<String>) {
        self.phase.set_message(msg.into());
    }

    /// Prints a line above the bars (or plainly to stderr without a terminal).
    pub fn line(&self, msg: impl AsRef<str>) {
        if self.plain {
            eprintln!("{}", msg.as_ref());
        } else {
            self.overall.println(msg.as_ref());
        }
    }

    /// Marks one cell done and prints its one-line outcome.
    pub fn cell_done(&self, summary: impl AsRef<str>) {
        self.overall.inc(1);
        let pos = self.overall.position();
        let len = self.overall.length().unwrap_or(pos);
        self.line(format!("[{pos}/{len}] {}", summary.as_ref()));
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.phase.finish_and_clear();
        self.overall.finish_and_clear();
    }
}
