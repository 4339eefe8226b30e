//! The llama-server process: spawn, readiness, crash detection, log capture, stop.
//!
//! Rules (see docs/readme/server.md): the binary is spawned directly, never through a
//! shell; it binds 127.0.0.1 on a port the launcher picked; it runs in its own process
//! group with `PR_SET_PDEATHSIG=SIGKILL`, from a keeper thread that outlives it (see
//! [`process`]); stdout and stderr go to the per-launch log file; readiness is `/health`
//! answering 200 plus the server's own "listening on" line; stopping is SIGTERM to the
//! group, SIGKILL after a grace period, then waiting until the port is free again.

pub mod cpu;
pub mod log;
pub mod net;
mod process;
pub mod remote;

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::engine::LaunchSpec;
use crate::hardware::CpuSet;
use crate::llamacpp::{CapabilityError, Engine};

pub use process::ExitInfo;

/// Lines of server log attached to errors.
pub const LOG_TAIL_LINES: usize = 30;
/// How often the launcher reads the log while waiting (the "listening" line's resolution).
const LOG_POLL_PERIOD: Duration = Duration::from_millis(2);
/// How often the launcher asks `/health` while the server loads.
const HEALTH_POLL_PERIOD: Duration = Duration::from_millis(10);
/// Time allowed for the "listening" line once `/health` answered 200 (it follows at once).
const LISTENING_LINE_GRACE: Duration = Duration::from_secs(2);
/// Launch attempts when the picked port is taken before the server binds it.
const PORT_ATTEMPTS: u32 = 4;

/// Errors of launching, watching and stopping a server; callers branch on the kind.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The binary could not be started at all.
    #[error("cannot start llama-server {}: {source}", bin.display())]
    Spawn {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The per-launch log file could not be created or read.
    #[error("server log {}: {source}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No free port could be found.
    #[error("no free port on 127.0.0.1: {0}")]
    NoFreePort(#[source] std::io::Error),
    /// The requested port is taken by another process.
    #[error("port {port} on 127.0.0.1 is already in use")]
    PortInUse { port: u16 },
    /// The server exited (or was killed) on its own.
    #[error(
        "llama-server (pid {pid}) ended unexpectedly: {exit}; last lines of its log:\n{log_tail}"
    )]
    Exited {
        pid: u32,
        exit: ExitInfo,
        log_tail: String,
    },
    /// The engine lacks a flag the launch needs.
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    /// The server did not become ready in time; it has been stopped.
    #[error(
        "llama-server (pid {pid}) did not become ready within {after:?} and was stopped; last lines of its log:\n{log_tail}"
    )]
    StartupTimeout {
        pid: u32,
        after: Duration,
        log_tail: String,
    },
    /// The server ignored SIGTERM and SIGKILL (should not happen).
    #[error("llama-server (pid {pid}) did not exit after SIGKILL")]
    StopTimeout { pid: u32 },
    /// The server exited but its port stayed taken.
    #[error("port {port} on 127.0.0.1 still in use after the server stopped")]
    PortStillBusy { port: u16 },
}

/// The program and its arguments (for instance from `Capabilities::server_args`). The
/// launcher sets the values of `--host` and `--port` to 127.0.0.1 and the port it picked,
/// appending the flags when absent (llama.cpp warns about repeated flags, so they are
/// replaced rather than repeated).
#[derive(Debug, Clone)]
pub struct LaunchCommand {
    pub bin: PathBuf,
    pub args: Vec<OsString>,
    /// The CPUs the server is confined to (set in the child before exec), if any.
    pub cpus: Option<CpuSet>,
}

impl LaunchCommand {
    /// The engine's command line for `spec` (its host and port are overridden at launch).
    pub fn from_engine(engine: &Engine, spec: &LaunchSpec) -> Result<Self, CapabilityError> {
        Ok(Self {
            bin: engine.server_bin.clone(),
            args: engine.caps.server_args(spec)?,
            cpus: spec.cpus.clone(),
        })
    }

