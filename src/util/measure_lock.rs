//! One measurement at a time on this machine: every command that measures (`run`, `ab`,
//! `validate`, `check --profile`) and every test that starts llama-server holds one
//! machine-wide advisory lock (flock) on [`lock_path`] while it measures. Two measurements
//! side by side ruin each other (a Gemma decoded at 1.9 t/s instead of 66 beside another
//! run), and nothing in their rows would say so.
//!
//! The holder writes its pid, the time it took the lock and its command line into the file,
//! so that a second one can say whom it waits for; it empties the file when it lets go. The
//! kernel drops a flock when its holder dies, so a holder killed with SIGKILL blocks nobody:
//! the next taker gets the lock at once and overwrites the dead holder's lines. The file is
//! never deleted (deleting a flock file lets two processes hold "the" lock at once, one on
//! the unlinked file and one on its successor).
//!
//! A process whose ancestor holds the lock (a test that took it and runs `bench run`, a
//! script of the harness's own) measures under that ancestor's lock instead of waiting for
//! itself; a second take in one process nests.

use anyhow::Context;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Environment variable that overrides the lock file's path (tests use their own).
pub const LOCK_ENV: &str = "TPSBENCH_LOCK";

/// The lock file when [`LOCK_ENV`] is not set: in `/tmp`, the one directory every user of
/// the machine shares (`$XDG_RUNTIME_DIR` is per user, and two users' runs disturb each
/// other as much as one user's two).
pub const DEFAULT_LOCK_PATH: &str = "/tmp/tpsbench-measure.lock";

/// How often a waiting process tries the lock again.
const POLL: Duration = Duration::from_millis(200);

/// How often a waiting process says it still waits.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Takes of the lock this process holds (nested takes share the first one's file).
static DEPTH: AtomicUsize = AtomicUsize::new(0);

/// The measurement lock's path: `$TPSBENCH_LOCK` when set and not empty, else
/// [`DEFAULT_LOCK_PATH`].
pub fn lock_path() -> PathBuf {
    std::env::var_os(LOCK_ENV)
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_LOCK_PATH), PathBuf::from)
}

/// Whether a busy lock is waited for or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Wait, saying whom for and how long, until the holder lets go (Ctrl-C stops waiting).
    Wait,
    /// Fail at once (`--no-wait`): an environment error, exit 4.
    NoWait,
}

impl Wait {
    /// `--no-wait` given or not.
    pub fn from_no_wait(no_wait: bool) -> Wait {
        if no_wait {
            Wait::NoWait
        } else {
            Wait::Wait
        }
    }
}

/// Who holds the lock, as the holder wrote it into the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's process id.
    pub pid: u32,
    /// When it took the lock (seconds since the Unix epoch).
    pub since_unix: u64,
    /// Its command line, arguments joined with spaces.
    pub command: String,
}

impl Holder {
    /// This process, now.
    fn this_process() -> Holder {
        Holder {
            pid: std::process::id(),
            since_unix: unix_now(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
        }
    }

    /// The lines written into the lock file.
    fn to_text(&self) -> String {
        format!(
            "pid {}\nsince {}\ncommand {}\n",
            self.pid, self.since_unix, self.command
        )
    }

    /// Reads the lines [`Holder::to_text`] wrote; `None` for an empty or foreign file.
    pub fn parse(text: &str) -> Option<Holder> {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        };
        Some(Holder {
            pid: field("pid")?.trim().parse().ok()?,
            since_unix: field("since")?.trim().parse().ok()?,
            command: field("command").unwrap_or("").trim().to_string(),
        })
    }

    /// `pid 123 (bench run --profile smoke), measuring for 40 s`.
    fn describe(&self) -> String {
        let held = unix_now().saturating_sub(self.since_unix);
        format!(
            "pid {} ({}), measuring for {held} s",
            self.pid, self.command
        )
    }
}

/// The measurement lock, held until dropped (or the process ends, however it ends).
#[derive(Debug)]
pub struct MeasureLock {
    /// The locked file; `None` for a nested take or under an ancestor's lock.
    file: Option<File>,
    /// The lock file's path.
    path: PathBuf,
}

impl MeasureLock {
    /// Takes the lock at [`lock_path`], waiting or not as `wait` says.
    pub fn acquire(wait: Wait) -> anyhow::Result<MeasureLock> {
        Self::acquire_at(&lock_path(), wait)
    }

    /// Takes the lock at `path`. A busy lock is waited for, with a line on stderr naming the
    /// holder and how long this process has waited (every 10 s), or refused with
    /// [`Wait::NoWait`] as an environment error (exit 4) naming the holder.
    pub fn acquire_at(path: &Path, wait: Wait) -> anyhow::Result<MeasureLock> {
        let nested = || MeasureLock {
            file: None,
            path: path.to_path_buf(),
        };
        if DEPTH.load(Ordering::SeqCst) > 0 {
            DEPTH.fetch_add(1, Ordering::SeqCst);
            return Ok(nested());
        }
        let mut file = open(path)?;
        if !try_lock(&file, path)? {
            if read_holder(&mut file).is_some_and(|h| is_ancestor(h.pid)) {
                DEPTH.fetch_add(1, Ordering::SeqCst);
                return Ok(nested());
            }
            if wait == Wait::NoWait {
                let who = holder_text(&mut file);
                return Err(crate::util::error::environment(anyhow::anyhow!(
                    "another measurement holds the lock {}: {who}; not waiting (--no-wait)",
                    path.display()
                )));
            }
            wait_for(&mut file, path)?;
        }
        record(&mut file, &Holder::this_process());
        DEPTH.fetch_add(1, Ordering::SeqCst);
        Ok(MeasureLock {
            file: Some(file),
            path: path.to_path_buf(),
        })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for MeasureLock {
    fn drop(&mut self) {
        DEPTH.fetch_sub(1, Ordering::SeqCst);
        if let Some(file) = self.file.take() {
            // Emptied first, so that nobody reads a holder that has let go.
            let _ = file.set_len(0);
            let _ = file.unlock();
        }
    }
}

/// Opens (creating) the lock file for writing, or for reading when another user created
/// it: a flock works on either, only the holder's lines need the writable one.
fn open(path: &Path) -> anyhow::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        super::create_dir_all(parent)?;
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o666);
    }
    let file = match options.open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => File::open(path),
        other => other,
    }
    .with_context(|| format!("opening the measurement lock {}", path.display()))?;
    // Writable for every user, whatever the creator's umask, so that each can record itself
    // (best effort: only the owner may change it).
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o666));
    }
    Ok(file)
}

