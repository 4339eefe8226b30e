//! Progress of the engine build: a spinner showing the newest `[ NN%]` line of cmake's
//! output in the build log and the elapsed time. Without a terminal (CI, tests) a plain
//! line every 30 seconds instead, so logs show the build is alive without flooding.
//!
//! SIGINT or SIGTERM (polled through [`crate::util::interrupt`]) stops the build: pip runs
//! in its own process group, and the whole group (pip, cmake, make, the compilers) gets
//! SIGTERM, then SIGKILL after a second, so no compiler outlives the harness.

use crate::util::interrupt::Interrupted;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::io::IsTerminal;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

const PLAIN_EVERY: Duration = Duration::from_secs(30);

/// Grace between SIGTERM and SIGKILL to the build's process group.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Waits for `child` (pip writing to `log_path`, leader of its own process group), showing
/// progress; returns its status, or [`Interrupted`] after stopping the whole group when a
/// signal arrived under an installed [`crate::util::interrupt::Guard`].
pub fn wait_with_progress(
    child: &mut Child,
    log_path: &Path,
    start: Instant,
) -> anyhow::Result<ExitStatus> {
    let spinner = std::io::stderr().is_terminal().then(|| {
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} building llama.cpp [{elapsed}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb
    });
    let mut last_plain = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for pip")? {
            break status;
        }
        if let Some(sig) = crate::util::interrupt::pending() {
            if let Some(pb) = &spinner {
                pb.finish_and_clear();
            }
            stop_group(child);
            return Err(Interrupted(sig).into());
        }
        let msg = last_progress_line(log_path).unwrap_or_else(|| "preparing".to_string());
        match &spinner {
            Some(pb) => pb.set_message(msg),
            None if last_plain.elapsed() >= PLAIN_EVERY => {
                eprintln!(
                    "building llama.cpp [{:.0} s] {msg}",
                    start.elapsed().as_secs_f64()
                );
                last_plain = Instant::now();
            }
            None => {}
        }
        if let Some(pb) = &spinner {
            pb.tick();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    Ok(status)
}

/// The newest cmake progress line (`[ 45%] Building CXX object ...`) in the log's tail.
pub fn last_progress_line(log_path: &Path) -> Option<String> {
    let tail = crate::util::tail::read_tail(log_path, 16 * 1024).ok()?;
    progress_line_in(&tail)
}

fn progress_line_in(text: &str) -> Option<String> {
    text.lines().rev().find_map(|l| {
        let l = l.trim();
        let pct = l.strip_prefix('[')?.split_once("%]")?;
        pct.0.trim().parse::<u32>().ok()?;
        Some(shorten(l, 100))
    })
}

fn shorten(line: &str, max_chars: usize) -> String {
    match line.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line.to_string(),
    }
}

/// SIGTERM to the child's process group, SIGKILL after [`STOP_GRACE`], then reaps it.
fn stop_group(child: &mut Child) {
    let group = Pid::from_raw(child.id() as i32);
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Descendants may outlive the leader: the group gets SIGKILL either way.
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_newest_percentage_line() {
        let log = "  [ 45%] Building CXX object common/a.o\n  [ 46%] Linking CXX executable ../bin/x\n  warning: foo\n";
        assert_eq!(
            progress_line_in(log).as_deref(),
            Some("[ 46%] Linking CXX executable ../bin/x")
        );
        assert_eq!(progress_line_in("Collecting cmake\n"), None);
        assert_eq!(progress_line_in("[abc%] x"), None);
    }

    #[test]
    fn long_lines_are_shortened() {
        let s = shorten(&"x".repeat(150), 100);
        assert_eq!(s.len(), 103);
    }
}
