//! Executes the launches of a run: one llama-server per launch, a warm-up, the cells
//! measured on it with adaptive repetitions, and a row written (and fsynced) the moment
//! each cell ends. A failure ends the launch, never the run; Ctrl-C ends both, after the
//! current cell is recorded as interrupted.

use super::cellrow::{self, CellOutcome, Measured};
use super::guard::{self, Fit, MemoryNeed};
use super::modes;
use super::plan::{Cell, Launch};
use super::progress::Progress;
use super::resolve::ResolvedRole;
use super::workload;
use super::RunEnv;
use crate::client::{Client, CompletionRecord, CompletionRequest, Prompt};
use crate::engine::{LaunchSpec, SpecLaunch};
use crate::measure::{self, RequestRaw};
use crate::results::{RawRepetition, ResultRow, ResultWriter, Status};
use crate::server::{self, LaunchOptions, Server};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Set by Ctrl-C; checked between requests and raced against every request.
#[derive(Debug, Default, Clone)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Interrupt {
    /// Marks the run interrupted and wakes whoever waits.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// True once triggered.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        let notified = self.notify.notified();
        if !self.is_set() {
            notified.await;
        }
    }
}

/// Why a cell ended without a measurement.
#[derive(Debug)]
enum Stop {
    /// Ctrl-C.
    Interrupted,
    /// The server or a request failed; the text is the row's reason.
    Failed(String),
}

/// The baseline of a (role, workload, slots) triple: what accelerated cells compare with.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// Server-reported decode t/s of every timed request.
    pub decode_tps: Vec<f64>,
    /// Generated token ids of each slot's first timed request.
    pub tokens: Vec<Vec<u32>>,
}

/// Runs launches and collects their rows.
pub struct Executor<'a> {
    env: &'a RunEnv,
    roles: &'a [ResolvedRole],
    writer: &'a mut ResultWriter,
    progress: &'a Progress,
    interrupt: Interrupt,
    baselines: HashMap<(usize, String, u32), Baseline>,
    /// Rows written by this run, in order.
    pub rows: Vec<ResultRow>,
    /// Servers launched.
    pub launches: usize,
    /// Whether the server honours `speculative.n_max` per request (`None` until probed).
    pub per_request_spec_k: Option<bool>,
    /// Launch-to-ready and the server's own model-load time of the current launch (ms).
    startup_ms: (Option<f64>, Option<f64>),
}

impl<'a> Executor<'a> {
    /// An executor writing to `writer`.
    pub fn new(
        env: &'a RunEnv,
        roles: &'a [ResolvedRole],
        writer: &'a mut ResultWriter,
        progress: &'a Progress,
        interrupt: Interrupt,
    ) -> Self {
        Executor {
            env,
            roles,
            writer,
            progress,
            interrupt,
            baselines: HashMap::new(),
            rows: Vec::new(),
            launches: 0,
            per_request_spec_k: None,
            startup_ms: (None, None),
        }
    }

    /// Baselines measured by an earlier, interrupted run of the same file (`--resume`), so
    /// the cells measured now still get their speedup and losslessness.
    pub fn recover_baselines(&mut self, raw: &[RawRepetition]) {
        // One decode value per repetition (the mean over its slots), as when measured.
        let mut batches: Vec<(usize, String, u32, u32, Vec<RequestRaw>)> = Vec::new();
        for rep in raw.iter().filter(|r| !r.warmup && r.key.mode == "baseline") {
            let Some(role) = self.roles.iter().position(|r| r.role.name == rep.key.role) else {
                continue;
            };
            let key = (role, rep.key.workload.clone(), rep.key.parallel);
            let b = self.baselines.entry(key).or_insert_with(|| Baseline {
                decode_tps: Vec::new(),
                tokens: Vec::new(),
            });
            if rep.rep == 0 {
                b.tokens.push(rep.request.token_ids.clone());
            }
            match batches.last_mut() {
                Some(last)
                    if (last.0, &last.1, last.2, last.3)
                        == (role, &rep.key.workload, rep.key.parallel, rep.rep) =>
                {
                    last.4.push(rep.request.clone())
                }
                _ => batches.push((
                    role,
                    rep.key.workload.clone(),
                    rep.key.parallel,
                    rep.rep,
                    vec![rep.request.clone()],
                )),
            }
        }
        for (role, workload, parallel, _, requests) in batches {
            if let Some(b) = self.baselines.get_mut(&(role, workload, parallel)) {
                b.decode_tps.extend(measure::batch_decode_tps(&requests));
            }
        }
    }

