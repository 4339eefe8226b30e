//! `bench run --server-url URL`: measures a llama-server that is already running, through
//! the same run loop as a launched one. [`RemoteBackend`] launches nothing and never stops
//! the server: its "launch" is a handle to the URL, and it refuses (cells `skipped`, with
//! the reason) every launch configuration the running server was not started with: another
//! model, more slots than it has, speculation it lacks or has, expert reduction. What it is
//! is read once, before any cell, from `/health`, `/props` and `/slots` ([`connect`]); its
//! model's facts from `-m FILE`, else from the file `/props` names when it is readable here.
//!
//! Losslessness compares each accelerated cell with the baseline requests sent to the same
//! server (same prompt, greedy), as for launched servers; there is no pairing (one server)
//! and no memory guard (nothing is launched).

use super::backend::{Backend, CpuTimes, ServerHandle};
use super::{RunArgs, RunOutcome, RunPlan, RunSettings, Sweep};
use crate::client::{Client, CompletionRecord, CompletionRequest};
use crate::engine::{LaunchSpec, ServerArgs};
use crate::profile::{self, Mode, Profile, DEFAULT_SPEC_K};
use crate::results::{ResultRow, SCHEMA_VERSION};
use crate::server::remote::{self, ServerProps, ServerUrl, SlotState, Speculation};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest wait for `/health`, `/props` and `/slots`.
const INFO_TIMEOUT: Duration = Duration::from_secs(10);

/// The thread count rows record for a running server: not known (`/props` does not say).
pub const UNKNOWN_THREADS: u32 = 0;

/// A running server as read before the run.
#[derive(Debug, Clone)]
pub struct RemoteServerInfo {
    /// Its checked URL.
    pub url: ServerUrl,
    /// What `/props` says.
    pub props: ServerProps,
    /// What `/slots` says (`None` when the server was started with `--no-slots`).
    pub slots: Option<Vec<SlotState>>,
}

impl RemoteServerInfo {
    /// How it speculates (`None`: not known, without `/slots`).
    pub fn speculation(&self) -> Option<Speculation> {
        self.slots.as_deref().map(Speculation::of)
    }
}

/// Checks `/health`, then reads `/props` and `/slots`. Errors name the URL.
pub async fn connect(client: &Client, url: &ServerUrl) -> anyhow::Result<RemoteServerInfo> {
    let at = &url.base;
    let health = client.get_json("/health", INFO_TIMEOUT).await;
    match health {
        Ok(_) => {}
        Err(crate::client::ClientError::Status { status: 503, .. }) => anyhow::bail!(
            "the server at {at} is still loading its model (/health answered 503); try again when it is ready"
        ),
        Err(e) => {
            let cause = anyhow::Error::new(e).root_cause().to_string();
            anyhow::bail!("no llama-server answers at {at} (GET /health: {cause}); is it running?")
        }
    }
    let props = client
        .get_json("/props", INFO_TIMEOUT)
        .await
        .with_context(|| format!("reading {at}/props"))?;
    let props = remote::parse_props(&props).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
    let mut slots = read_slots(client, at).await?;
    let speculation = slots.as_deref().map(Speculation::of);
    if speculation.is_some_and(|s| s.configured && s.types.is_empty()) {
        // A slot lists the server's speculative types only once it has served a request.
        let one = CompletionRequest::new(crate::client::Prompt::Text("Hello".into()), 1);
        client
            .complete(&one)
            .await
            .with_context(|| format!("a one-token request to {at}"))?;
        slots = read_slots(client, at).await?;
    }
    Ok(RemoteServerInfo {
        url: url.clone(),
        props,
        slots,
    })
}

/// `/slots`, or `None` when the server was started with `--no-slots` (it answers 501).
async fn read_slots(client: &Client, at: &str) -> anyhow::Result<Option<Vec<SlotState>>> {
    match client.get_json("/slots", INFO_TIMEOUT).await {
        Ok(v) => Ok(Some(
            remote::parse_slots(&v).map_err(|e| anyhow::anyhow!("{at}: {e}"))?,
        )),
        Err(crate::client::ClientError::Status { .. }) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {at}/slots")),
    }
}

