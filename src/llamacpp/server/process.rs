//! Spawning llama-server from a thread that outlives it, and reaping it without races.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not when the
//! process does. So each server gets its own keeper thread: it spawns the child and then
//! blocks until the child exits. The keeper therefore lives at least as long as the child,
//! and the parent-death signal fires only when the whole harness dies (SIGKILL included),
//! whatever thread (a tokio worker, a `spawn_blocking` thread) asked for the launch.
//!
//! The keeper first waits with `WNOWAIT`, so the exited child stays a zombie (its pid cannot
//! be reused) until the keeper reaps it under the same lock that signal senders take: a
//! signal is never sent to a recycled pid.

use std::fmt;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use nix::errno::Errno;
use nix::sched::{sched_setaffinity, CpuSet};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::{getppid, Pid};

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code when it exited normally.
    pub code: Option<i32>,
    /// Signal number when a signal ended it.
    pub signal: Option<i32>,
}

impl ExitInfo {
    /// The status could not be read (should not happen).
    pub const UNKNOWN: ExitInfo = ExitInfo {
        code: None,
        signal: None,
    };
}

impl ExitInfo {
    /// The fatal signal, if a known one ended the process.
    pub fn fatal_signal(&self) -> Option<Signal> {
        match (self.code, self.signal) {
            (None, Some(sig)) => Signal::try_from(sig).ok(),
            _ => None,
        }
    }

    /// What the fatal signal says about the engine (empty for other endings).
    pub fn meaning(&self) -> &'static str {
        match self.fatal_signal() {
            Some(Signal::SIGILL) => {
                " (an illegal instruction: the engine was built with an instruction this CPU \
                 does not execute, such as AMX tile instructions from -march=native)"
            }
            Some(Signal::SIGSEGV | Signal::SIGBUS) => " (a memory fault inside the engine)",
            Some(Signal::SIGFPE) => " (an arithmetic fault inside the engine)",
            Some(Signal::SIGKILL) => {
                " (killed from outside, for instance by the out-of-memory killer)"
            }
            _ => "",
        }
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(sig)) => match Signal::try_from(sig) {
                Ok(s) => write!(f, "killed by {s}{}", self.meaning()),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
            (None, None) => f.write_str("unknown exit status"),
        }
    }
}

struct Shared {
    status: Mutex<Option<ExitInfo>>,
    cond: Condvar,
    watch: tokio::sync::watch::Sender<Option<ExitInfo>>,
}

/// A spawned child in its own process group (pgid == pid), reaped by its keeper thread.
pub(crate) struct Child {
    pid: Pid,
    shared: Arc<Shared>,
}

/// Makes the command a direct child in its own process group that is SIGKILLed when the
/// harness dies. Must be called on every command given to [`spawn`].
pub(crate) fn harden(cmd: &mut Command) {
    let harness_pid = std::process::id() as i32;
    cmd.process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls (prctl, getppid); it allocates nothing on the success path.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // The harness may have died between fork and prctl; then no signal will come.
            if getppid().as_raw() != harness_pid {
                return Err(io::Error::other("the harness exited during spawn"));
            }
            Ok(())
        });
    }
}

/// Confines the command to `cpus` through the OS's affinity interface (sched_setaffinity in
/// the child before exec, so that every thread the server starts inherits it). The mask is
/// built here, before fork: the closure only makes the system call.
pub(crate) fn confine(cmd: &mut Command, cpus: &crate::hardware::CpuSet) {
    let mut mask = CpuSet::new();
    for cpu in cpus.cpus() {
        // A CPU beyond the mask's size fails the launch below with the kernel's EINVAL.
        let _ = mask.set(cpu as usize);
    }
    // SAFETY: sched_setaffinity is async-signal-safe; nothing is allocated in the closure.
    unsafe {
        cmd.pre_exec(move || {
            sched_setaffinity(Pid::from_raw(0), &mask).map_err(io::Error::from)?;
            Ok(())
        });
    }
}

/// Spawns `cmd` (already [`harden`]ed) from a new keeper thread and returns once it runs.
pub(crate) fn spawn(cmd: Command) -> io::Result<Child> {
    let shared = new_shared();
    let (tx, rx) = mpsc::channel();
    let keeper_shared = shared.clone();
    std::thread::Builder::new()
        .name("llama-server-keeper".into())
        .spawn(move || keep(cmd, &keeper_shared, &tx))?;
    let pid = rx
        .recv()
        .map_err(|_| io::Error::other("the keeper thread ended before spawning"))??;
    Ok(Child { pid, shared })
}

fn new_shared() -> Arc<Shared> {
    Arc::new(Shared {
        status: Mutex::new(None),
        cond: Condvar::new(),
        watch: tokio::sync::watch::Sender::new(None),
    })
}

fn keep(mut cmd: Command, shared: &Shared, tx: &mpsc::Sender<io::Result<Pid>>) {
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    let pid = Pid::from_raw(child.id() as i32);
    let _ = tx.send(Ok(pid));
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    while let Err(Errno::EINTR) = waitid(Id::Pid(pid), flags) {}
    let mut status = lock(&shared.status);
    let info = match child.wait() {
        Ok(st) => ExitInfo {
            code: st.code(),
            signal: st.signal(),
        },
        Err(_) => ExitInfo::UNKNOWN,
    };
    *status = Some(info);
    shared.cond.notify_all();
    shared.watch.send_replace(Some(info));
}

fn lock(m: &Mutex<Option<ExitInfo>>) -> MutexGuard<'_, Option<ExitInfo>> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Child {
    /// The child's pid (also its process group id).
    pub(crate) fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// How the child ended, or `None` while it runs. Never blocks.
    pub(crate) fn exit_status(&self) -> Option<ExitInfo> {
        *lock(&self.shared.status)
    }

    /// Sends `sig` to the child's process group unless the child has already been reaped.
    pub(crate) fn signal_group(&self, sig: Signal) {
        let status = lock(&self.shared.status);
        if status.is_none() {
            // ESRCH (group already gone) is the only expected failure and means "done".
            let _ = killpg(self.pid, sig);
        }
    }

    /// Waits up to `timeout` for the child to end.
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> Option<ExitInfo> {
        let status = lock(&self.shared.status);
        let (status, _) = self
            .shared
            .cond
            .wait_timeout_while(status, timeout, |s| s.is_none())
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *status
    }

    /// A receiver that sees the exit status the moment the keeper reaps the child.
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<Option<ExitInfo>> {
        self.shared.watch.subscribe()
    }
}