    /// True once Ctrl-C was pressed.
    pub fn interrupted(&self) -> bool {
        self.interrupt.is_set()
    }

    /// Measures the cells of one launch that `done` does not hold yet.
    pub async fn run_launch(
        &mut self,
        launch: &Launch,
        done: &HashSet<crate::results::CellKey>,
    ) -> anyhow::Result<()> {
        let role = &self.roles[launch.role];
        let cells: Vec<&Cell> = launch
            .cells
            .iter()
            .filter(|c| !done.contains(&self.key(role, c)))
            .collect();
        if cells.is_empty() || self.interrupted() {
            return Ok(());
        }
        if let Fit::Skip(reason) = self.memory_fit(role, launch) {
            for cell in cells {
                self.finish(
                    role,
                    cell,
                    CellOutcome::NotMeasured(Status::Skipped, reason.clone()),
                )?;
            }
            return Ok(());
        }
        self.progress.phase(format!(
            "{}: launching {}",
            role.role.name,
            launch_label(launch)
        ));
        self.startup_ms = (None, None);
        let server = match self.launch(role, launch) {
            Ok(s) => {
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                self.startup_ms = (Some(ms(s.launch_to_ready())), s.load_time().map(ms));
                s
            }
            Err(reason) => {
                for cell in cells {
                    self.finish(
                        role,
                        cell,
                        CellOutcome::NotMeasured(Status::Failed, reason.clone()),
                    )?;
                }
                return Ok(());
            }
        };
        let result = self.measure_cells(&server, role, launch, &cells).await;
        self.progress
            .phase(format!("{}: stopping server", role.role.name));
        let _ = server.stop();
        result
    }