impl RemoteServerInfo {
    /// One paragraph for stderr before the run: what the server is and what the run will do.
    pub fn describe(&self) -> String {
        let p = &self.props;
        let mut text = format!(
            "server at {}: {}, model {}, {} slot(s) of {} tokens, speculation: {}\n\
             nothing is launched and the server is never stopped; memory guard: off (the server \
             already holds its memory)",
            self.url.base,
            p.engine_version(),
            if p.model_path.is_empty() {
                "(not named in /props)"
            } else {
                &p.model_path
            },
            p.total_slots,
            p.slot_ctx,
            self.speculation()
                .map_or_else(|| "not known".to_string(), |s| s.describe())
        );
        if let Some(busy) = self.busy_slots() {
            text.push_str(&format!(
                "\nwarning: slot(s) {busy} of the server are working on another client's request; \
                 that work shares the machine with every measurement"
            ));
        }
        if self.slots.is_none() {
            text.push_str(
                "\nwarning: the server has no /slots endpoint (--no-slots), so whether it speculates \
                 is not known: a baseline on a speculating server would be measured as one",
            );
        }
        text
    }

    /// The slots busy now, `0, 2`, when any is.
    fn busy_slots(&self) -> Option<String> {
        let busy: Vec<String> = self
            .slots
            .as_deref()?
            .iter()
            .filter(|s| s.is_processing)
            .map(|s| s.id.to_string())
            .collect();
        (!busy.is_empty()).then(|| busy.join(", "))
    }

    /// The modes measured when `--modes` is not given: `baseline` and the server's own
    /// acceleration, when `/props` says which it is.
    pub fn default_modes(&self) -> Vec<Mode> {
        let own = self
            .speculation()
            .and_then(|s| server_mode(&s))
            .filter(|m| !m.is_baseline());
        std::iter::once(Mode::Baseline).chain(own).collect()
    }
}

/// The mode the server runs every request with, as far as its slots tell: `baseline`
/// without speculation; `spec:K` for a draft model (K = [`DEFAULT_SPEC_K`], since no
/// endpoint tells the server's draft length), `lookup:TYPE` for an n-gram drafter; `None`
/// when it speculates and the type is not known.
pub fn server_mode(speculation: &Speculation) -> Option<Mode> {
    if !speculation.configured {
        return Some(Mode::Baseline);
    }
    let parts: Vec<Mode> = speculation
        .types
        .iter()
        .map(|t| match t.starts_with("draft") {
            true => Mode::Spec { k: DEFAULT_SPEC_K },
            false => Mode::Lookup {
                spec_type: Some(t.clone()),
            },
        })
        .collect();
    match parts.len() {
        0 => None,
        1 => parts.into_iter().next(),
        _ => Some(Mode::Combo(parts)),
    }
}

/// Whether the running server can serve `spec`: the launch configuration the run loop
/// would have started. `served` is the local file that stands for the server's model.
pub fn serves(info: &RemoteServerInfo, served: &Path, spec: &LaunchSpec) -> Result<(), String> {
    let (p, at) = (&info.props, &info.url.base);
    if !same_file(&spec.model, served) {
        return Err(format!(
            "the server at {at} serves {}, not {}: only its own model is measured",
            file_name(served),
            file_name(&spec.model)
        ));
    }
    if spec.parallel > p.total_slots {
        return Err(format!(
            "{} concurrent requests need {} slots; the server at {at} has {} (its -np)",
            spec.parallel, spec.parallel, p.total_slots
        ));
    }
    let slot_ctx = spec.ctx / spec.parallel.max(1);
    if slot_ctx > p.slot_ctx {
        return Err(format!(
            "a context of {slot_ctx} tokens per slot is more than the {} of the server at {at}",
            p.slot_ctx
        ));
    }
    if spec.moe_experts_used.is_some() {
        return Err(format!(
            "expert reduction is a launch option (--override-kv ...expert_used_count), and /props of \
             the server at {at} does not say whether it was given: not measurable on a running server"
        ));
    }
    match info.speculation() {
        Some(s) => speculation_served(&s, at, spec),
        None => Ok(()),
    }
}