    /// The arguments with `--host 127.0.0.1 --port PORT` set.
    pub fn args_for_port(&self, port: u16) -> Vec<OsString> {
        let mut args = self.args.clone();
        set_flag(&mut args, "--host", net::LOOPBACK.to_string().into());
        set_flag(&mut args, "--port", port.to_string().into());
        args
    }
}

fn set_flag(args: &mut Vec<OsString>, flag: &str, value: OsString) {
    match args.iter().position(|a| a == flag) {
        Some(i) if i + 1 < args.len() => args[i + 1] = value,
        Some(_) => args.push(value),
        None => args.extend([flag.into(), value]),
    }
}

/// Which port to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PortChoice {
    /// A free port picked by the launcher, re-picked if it is taken before the server binds.
    #[default]
    Auto,
    /// Exactly this port; [`ServerError::PortInUse`] when it is taken.
    Fixed(u16),
}

/// How to launch and stop a server.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// Where stdout and stderr of this launch go (created or truncated).
    pub log_path: PathBuf,
    /// Give up when not ready after this long; see [`startup_timeout_for`].
    pub startup_timeout: Duration,
    pub port: PortChoice,
    /// Between SIGTERM and SIGKILL when stopping.
    pub stop_grace: Duration,
}

impl LaunchOptions {
    /// Defaults: automatic port, 10 s stop grace.
    pub fn new(log_path: impl Into<PathBuf>, startup_timeout: Duration) -> Self {
        Self {
            log_path: log_path.into(),
            startup_timeout,
            port: PortChoice::Auto,
            stop_grace: Duration::from_secs(10),
        }
    }
}

/// A startup timeout that grows with the model: 30 s plus 1 s per 100 MB of model and
/// draft files (a slow disk reads about 100 MB/s; warm-up and context allocation fit in the
/// 30 s base on the tool's target machines).
pub fn startup_timeout_for(model_bytes: u64) -> Duration {
    Duration::from_secs(30) + Duration::from_millis(model_bytes / 100_000)
}

/// Readiness figures of one launch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Readiness {
    /// From spawn to the harness seeing both `/health` 200 and the "listening" line.
    pub launch_to_ready: Duration,
    /// "loading model" to "model loaded" by the server's own log timestamps.
    pub load_time: Option<Duration>,
    /// The server's own timestamp of its "listening" line (since its logger started,
    /// which is within milliseconds of exec).
    pub listening_ts: Option<Duration>,
    /// From the harness seeing the "listening" line in the log to declaring readiness.
    pub ready_after_listening_line: Option<Duration>,
    /// Launches needed (more than 1 when a picked port was taken in between).
    pub attempts: u32,
}

impl Readiness {
    /// An upper bound of the detection delay by the server's own clock: launch-to-ready
    /// minus the server's timestamp of its "listening" line (exec and logger start-up time
    /// are included, so the true delay is smaller).
    pub fn detection_delay_bound(&self) -> Option<Duration> {
        self.launch_to_ready.checked_sub(self.listening_ts?)
    }
}

/// A running llama-server. Dropping it stops it.
pub struct Server {
    child: process::Child,
    port: u16,
    log_path: PathBuf,
    stop_grace: Duration,
    readiness: Readiness,
    /// The server answered on its port at least once (so stopping waits for it to be free).
    port_bound: bool,
    stopped: bool,
}

/// How a stop went.
#[derive(Debug, Clone, Copy)]
pub struct StopReport {
    pub exit: ExitInfo,
    /// SIGTERM was not enough within the grace period.
    pub killed: bool,
    /// From the first signal to the port being free.
    pub took: Duration,
}