    async fn measure_cells(
        &mut self,
        server: &Server,
        role: &ResolvedRole,
        launch: &Launch,
        cells: &[&Cell],
    ) -> anyhow::Result<()> {
        let client = Client::new(&server.base_url()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let moe_check = launch.key.moe_experts.map(|n| moe_effective(server, n));
        if launch.key.draft && self.per_request_spec_k.is_none() {
            self.per_request_spec_k = Some(
                self.probe_per_request(server, &client, role, cells[0])
                    .await,
            );
        }
        let warmup = self.warm_up(server, &client, role, cells[0]).await;
        for (i, cell) in cells.iter().enumerate() {
            let outcome = match &warmup {
                Err(Stop::Failed(reason)) => {
                    CellOutcome::NotMeasured(Status::Failed, reason.clone())
                }
                Err(Stop::Interrupted) => {
                    CellOutcome::NotMeasured(Status::Interrupted, "interrupted (Ctrl-C)".into())
                }
                Ok(()) => {
                    self.measure_one(server, &client, role, cell, moe_check.as_ref())
                        .await
                }
            };
            let fatal = matches!(
                outcome,
                CellOutcome::NotMeasured(Status::Failed | Status::Interrupted, _)
            );
            self.finish(role, cell, outcome)?;
            if fatal {
                let status = if self.interrupted() {
                    Status::Interrupted
                } else {
                    Status::Failed
                };
                for rest in &cells[i + 1..] {
                    let why = if status == Status::Interrupted {
                        "interrupted (Ctrl-C)"
                    } else {
                        "not run: the server of this launch failed"
                    };
                    self.finish(role, rest, CellOutcome::NotMeasured(status, why.into()))?;
                }
                break;
            }
        }
        Ok(())
    }

    async fn measure_one(
        &mut self,
        server: &Server,
        client: &Client,
        role: &ResolvedRole,
        cell: &Cell,
        moe_check: Option<&Result<(), String>>,
    ) -> CellOutcome {
        if let Some(Err(why)) = moe_check {
            return CellOutcome::NotMeasured(Status::ModeNotEffective, why.clone());
        }
        match self.repetitions(server, client, role, cell).await {
            Ok(measured) => CellOutcome::Measured(Box::new(measured)),
            Err(Stop::Interrupted) => {
                CellOutcome::NotMeasured(Status::Interrupted, "interrupted (Ctrl-C)".into())
            }
            Err(Stop::Failed(reason)) => CellOutcome::NotMeasured(Status::Failed, reason),
        }
    }

    /// Timed repetitions until the adaptive rule is satisfied.
    async fn repetitions(
        &mut self,
        server: &Server,
        client: &Client,
        role: &ResolvedRole,
        cell: &Cell,
    ) -> Result<Measured, Stop> {
        let req = self.request(role, cell);
        let key = self.key(role, cell);
        let cpu_start = cpu_times(server);
        let started = Instant::now();
        let mut requests: Vec<RequestRaw> = Vec::new();
        let mut aggregate: Vec<f64> = Vec::new();
        let mut first_tokens: Vec<Vec<u32>> = Vec::new();
        // Kept as the requests arrive, so the stopping rule costs nothing between them.
        let mut decode_so_far: Vec<f64> = Vec::new();
        let mut rep = 0u32;
        loop {
            if rep > 0
                && !self
                    .env
                    .adaptive
                    .should_continue(&decode_so_far, started.elapsed())
            {
                break;
            }
            self.progress.phase(format!(
                "{} {} {} np={}: repetition {} of at most {}{}",
                role.role.name,
                cell.mode_label,
                cell.workload,
                cell.parallel,
                rep + 1,
                self.env.adaptive.max_reps,
                decode_so_far
                    .last()
                    .map_or(String::new(), |t| format!(", last {t:.1} t/s"))
            ));
            let batch_start = Instant::now();
            let records = self.batch(server, client, &req, cell.parallel).await?;
            let wall = batch_start.elapsed();
            let raws: Vec<RequestRaw> = records.iter().map(CompletionRecord::to_raw).collect();
            if rep == 0 {
                first_tokens = raws.iter().map(|r| r.token_ids.clone()).collect();
            }
            if cell.parallel > 1 {
                aggregate.extend(measure::aggregate_tps(&raws, wall));
            }
            // The slots of a batch ran together: one repetition, their mean rate.
            decode_so_far.extend(measure::batch_decode_tps(&raws));
            for (slot, raw) in raws.into_iter().enumerate() {
                let mut line = RawRepetition::new(&key, rep, false, raw);
                line.slot = slot as u32;
                line.batch_wall_ns = Some(wall.as_nanos() as u64);
                self.writer
                    .push_raw(&line)
                    .map_err(|e| Stop::Failed(format!("writing raw repetitions: {e}")))?;
                requests.push(line.request);
            }
            rep += 1;
        }
        let client_cpu_pct = cpu_share(cpu_start, cpu_times(server));
        Ok(Measured {
            metrics: measure::cell_metrics(&requests, cell.parallel as usize),
            aggregate,
            first_tokens,
            client_cpu_pct,
            prompt: req.prompt.clone(),
        })
    }

    /// `parallel` identical requests at once, raced against a server crash and Ctrl-C.
    async fn batch(
        &self,
        server: &Server,
        client: &Client,
        req: &CompletionRequest,
        parallel: u32,
    ) -> Result<Vec<CompletionRecord>, Stop> {
        if self.interrupted() {
            return Err(Stop::Interrupted);
        }
        server
            .check()
            .map_err(|e| Stop::Failed(server_failure(server, &e.to_string())))?;
        let mut watch = server.exit_watch();
        let all = futures_util::future::join_all((0..parallel).map(|_| client.complete(req)));
        tokio::select! {
            biased;
            _ = self.interrupt.wait() => Err(Stop::Interrupted),
            e = watch.exited() => Err(Stop::Failed(server_failure(server, &e.to_string()))),
            results = all => results
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Stop::Failed(server_failure(server, &format!("request failed: {}", error_chain(&e))))),
        }
    }

    /// One untimed request per launch, so the timed ones find warm caches.
    async fn warm_up(
        &mut self,
        server: &Server,
        client: &Client,
        role: &ResolvedRole,
        cell: &Cell,
    ) -> Result<(), Stop> {
        self.progress.phase(format!("{}: warm-up", role.role.name));
        let req = self.request(role, cell);
        let records = self.batch(server, client, &req, 1).await?;
        let key = self.key(role, cell);
        for rec in &records {
            let line = RawRepetition::new(&key, 0, true, rec.to_raw());
            self.writer
                .push_raw(&line)
                .map_err(|e| Stop::Failed(format!("writing raw repetitions: {e}")))?;
        }
        Ok(())
    }