/// A speculative launch needs a server that speculates the same way; a baseline one needs a
/// server that does not speculate at all (in the pinned build speculation cannot be turned
/// off per request).
fn speculation_served(s: &Speculation, at: &str, spec: &LaunchSpec) -> Result<(), String> {
    let Some(wanted) = &spec.spec else {
        return match s.configured {
            false => Ok(()),
            true => Err(format!(
                "the server at {at} speculates on every request ({}), so a baseline needs another \
                 server, started without speculation",
                s.describe()
            )),
        };
    };
    if !s.configured {
        return Err(format!(
            "speculation is a launch option (--spec-type {}{}), and the server at {at} was started \
             without it",
            wanted.types.join(","),
            if spec.draft.is_some() { " -md DRAFT" } else { "" }
        ));
    }
    let mut want = wanted.types.clone();
    let mut have = s.types.clone();
    want.sort();
    have.sort();
    if !have.is_empty() && want != have {
        return Err(format!(
            "the server at {at} speculates with {}, not {}",
            have.join(","),
            want.join(",")
        ));
    }
    Ok(())
}

/// The same file: the same canonical path when both exist here, else the same name.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.file_name() == b.file_name(),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The backend of `--server-url`: one running server, never launched, never stopped.
pub struct RemoteBackend {
    /// The server as read before the run.
    pub info: RemoteServerInfo,
    /// The local file standing for its model (`-m`, else its `model_path`).
    pub served: PathBuf,
}

impl Backend for RemoteBackend {
    type Server = RemoteServer;

    fn memory(&self) -> Result<(u64, u64), String> {
        Err("the memory guard does not apply to a running server".into())
    }

    fn guards_memory(&self) -> bool {
        false
    }

    fn refuses(&self, spec: &LaunchSpec) -> Option<String> {
        serves(&self.info, &self.served, spec).err()
    }

    /// A handle to the running server, once `/health` answers 200 (it may have stopped
    /// since the run began).
    fn launch(&mut self, _: &LaunchSpec, _: &str, _: u64) -> Result<RemoteServer, String> {
        let url = &self.info.url;
        let name = url.host.trim_start_matches('[').trim_end_matches(']');
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(name, url.port))
            .ok()
            .and_then(|mut a| a.next());
        let healthy = addr.and_then(|a| {
            crate::server::net::health_status_at(a, &url.host, &url.prefix, INFO_TIMEOUT)
        });
        if healthy != Some(200) {
            return Err(format!(
                "the server at {} does not answer /health with 200 (got {})",
                url.base,
                healthy.map_or_else(|| "no answer".to_string(), |s| s.to_string())
            ));
        }
        let client = Client::new(&url.base).map_err(|e| e.to_string())?;
        Ok(RemoteServer {
            client,
            url: url.base.clone(),
        })
    }
}

/// A handle to the running server: requests only.
pub struct RemoteServer {
    client: Client,
    url: String,
}

impl ServerHandle for RemoteServer {
    fn startup_ms(&self) -> (Option<f64>, Option<f64>) {
        (None, None)
    }

    async fn batch(
        &self,
        req: &CompletionRequest,
        parallel: u32,
    ) -> Result<Vec<CompletionRecord>, String> {
        let all = futures_util::future::join_all((0..parallel).map(|_| self.client.complete(req)));
        all.await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                format!(
                    "request to the server at {} failed: {}",
                    self.url,
                    super::backend::error_chain(&e)
                )
            })
    }

    /// Its log is on its own machine, not here.
    fn log_text(&self) -> String {
        String::new()
    }

    fn cpu_times(&self) -> CpuTimes {
        None
    }

    /// Leaves the server running: tpsbench did not start it.
    fn stop(self) {}
}