impl Server {
    /// Launches the server and waits until it is ready (see the module docs).
    pub fn launch(cmd: &LaunchCommand, opts: &LaunchOptions) -> Result<Server, ServerError> {
        let mut attempt = 1;
        loop {
            let port = pick_port(opts.port)?;
            match launch_on(cmd, opts, port) {
                Err(ServerError::PortInUse { .. })
                    if opts.port == PortChoice::Auto && attempt < PORT_ATTEMPTS =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(e),
                Ok(mut server) => {
                    server.readiness.attempts = attempt;
                    return Ok(server);
                }
            }
        }
    }

    /// [`Server::launch`] with the engine's command line for `spec`.
    pub fn launch_engine(
        engine: &Engine,
        spec: &LaunchSpec,
        opts: &LaunchOptions,
    ) -> Result<Server, ServerError> {
        Self::launch(&LaunchCommand::from_engine(engine, spec)?, opts)
    }

    /// The server's pid (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}:{}", net::LOOPBACK, self.port)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `n` lines of this launch's log.
    pub fn log_tail(&self, n: usize) -> String {
        log::tail(&self.log_path, n)
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness
    }

    /// Model-load time from the server's log.
    pub fn load_time(&self) -> Option<Duration> {
        self.readiness.load_time
    }

    /// Spawn to ready, on the harness's clock.
    pub fn launch_to_ready(&self) -> Duration {
        self.readiness.launch_to_ready
    }

    /// CPU time (user + system) the server has used so far, from `/proc/<pid>/stat`.
    pub fn cpu_time(&self) -> std::io::Result<Duration> {
        cpu::process_cpu_time(self.pid())
    }

    /// `Err(Exited)` with the log tail when the server has ended; never blocks.
    pub fn check(&self) -> Result<(), ServerError> {
        match self.child.exit_status() {
            None => Ok(()),
            Some(exit) => Err(self.exited_error(exit)),
        }
    }

    /// A watcher that resolves the moment the server ends; race it against a request
    /// with `tokio::select!` to turn a crash mid-request into [`ServerError::Exited`].
    pub fn exit_watch(&self) -> ExitWatch {
        ExitWatch {
            rx: self.child.subscribe(),
            pid: self.pid(),
            log_path: self.log_path.clone(),
        }
    }

    /// SIGTERM to the group, SIGKILL after the grace period, then wait for the port.
    /// Stopping a server that already ended is fine and reports how it ended.
    pub fn stop(mut self) -> Result<StopReport, ServerError> {
        self.stop_inner()
    }