    /// Does the server honour `speculative.n_max` per request? Two short requests with
    /// different draft lengths on a speculative server: equal drafted counts mean no.
    async fn probe_per_request(
        &self,
        server: &Server,
        client: &Client,
        role: &ResolvedRole,
        cell: &Cell,
    ) -> bool {
        let mut drafted = Vec::new();
        for n_max in [1u32, 8] {
            let mut req = self.request(role, cell);
            req.n_predict = req.n_predict.min(64);
            req.extra.insert("speculative.n_max".into(), n_max.into());
            req.extra.insert("speculative.n_min".into(), 0.into());
            match self.batch(server, client, &req, 1).await {
                Ok(r) => drafted.push(r[0].timings.draft_n.unwrap_or(0)),
                Err(_) => return false,
            }
        }
        let honoured = drafted[0] != drafted[1];
        self.progress.line(format!(
            "probe: drafted {} tokens with speculative.n_max=1 and {} with 8 per request: the draft \
             length is {}",
            drafted[0],
            drafted[1],
            if honoured { "honoured per request" } else { "a launch option in this build" }
        ));
        honoured
    }

    fn request(&self, role: &ResolvedRole, cell: &Cell) -> CompletionRequest {
        let prompt = match &role.model.behavior {
            Some(b) if b.has_ground_truth() => {
                Prompt::Tokens(b.cycle_prompt(workload::synthetic_prompt_tokens(cell.workload)))
            }
            _ => Prompt::Text(workload::text_prompt(cell.workload)),
        };
        let mut req = CompletionRequest::new(prompt, self.env.n_predict);
        if self.per_request_spec_k == Some(true) {
            if let Some(k) = cell.parts.spec_k {
                req.extra.insert("speculative.n_max".into(), k.into());
            }
        }
        req
    }

    fn launch(&mut self, role: &ResolvedRole, launch: &Launch) -> Result<Server, String> {
        let spec = self.launch_spec(role, launch);
        self.launches += 1;
        let log = self.env.logs_dir.join(format!(
            "launch-{:03}-{}-{}.log",
            self.launches,
            sanitize(&role.role.name),
            sanitize(&launch_label(launch))
        ));
        let bytes =
            role.model.facts.tensor_bytes + role.draft.as_ref().map_or(0, |d| d.facts.tensor_bytes);
        let opts = LaunchOptions::new(&log, server::startup_timeout_for(bytes));
        Server::launch_engine(&self.env.engine, &spec, &opts)
            .map_err(|e| format!("launch failed: {e}"))
    }

    fn launch_spec(&self, role: &ResolvedRole, launch: &Launch) -> LaunchSpec {
        let mut spec = LaunchSpec::new(&role.model.path);
        spec.threads = self.env.threads;
        spec.parallel = launch.key.parallel;
        // llama-server splits -c over its slots; give every slot the role's context.
        spec.ctx = role.role.ctx * launch.key.parallel;
        let parts = super::plan::ModeParts {
            spec_k: launch
                .key
                .spec_k
                .or(if launch.key.draft { Some(16) } else { None }),
            lookup: launch.key.lookup.clone(),
            moe_experts: launch.key.moe_experts,
        };
        let types = modes::spec_types(&parts);
        if launch.key.draft {
            spec.draft = role.draft.as_ref().map(|d| d.path.clone());
        }
        if !types.is_empty() {
            spec.spec = Some(SpecLaunch {
                types,
                draft_n_max: if launch.key.draft { parts.spec_k } else { None },
            });
        }
        if let Some(n) = launch.key.moe_experts {
            spec.moe_experts_used =
                Some((role.model.facts.architecture.clone().unwrap_or_default(), n));
            // The log shows n_expert_used only at debug verbosity: the evidence that the
            // override took effect.
            spec.verbose = true;
        }
        spec
    }