/// Everything a `--server-url` run needs, read and checked before the first request.
pub struct RemoteRun {
    /// The server.
    pub info: RemoteServerInfo,
    /// The profile (`-m` and `--modes`, or `--profile`) with every role's context set to
    /// the server's slot context.
    pub profile: Profile,
    /// The local file standing for the server's model.
    pub served: PathBuf,
}

/// Parses `--server-url`, reads the server, and builds the profile of the run.
pub fn prepare(args: &RunArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<RemoteRun> {
    let text = args
        .server_url
        .as_deref()
        .context("--server-url is missing")?;
    let url = ServerUrl::parse(text, args.allow_remote_host)?;
    let client = Client::new(&url.base)?;
    let info = runtime
        .block_on(connect(&client, &url))
        .map_err(crate::environment)?;
    eprintln!("{}", info.describe());
    let served = served_model(args, &info.props)?;
    let profile = remote_profile(args, &info, &served)?;
    Ok(RemoteRun {
        info,
        profile,
        served,
    })
}

/// The local file that stands for the server's model: `-m FILE` (a warning when its name
/// differs from the server's), else the file `/props` names, when it can be read here.
fn served_model(args: &RunArgs, props: &ServerProps) -> anyhow::Result<PathBuf> {
    if args.model.len() > 1 {
        anyhow::bail!(
            "--server-url measures one server, which serves one model: give at most one -m"
        );
    }
    if let Some(m) = args.model.first() {
        let theirs = props.model_file_name();
        if !theirs.is_empty() && file_name(m) != theirs {
            eprintln!(
                "warning: -m {} is named differently from the server's model {}; its facts describe \
                 the rows, so make sure it is the same file",
                m.display(),
                props.model_path
            );
        }
        return Ok(std::path::absolute(m).unwrap_or_else(|_| m.clone()));
    }
    let path = PathBuf::from(&props.model_path);
    if props.model_path.is_empty() || !path.is_file() {
        anyhow::bail!(
            "the server's model {} cannot be read here; give -m FILE (the same GGUF) so that its \
             quant, parameters and shape can be recorded",
            if props.model_path.is_empty() {
                "(not named in /props)"
            } else {
                &props.model_path
            }
        );
    }
    Ok(path)
}

/// The run's profile: `--profile`, or one built from the model file (and `--draft`) with
/// `--modes` or the server's own modes; every role's context is the server's slot context.
fn remote_profile(
    args: &RunArgs,
    info: &RemoteServerInfo,
    served: &Path,
) -> anyhow::Result<Profile> {
    let slot_ctx = info.props.slot_ctx;
    if let Some(ctx) = args.ctx.filter(|&c| c != slot_ctx) {
        anyhow::bail!(
            "--ctx {ctx}: the server at {} gives each slot {slot_ctx} tokens, fixed at its launch; \
             leave --ctx out",
            info.url.base
        );
    }
    let mut profile = match &args.profile {
        Some(name) => profile::load(name)?,
        None => profile::from_models(&profile::ModelsSpec {
            models: vec![served.to_path_buf()],
            draft: args.draft.clone(),
            modes: Some(args.modes.clone().unwrap_or_else(|| info.default_modes())),
            ctx: Some(slot_ctx),
        })?,
    };
    for role in &mut profile.roles {
        if role.ctx != slot_ctx {
            eprintln!(
                "note: role `{}`: context {} per slot in the profile; the server's slots hold {slot_ctx}, \
                 which the rows record",
                role.name, role.ctx
            );
            role.ctx = slot_ctx;
        }
    }
    let spec_k = profile
        .roles
        .iter()
        .flat_map(|r| &r.modes)
        .any(|m| m.spec_k().is_some());
    if spec_k {
        eprintln!(
            "note: no endpoint of llama-server tells its draft length (--spec-draft-n-max): a spec:K \
             row records the K given here, not one read from the server"
        );
    }
    let engine = &profile.engine;
    if !engine.threads.is_empty() || !engine.args.words().is_empty() {
        eprintln!(
            "note: the profile's [engine] threads and args are launch options; the running server \
             keeps its own (rows record threads as {UNKNOWN_THREADS}: not known)"
        );
    }
    Ok(profile)
}

/// The sweeps of a `--server-url` run: the depths only (threads and server arguments were
/// fixed when the server was launched).
pub fn sweep(args: &RunArgs, profile: &Profile) -> anyhow::Result<Sweep> {
    let depths = args.depth.clone().unwrap_or(profile.run.depths.clone());
    if let Some(problem) = profile::sweep_problem("--depth", &depths, 0) {
        anyhow::bail!(problem);
    }
    Ok(Sweep {
        threads: vec![UNKNOWN_THREADS],
        depths,
        server_args: ServerArgs::default(),
    })
}

/// Fills the engine columns from what the server says: its build (`build_info`), and
/// `unknown` / `remote` where a local engine would have its hashes and variant.
pub fn stamp_engine(row: &mut ResultRow, info: &RemoteServerInfo) {
    row.server_url = info.url.base.clone();
    row.engine_version = info.props.engine_version();
    row.engine_package_version = String::new();
    row.engine_server_sha256 = "unknown".into();
    row.engine_system_info = String::new();
    row.engine_sha256 = "unknown".into();
    row.engine_variant = "remote".into();
    row.engine_self_test = "not run (a running server)".into();
}

/// A row with every column fixed for the run filled: the machine (this one, when the server
/// is on loopback; only the host's name otherwise), the server, the harness, the profile.
pub fn stamp(
    info: &RemoteServerInfo,
    hardware: Option<&crate::hardware::Hardware>,
    host: &str,
    profile: &Profile,
) -> ResultRow {
    let mut row = ResultRow {
        schema_version: SCHEMA_VERSION,
        ..ResultRow::default()
    };
    match hardware {
        Some(hw) => {
            row.host = host.to_string();
            super::stamp_machine(&mut row, hw);
        }
        None => row.host = info.url.host.clone(),
    }
    stamp_engine(&mut row, info);
    super::stamp_harness(&mut row, profile);
    row
}

/// Runs `bench run --server-url URL` end to end.
pub fn run(args: &RunArgs) -> anyhow::Result<RunOutcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let remote = prepare(args, &runtime)?;
    drop(runtime);
    let profile = &remote.profile;
    let expectations = profile.load_expectations()?;
    let selected = super::resolve::select_roles(profile, args.roles.as_deref())?;
    let roles = super::resolve::resolve_roles(profile, &selected, &super::resolve_options(args))?;
    let n_predict = args.n_predict.unwrap_or(profile.run.n_predict);
    let sweep = sweep(args, profile)?;
    super::check_depths(
        &roles,
        &sweep.depths,
        n_predict,
        &super::workloads(args, profile),
    )?;
    let host = super::host_name();
    // The machine columns (and the roofline) describe the server's machine only when it is
    // this one.
    let hardware = match remote.info.url.loopback {
        true => Some(super::assess_hardware(args)?),
        false => None,
    };
    let mut writer = super::open_writer(args, profile, &host)?;
    let settings = RunSettings {
        server_args: ServerArgs::default(),
        n_predict,
        adaptive: super::adaptive(args, profile),
        pair: false,
        expectations,
        stamp: stamp(&remote.info, hardware.as_ref(), &host, profile),
    };
    let backend = RemoteBackend {
        info: remote.info.clone(),
        served: remote.served.clone(),
    };
    let plan = RunPlan {
        profile,
        sweep: &sweep,
    };
    let (outcome, _) = super::execute(args, &plan, &roles, &mut writer, &settings, backend, None)?;
    Ok(outcome)
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
