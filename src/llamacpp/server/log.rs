//! The per-launch server log: following it during startup (the "listening" line, the
//! model-load timestamps, a failed bind) and reading its tail for error reports.
//!
//! The launcher asks llama-server for log prefixes with timestamps (environment
//! `LLAMA_ARG_LOG_PREFIX=1`, `LLAMA_ARG_LOG_TIMESTAMPS=1`), so info lines look like
//! `0.01.234.567 I srv  load_model: loading model '...'`: minutes, seconds, milliseconds and
//! microseconds since the server's logger started. Other modules that search the log for a
//! phrase (`draft acceptance = `, `n_expert_used`) should match substrings, not whole lines.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, Instant};

/// Phrase of the line llama-server prints once the model is loaded and it serves requests.
pub const LISTENING_PHRASE: &str = "listening on http://";
const LOADING_PHRASE: &str = "loading model '";
const LOADED_PHRASE: &str = "model loaded";
const BIND_FAILED_PHRASE: &str = "couldn't bind HTTP server socket";

/// What the startup follower has seen in the log so far.
#[derive(Debug, Default, Clone)]
pub struct StartupLog {
    /// When the harness first saw the "listening on" line (its own clock).
    pub listening_seen_at: Option<Instant>,
    /// The server's timestamp of the "listening on" line (since its logger started).
    pub listening_ts: Option<Duration>,
    /// The server's timestamp of "loading model '...'".
    pub loading_ts: Option<Duration>,
    /// The server's timestamp of "model loaded".
    pub loaded_ts: Option<Duration>,
    /// The server reported that it could not bind its port.
    pub bind_failed: bool,
}

impl StartupLog {
    /// Model-load time by the server's own clock: "loading model" to "model loaded".
    pub fn load_time(&self) -> Option<Duration> {
        self.loaded_ts?.checked_sub(self.loading_ts?)
    }
}

/// Follows a log file from its start, one complete line at a time.
pub struct LogFollower {
    file: File,
    pending: Vec<u8>,
    chunk: Vec<u8>,
    /// Lines seen so far, interpreted.
    pub seen: StartupLog,
}

impl LogFollower {
    /// Opens `path` for following from offset 0.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            file: File::open(path)?,
            pending: Vec::new(),
            chunk: vec![0; 64 * 1024],
            seen: StartupLog::default(),
        })
    }

    /// Reads whatever the server appended and interprets complete lines. Returns true when
    /// this call saw the "listening on" line.
    pub fn poll(&mut self) -> io::Result<bool> {
        let before = self.seen.listening_seen_at.is_some();
        loop {
            let n = self.file.read(&mut self.chunk)?;
            if n == 0 {
                break;
            }
            self.pending.extend_from_slice(&self.chunk[..n]);
        }
        let now = Instant::now();
        let mut start = 0;
        while let Some(pos) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&self.pending[start..start + pos]).into_owned();
            interpret(&line, now, &mut self.seen);
            start += pos + 1;
        }
        self.pending.drain(..start);
        Ok(!before && self.seen.listening_seen_at.is_some())
    }
}

fn interpret(line: &str, now: Instant, seen: &mut StartupLog) {
    let ts = parse_timestamp(line);
    if line.contains(LISTENING_PHRASE) && seen.listening_seen_at.is_none() {
        seen.listening_seen_at = Some(now);
        seen.listening_ts = ts;
    } else if line.contains(LOADING_PHRASE) && seen.loading_ts.is_none() {
        seen.loading_ts = ts;
    } else if line.contains(LOADED_PHRASE) && seen.loaded_ts.is_none() {
        seen.loaded_ts = ts;
    } else if line.contains(BIND_FAILED_PHRASE) {
        seen.bind_failed = true;
    }
}

/// Parses the `M.SS.mmm.uuu` prefix llama.cpp's logger writes with timestamps on.
pub fn parse_timestamp(line: &str) -> Option<Duration> {
    let stamp = line.split_whitespace().next()?;
    let mut parts = stamp.split('.');
    let mut field = || parts.next()?.parse::<u64>().ok();
    let (min, sec, ms, us) = (field()?, field()?, field()?, field()?);
    if parts.next().is_some() || sec >= 60 || ms >= 1000 || us >= 1000 {
        return None;
    }
    Some(Duration::from_micros(
        ((min * 60 + sec) * 1000 + ms) * 1000 + us,
    ))
}

/// The last `n_lines` lines of the log at `path` (at most the last 64 KiB), or a note
/// saying why it could not be read.
pub fn tail(path: &Path, n_lines: usize) -> String {
    crate::util::tail::tail_lines(path, n_lines)
        .unwrap_or_else(|e| format!("(server log {} unreadable: {e})", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_llama_log_timestamps() {
        let line = "1.02.345.678 I srv  load_model: loading model 'x.gguf'";
        assert_eq!(
            parse_timestamp(line),
            Some(Duration::from_micros(62_345_678))
        );
        assert_eq!(
            parse_timestamp("0.00.000.001 I main: x"),
            Some(Duration::from_micros(1))
        );
        assert_eq!(parse_timestamp("srv  load_model: loading model"), None);
        assert_eq!(parse_timestamp("0.61.000.000 I x"), None);
        assert_eq!(parse_timestamp("1.2.3 I x"), None);
    }

    #[test]
    fn interprets_startup_lines() {
        let mut seen = StartupLog::default();
        let now = Instant::now();
        for line in [
            "0.00.010.000 I srv  load_model: loading model '/m.gguf'",
            "0.00.250.500 I srv  main: model loaded",
            "0.00.251.000 I srv  main: listening on http://127.0.0.1:4567",
        ] {
            interpret(line, now, &mut seen);
        }
        assert_eq!(seen.load_time(), Some(Duration::from_micros(240_500)));
        assert_eq!(seen.listening_ts, Some(Duration::from_millis(251)));
        assert_eq!(seen.listening_seen_at, Some(now));
        assert!(!seen.bind_failed);
        interpret(
            "0.00.001.000 E srv  start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 80",
            now,
            &mut seen,
        );
        assert!(seen.bind_failed);
    }

    #[test]
    fn follower_reads_only_complete_lines() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.log");
        let mut out = File::create(&path).unwrap();
        let mut follower = LogFollower::open(&path).unwrap();
        out.write_all(b"0.00.001.000 I srv  main: listening on http://127.0.0.1:1")
            .unwrap();
        assert!(!follower.poll().unwrap());
        out.write_all(b"234\n").unwrap();
        assert!(follower.poll().unwrap());
        assert!(!follower.poll().unwrap());
        assert_eq!(follower.seen.listening_ts, Some(Duration::from_millis(1)));
    }
}