    fn memory_fit(&self, role: &ResolvedRole, launch: &Launch) -> Fit {
        let facts = &role.model.facts;
        let slots_ctx = u64::from(role.role.ctx) * u64::from(launch.key.parallel);
        let kv = facts.kv_bytes_per_token(crate::gguf::GgmlType::F16) * slots_ctx;
        let draft = role.draft.as_ref().filter(|_| launch.key.draft);
        let draft_kv = draft.map_or(0, |d| {
            d.facts.kv_bytes_per_token(crate::gguf::GgmlType::F16) * slots_ctx
        });
        let need = MemoryNeed {
            model_bytes: facts.tensor_bytes,
            draft_bytes: draft.map_or(0, |d| d.facts.tensor_bytes),
            kv_bytes: kv + draft_kv,
        };
        match crate::hardware::memory::read_meminfo() {
            Ok(mem) => guard::check(&need, mem.available_bytes, mem.total_bytes),
            Err(e) => Fit::Skip(format!(
                "cannot read /proc/meminfo for the memory guard: {e}"
            )),
        }
    }

    /// Writes the row of a finished cell and remembers baselines.
    fn finish(
        &mut self,
        role: &ResolvedRole,
        cell: &Cell,
        outcome: CellOutcome,
    ) -> anyhow::Result<()> {
        let baseline_key = (cell.role, cell.workload.to_string(), cell.parallel);
        let baseline = self.baselines.get(&baseline_key);
        let mut row = cellrow::build(
            self.env,
            role,
            cell,
            &self.key(role, cell),
            &outcome,
            baseline,
        );
        (row.launch_to_ready_ms, row.server_load_ms) = self.startup_ms;
        if cell.parts.is_baseline() {
            if let CellOutcome::Measured(m) = &outcome {
                self.baselines.insert(
                    baseline_key,
                    Baseline {
                        decode_tps: m.metrics.decode_tps.clone(),
                        tokens: m.first_tokens.clone(),
                    },
                );
            }
        }
        self.writer
            .push(&row)
            .map_err(|e| anyhow::anyhow!("writing the results: {e}"))?;
        self.progress.cell_done(cellrow::one_line(&row));
        self.rows.push(row);
        Ok(())
    }

    fn key(&self, role: &ResolvedRole, cell: &Cell) -> crate::results::CellKey {
        cellrow::key(self.env, role, cell)
    }
}

/// `spec:16+lookup np=2`-style label of a launch, for logs and progress.
pub fn launch_label(launch: &Launch) -> String {
    let mut parts = Vec::new();
    if launch.key.draft {
        parts.push(
            launch
                .key
                .spec_k
                .map_or("spec".to_string(), |k| format!("spec:{k}")),
        );
    }
    if let Some(l) = &launch.key.lookup {
        parts.push(format!("lookup:{l}"));
    }
    if let Some(n) = launch.key.moe_experts {
        parts.push(format!("moe:{n}"));
    }
    if parts.is_empty() {
        parts.push("baseline".into());
    }
    format!("{} np={}", parts.join("+"), launch.key.parallel)
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The server log must report the overridden expert count (`print_info: n_expert_used = N`).
fn moe_effective(server: &Server, n: u32) -> Result<(), String> {
    let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
    let seen: Vec<u32> = log
        .lines()
        .filter_map(|l| l.split("n_expert_used").nth(1))
        .filter_map(|rest| {
            rest.trim_start_matches([' ', '='])
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    match seen.last() {
        Some(&used) if used == n => Ok(()),
        Some(&used) => Err(format!("the server used {used} experts per token, not {n}")),
        None => Err(format!(
            "the server log never reported n_expert_used (expected {n})"
        )),
    }
}

/// An error with its sources, `outer: inner: innermost`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

fn server_failure(server: &Server, what: &str) -> String {
    format!(
        "{what}\n--- tail of {} ---\n{}",
        server.log_path().display(),
        server.log_tail(20)
    )
}

type CpuTimes = Option<(Duration, Duration)>;

fn cpu_times(server: &Server) -> CpuTimes {
    Some((
        server::cpu::self_cpu_time().ok()?,
        server::cpu::process_cpu_time(server.pid()).ok()?,
    ))
}

/// Harness CPU time as a percentage of the server's over the same interval.
fn cpu_share(start: CpuTimes, end: CpuTimes) -> Option<f64> {
    let ((h0, s0), (h1, s1)) = (start?, end?);
    let server = s1.checked_sub(s0)?.as_secs_f64();
    (server > 0.0).then(|| h1.saturating_sub(h0).as_secs_f64() / server * 100.0)
}