    /// As [`Server::stop`], with `grace` between SIGTERM and SIGKILL instead of the launch's.
    pub fn stop_within(mut self, grace: Duration) -> Result<StopReport, ServerError> {
        self.stop_grace = grace;
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<StopReport, ServerError> {
        self.stopped = true;
        let start = Instant::now();
        self.child.signal_group(Signal::SIGTERM);
        let mut killed = false;
        let exit = match self.child.wait_timeout(self.stop_grace) {
            Some(exit) => exit,
            None => {
                killed = true;
                self.child.signal_group(Signal::SIGKILL);
                self.child
                    .wait_timeout(Duration::from_secs(10))
                    .ok_or(ServerError::StopTimeout { pid: self.pid() })?
            }
        };
        if self.port_bound && !net::wait_port_free(self.port, Duration::from_secs(10)) {
            return Err(ServerError::PortStillBusy { port: self.port });
        }
        Ok(StopReport {
            exit,
            killed,
            took: start.elapsed(),
        })
    }

    fn exited_error(&self, exit: ExitInfo) -> ServerError {
        ServerError::Exited {
            pid: self.pid(),
            exit,
            log_tail: death_tail(&self.log_path),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped {
            if let Err(e) = self.stop_inner() {
                eprintln!("warning: stopping llama-server: {e}");
            }
        }
    }
}

impl ServerError {
    /// For a crash by SIGILL: which engine build executed the illegal instruction and how
    /// to get another. Empty for every other error.
    pub fn engine_advice(&self, engine: &Engine) -> String {
        if self.is_sigill() {
            sigill_advice(engine)
        } else {
            String::new()
        }
    }

    /// The server was killed by SIGILL.
    pub fn is_sigill(&self) -> bool {
        matches!(self, ServerError::Exited { exit, .. } if exit.fatal_signal() == Some(Signal::SIGILL))
    }
}

/// Which engine build executed an illegal instruction and how to get another.
pub fn sigill_advice(engine: &Engine) -> String {
    let id = &engine.identity;
    let variant = id.variant.as_deref().unwrap_or("not built by tpsbench");
    format!(
        "\nthe engine {} (variant {variant}, engine sha256 {}) cannot run on this CPU; \
         build one that can with `bench engine install --force --variant native-no-amx` \
         (or `--variant portable`), or give another llama-server with --server-bin",
        engine.server_bin.display(),
        id.engine_sha256.get(..12).unwrap_or(&id.engine_sha256)
    )
}

/// Resolves when the server ends; see [`Server::exit_watch`].
pub struct ExitWatch {
    rx: tokio::sync::watch::Receiver<Option<ExitInfo>>,
    pid: u32,
    log_path: PathBuf,
}

impl ExitWatch {
    /// Waits until the server has ended and returns [`ServerError::Exited`] with the log tail.
    pub async fn exited(&mut self) -> ServerError {
        let exit = match self.rx.wait_for(Option::is_some).await {
            Ok(status) => status.unwrap_or(ExitInfo::UNKNOWN),
            Err(_) => ExitInfo::UNKNOWN,
        };
        ServerError::Exited {
            pid: self.pid,
            exit,
            log_tail: death_tail(&self.log_path),
        }
    }
}

/// The log's last lines after the server died; never empty, so a reason never ends in a
/// bare "last lines of its log:". llama.cpp logs from a worker thread, so lines queued in
/// the instant before a crash can be lost with the process.
fn death_tail(log_path: &Path) -> String {
    let tail = log::tail(log_path, LOG_TAIL_LINES);
    if tail.trim().is_empty() {
        format!(
            "(none: {} is empty; the server died before its logging thread wrote a line)",
            log_path.display()
        )
    } else {
        tail
    }
}

fn pick_port(choice: PortChoice) -> Result<u16, ServerError> {
    match choice {
        PortChoice::Auto => net::free_port().map_err(ServerError::NoFreePort),
        PortChoice::Fixed(port) if net::port_is_free(port) => Ok(port),
        PortChoice::Fixed(port) => Err(ServerError::PortInUse { port }),
    }
}

fn launch_on(cmd: &LaunchCommand, opts: &LaunchOptions, port: u16) -> Result<Server, ServerError> {
    let log_err = |source| ServerError::Log {
        path: opts.log_path.clone(),
        source,
    };
    let command = build_command(cmd, &opts.log_path, port).map_err(log_err)?;
    let mut follower = log::LogFollower::open(&opts.log_path).map_err(log_err)?;
    let launched_at = Instant::now();
    let child = process::spawn(command).map_err(|source| ServerError::Spawn {
        bin: cmd.bin.clone(),
        source,
    })?;
    let mut server = Server {
        child,
        port,
        log_path: opts.log_path.clone(),
        stop_grace: opts.stop_grace,
        readiness: Readiness {
            launch_to_ready: Duration::ZERO,
            load_time: None,
            listening_ts: None,
            ready_after_listening_line: None,
            attempts: 1,
        },
        port_bound: false,
        stopped: false,
    };
    let ready_at = wait_ready(
        &mut server,
        &mut follower,
        launched_at,
        opts.startup_timeout,
    )?;
    let seen = &follower.seen;
    server.readiness.launch_to_ready = ready_at - launched_at;
    server.readiness.load_time = seen.load_time();
    server.readiness.listening_ts = seen.listening_ts;
    server.readiness.ready_after_listening_line = seen
        .listening_seen_at
        .map(|t| ready_at.saturating_duration_since(t));
    Ok(server)
}

fn build_command(cmd: &LaunchCommand, log_path: &Path, port: u16) -> std::io::Result<Command> {
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = File::create(log_path)?;
    let mut command = Command::new(&cmd.bin);
    command
        .args(cmd.args_for_port(port))
        .env("LLAMA_ARG_LOG_PREFIX", "1")
        .env("LLAMA_ARG_LOG_TIMESTAMPS", "1")
        .env("LLAMA_ARG_LOG_COLORS", "off")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    process::harden(&mut command);
    if let Some(cpus) = &cmd.cpus {
        process::confine(&mut command, cpus);
    }
    Ok(command)
}

/// Polls the log every [`LOG_POLL_PERIOD`] and `/health` every [`HEALTH_POLL_PERIOD`] (and at
/// once when the "listening" line appears) until both say ready; returns that instant.
/// On an error the server is stopped (by `Drop`) before returning.
fn wait_ready(
    server: &mut Server,
    follower: &mut log::LogFollower,
    launched_at: Instant,
    timeout: Duration,
) -> Result<Instant, ServerError> {
    let mut next_health = launched_at;
    let mut healthy_at: Option<Instant> = None;
    loop {
        if let Some(exit) = server.child.exit_status() {
            let _ = follower.poll();
            if follower.seen.bind_failed {
                return Err(ServerError::PortInUse { port: server.port });
            }
            return Err(server.exited_error(exit));
        }
        let saw_listening = follower.poll().map_err(|source| ServerError::Log {
            path: server.log_path.clone(),
            source,
        })?;
        server.port_bound |= saw_listening;
        let now = Instant::now();
        if healthy_at.is_none() && (saw_listening || now >= next_health) {
            let status = net::health_status(server.port, Duration::from_millis(500));
            server.port_bound |= status.is_some();
            if status == Some(200) {
                healthy_at = Some(Instant::now());
            }
            next_health = now + HEALTH_POLL_PERIOD;
        }
        if let Some(at) = healthy_at {
            if follower.seen.listening_seen_at.is_some() {
                return Ok(Instant::now());
            }
            if at.elapsed() > LISTENING_LINE_GRACE {
                return Ok(at); // an engine that words the line differently
            }
        }
        if now.duration_since(launched_at) > timeout {
            return Err(ServerError::StartupTimeout {
                pid: server.pid(),
                after: timeout,
                log_tail: server.log_tail(LOG_TAIL_LINES),
            });
        }
        std::thread::sleep(LOG_POLL_PERIOD);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> LaunchCommand {
        LaunchCommand {
            bin: "llama-server".into(),
            args: args.iter().map(OsString::from).collect(),
            cpus: None,
        }
    }

    #[test]
    fn host_and_port_are_replaced_or_appended() {
        let engine_like = cmd(&[
            "-m", "x.gguf", "--host", "0.0.0.0", "--port", "0", "-t", "2",
        ]);
        assert_eq!(
            engine_like.args_for_port(4321),
            [
                "-m",
                "x.gguf",
                "--host",
                "127.0.0.1",
                "--port",
                "4321",
                "-t",
                "2"
            ]
        );
        assert_eq!(
            cmd(&["-m", "x.gguf"]).args_for_port(80),
            ["-m", "x.gguf", "--host", "127.0.0.1", "--port", "80"]
        );
    }

    #[test]
    fn servers_and_watches_can_move_between_threads() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<Server>();
        assert_send::<ExitWatch>();
    }

    #[test]
    fn startup_timeout_grows_with_the_model() {
        assert_eq!(startup_timeout_for(0), Duration::from_secs(30));
        assert_eq!(
            startup_timeout_for(40_000_000_000),
            Duration::from_secs(430)
        );
    }
}
