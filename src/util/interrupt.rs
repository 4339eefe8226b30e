//! SIGINT and SIGTERM as a flag that long blocking steps poll (a pip download, a file
//! copy), so that they can stop their child processes and delete their temporary files
//! before the harness exits with 130 or 143, instead of dying with both left behind.
//!
//! The handler only stores the signal number in an atomic (async-signal-safe). While a
//! [`Guard`] is alive the handlers are installed; dropping it restores the previous ones.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Set once Ctrl-C reached a run of this process (the run loop's handler sets it; a test's
/// own trigger does not).
static PROCESS_INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Records that Ctrl-C reached this process's run.
pub fn note_process_interrupted() {
    PROCESS_INTERRUPTED.store(true, Ordering::SeqCst);
}

/// True once Ctrl-C reached this process: its servers are then stopped without the usual
/// grace period, since nothing they do is measured any more and the user waits.
pub fn process_interrupted() -> bool {
    PROCESS_INTERRUPTED.load(Ordering::SeqCst)
}

extern "C" fn on_signal(sig: i32) {
    RECEIVED.store(sig, Ordering::SeqCst);
}

/// Installed SIGINT/SIGTERM handlers; the previous ones come back on drop.
pub struct Guard {
    previous: Vec<(Signal, SigAction)>,
}

impl Guard {
    /// Installs the handlers and clears any earlier signal.
    pub fn install() -> Guard {
        RECEIVED.store(0, Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let mut previous = Vec::new();
        for sig in [Signal::SIGINT, Signal::SIGTERM] {
            // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
            if let Ok(old) = unsafe { sigaction(sig, &action) } {
                previous.push((sig, old));
            }
        }
        Guard { previous }
    }

    /// The signal received since [`Guard::install`], if any.
    pub fn received(&self) -> Option<Signal> {
        pending()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        RECEIVED.store(0, Ordering::SeqCst);
        for (sig, old) in &self.previous {
            // SAFETY: restores the action that was installed before.
            let _ = unsafe { sigaction(*sig, old) };
        }
    }
}

/// The signal received while a [`Guard`] is installed, if any (for loops that cannot be
/// handed the guard, such as a `Write` implementation).
pub fn pending() -> Option<Signal> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// Error of a step stopped by a signal; `exit_code` is 128 + the signal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {0}; temporary files removed")]
pub struct Interrupted(pub Signal);

impl Interrupted {
    /// 130 for SIGINT, 143 for SIGTERM.
    pub fn exit_code(self) -> u8 {
        128 + self.0 as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_sets_the_flag_and_the_exit_code() {
        let guard = Guard::install();
        assert_eq!(guard.received(), None);
        nix::sys::signal::raise(Signal::SIGTERM).unwrap();
        assert_eq!(guard.received(), Some(Signal::SIGTERM));
        assert_eq!(Interrupted(Signal::SIGTERM).exit_code(), 143);
        assert_eq!(Interrupted(Signal::SIGINT).exit_code(), 130);
    }
}