/// True when the lock is now ours.
fn try_lock(file: &File, path: &Path) -> anyhow::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Polls until the lock is ours, saying on stderr whom it waits for (at once, then every
/// [`REPORT_EVERY`]); Ctrl-C or SIGTERM ends the wait with [`super::interrupt::Interrupted`].
fn wait_for(file: &mut File, path: &Path) -> anyhow::Result<()> {
    let guard = super::interrupt::Guard::install();
    let start = Instant::now();
    let mut next_report = Duration::ZERO;
    loop {
        if let Some(sig) = guard.received() {
            return Err(super::interrupt::Interrupted(sig).into());
        }
        if try_lock(file, path)? {
            return Ok(());
        }
        let waited = start.elapsed();
        if waited >= next_report {
            eprintln!(
                "waiting for the measurement lock {}: held by {}; waited {} s so far \
                 (--no-wait exits instead)",
                path.display(),
                holder_text(file),
                waited.as_secs()
            );
            next_report = waited + REPORT_EVERY;
        }
        std::thread::sleep(POLL);
    }
}

/// The holder as the waiting user should read it. A pid that is no longer alive is a line
/// left by a holder that died, read in the moment before the live holder (which took the
/// lock since) wrote its own: not named, so as not to send the user after a dead process.
fn holder_text(file: &mut File) -> String {
    match read_holder(file) {
        Some(h) if pid_alive(h.pid) => h.describe(),
        _ => "another process (it has not recorded its pid and command line yet)".to_string(),
    }
}

/// The holder lines of the file, if any.
fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    Holder::parse(&text)
}

/// Writes this holder's lines (best effort: a lock file of another user is read-only, and
/// the lock holds without them).
fn record(file: &mut File, holder: &Holder) {
    let _ = file.set_len(0);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.write_all(holder.to_text().as_bytes());
    let _ = file.flush();
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether process `pid` exists.
fn pid_alive(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether `pid` is this process's parent, grandparent, ... (from `/proc/PID/stat`'s ppid).
fn is_ancestor(pid: u32) -> bool {
    let mut current = std::process::id();
    for _ in 0..64 {
        match parent_of(current) {
            Some(parent) if parent == pid => return true,
            Some(parent) if parent > 1 => current = parent,
            _ => return false,
        }
    }
    false
}

/// The parent pid of `pid`: field 4 of `/proc/PID/stat`, counted after the `)` that ends
/// the command name (which may itself hold spaces and parentheses).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_ppid(&stat)
}

fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_lines_round_trip_and_foreign_text_is_nobody() {
        let h = Holder {
            pid: 4242,
            since_unix: 1_765_000_000,
            command: "bench run --profile smoke".into(),
        };
        assert_eq!(
            h.to_text(),
            "pid 4242\nsince 1765000000\ncommand bench run --profile smoke\n"
        );
        assert_eq!(Holder::parse(&h.to_text()), Some(h));
        assert_eq!(Holder::parse(""), None);
        assert_eq!(Holder::parse("12345\n"), None);
    }

    #[test]
    fn the_parent_pid_is_read_after_a_tricky_name() {
        assert_eq!(parse_ppid("77 (a ) b (c)) S 1234 77 77 0"), Some(1234));
        assert_eq!(parse_ppid("garbage"), None);
        // Our parent is our ancestor; we are not our own.
        let parent = std::os::unix::process::parent_id();
        assert!(is_ancestor(parent));
        assert!(!is_ancestor(std::process::id()));
    }

    #[test]
    fn a_dead_holders_lines_are_not_shown_as_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.lock");
        let mut file = open(&path).unwrap();
        // pid_max is at most 2^22 on Linux: this pid cannot exist.
        let dead = Holder {
            pid: 4_194_305,
            since_unix: 1,
            command: "bench run --profile gone".into(),
        };
        record(&mut file, &dead);
        let text = holder_text(&mut file);
        assert!(
            !text.contains("4194305") && text.contains("not recorded"),
            "{text}"
        );
        record(&mut file, &Holder::this_process());
        let text = holder_text(&mut file);
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
    }

    #[test]
    fn nested_takes_share_the_lock_and_the_last_release_empties_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.lock");
        let outer = MeasureLock::acquire_at(&path, Wait::NoWait).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let me = Holder::parse(&text).unwrap();
        assert_eq!(me.pid, std::process::id());
        let inner = MeasureLock::acquire_at(&path, Wait::NoWait).unwrap();
        drop(inner);
        assert!(!std::fs::read_to_string(&path).unwrap().is_empty());
        drop(outer);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        // Free again: another open file description takes it at once.
        let again = open(&path).unwrap();
        assert!(try_lock(&again, &path).unwrap());
    }
}
