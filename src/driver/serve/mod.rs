//! Serving under load (`bench run --rate`, `--concurrency`, `--find-max-rate`): instead of
//! repeated batches, every launch serves a stream of requests from the load generator
//! ([`crate::driver::load`]), one phase per load point, and each phase is one row. The
//! launch is the run loop's (the same launch settings, memory guard and backend, so a
//! running server under `--server-url` is served the same way); what differs is what a cell
//! is: a load point on a server, not a repetition count.
//!
//! A rate sweep runs ascending and stops once a phase shows the server over-saturated (its
//! queueing delay grew through the phase), as guidellm does: the higher rates would only
//! queue longer. `--find-max-rate` then searches the highest rate whose goodput share holds.

pub mod args;
pub(super) mod row;
pub mod table;

use super::guard::{self, Fit};
use super::interrupt::Interrupt;
use super::launch;
use super::load::{self, LoadSpec, MaxRateSearch, Mix, MixEntry, Pattern, PhaseRecord};
use super::plan::LaunchKey;
use super::progress::Progress;
use super::quiet;
use super::resolve::ResolvedRole;
use super::run_loop::RunOutcome;
use super::settings::{RunPlan, RunSettings};
use super::workload::{self, Workload};
use crate::engine::backend::{Backend, ServerHandle};
use crate::engine::request::CompletionRequest;
use crate::hardware::foreign::Snapshot;
use crate::results::{ResultRow, ResultWriter, Status};
use anyhow::Context;
pub use args::{LoadArgs, LoadPlan};

/// One server of a serving run: a role's mode at a thread count and slot count, and the
/// load it is served under.
struct Launch<'a> {
    role: &'a ResolvedRole,
    key: LaunchKey,
    plan: LoadPlan,
}

/// What the serving path keeps while it runs.
struct Serving<'a, B: Backend> {
    backend: B,
    settings: &'a RunSettings,
    workloads: &'a [Workload],
    writer: &'a mut ResultWriter,
    progress: Progress,
    interrupt: Interrupt,
    rows: Vec<ResultRow>,
    launches: usize,
}

/// Whether a run serves under load: the command line asks for it, or a role of the
/// profile has a `load`.
pub fn is_serving(run: &RunPlan, roles: &[ResolvedRole]) -> bool {
    run.load.is_some() || roles.iter().any(|r| r.role.load.is_some())
}

/// Serves every role's modes under its load points (the command line's, else the role's
/// `load`); the CSV is complete when this returns.
pub fn serve<B: Backend>(
    run: &RunPlan,
    roles: &[ResolvedRole],
    writer: &mut ResultWriter,
    settings: &RunSettings,
    backend: B,
) -> anyhow::Result<RunOutcome> {
    let launches = plan_launches(roles, run)?;
    let cells = launches.iter().map(|l| cells_of(&l.plan)).sum();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let csv = writer.csv_path().to_path_buf();
    let mut serving = Serving {
        backend,
        settings,
        workloads: run.workloads,
        writer,
        progress: Progress::new(cells, run.quiet),
        interrupt: Interrupt::default(),
        rows: Vec::new(),
        launches: 0,
    };
    runtime.block_on(async {
        let watcher = super::interrupt::spawn_ctrl_c(serving.interrupt.clone());
        let result = serving.run_all(&launches).await;
        watcher.abort();
        result
    })?;
    serving.progress.finish();
    Ok(RunOutcome {
        csv,
        cells: serving.rows.len(),
        rows: serving.rows,
        launches: serving.launches,
        interrupted: serving.interrupt.is_set(),
    })
}

/// The cells a launch serves at most: its points, and the search's phases.
fn cells_of(plan: &LoadPlan) -> usize {
    let search = plan
        .find_max_rate
        .map_or(0, |_| args::MAX_SEARCH_STEPS as usize);
    plan.points.len() + search
}

/// `x` to three significant digits (0.6879 -> 0.688, 12.34 -> 12.3).
fn round_to_3_digits(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(2 - x.log10().floor() as i32);
    (x * scale).round() / scale
}

/// One launch per role, mode and thread count; its slots are the role's most, or the most
/// clients a closed-loop point sends at once (so that `--concurrency C` is served by C
/// slots, as a cell of C parallel requests is). A role without a load in a serving run is
/// an error before anything starts.
fn plan_launches<'a>(roles: &'a [ResolvedRole], run: &RunPlan) -> anyhow::Result<Vec<Launch<'a>>> {
    let mut out = Vec::new();
    for role in roles {
        let plan = match (run.load, &role.role.load) {
            (Some(plan), _) => plan.clone(),
            (None, Some(load)) => LoadPlan::from_role(load),
            (None, None) => anyhow::bail!(
                "role `{}` has no `load` while others of the profile have one: give it one, leave \
                 it out with --roles, or serve every role with --rate / --concurrency",
                role.role.name
            ),
        };
        let most_clients = plan.most_clients();
        let slots = role
            .role
            .parallel
            .iter()
            .copied()
            .max()
            .unwrap_or(1)
            .max(most_clients);
        for mode in role.role.expanded_modes() {
            for &threads in &run.sweep.threads {
                let key = LaunchKey::for_cell(&mode, slots, false).at_threads(threads);
                out.push(Launch {
                    role,
                    key,
                    plan: plan.clone(),
                });
            }
        }
    }
    Ok(out)
}

impl<B: Backend> Serving<'_, B> {
    async fn run_all(&mut self, launches: &[Launch<'_>]) -> anyhow::Result<()> {
        for launch in launches {
            if self.interrupt.is_set() {
                break;
            }
            self.run_launch(launch).await?;
        }
        Ok(())
    }

    /// Starts the launch's server (or records why it cannot), serves every load point on
    /// it, and stops it.
    async fn run_launch(&mut self, launch: &Launch<'_>) -> anyhow::Result<()> {
        let mix = self.mix(launch.role, &launch.plan);
        let server = match self.start(launch) {
            Ok(server) => server,
            Err((status, reason)) => return self.not_served(launch, &mix, status, &reason),
        };
        // One untimed request first: the server's first batch pays for its lazy set-up.
        let warm = server.request(&mix.entries[0].request).await;
        let result = match warm {
            Ok(_) => self.serve_points(&server, launch, &mix).await,
            Err(reason) => self.not_served(launch, &mix, Status::Failed, &reason),
        };
        server.stop();
        result
    }

    /// Starts the server of `launch`, after the memory guard; the status and reason of the
    /// rows when it cannot.
    fn start(&mut self, launch: &Launch<'_>) -> Result<B::Server, (Status, String)> {
        let role = launch.role;
        if let Some(why) = role.skip.clone() {
            return Err((Status::Skipped, why));
        }
        let spec = launch::launch_spec(role, &launch.key, &self.settings.server_args);
        if let Some(why) = self.backend.refuses(&spec) {
            return Err((Status::Skipped, why));
        }
        if self.backend.guards_memory() {
            let need = launch::memory_need(role, &launch.key);
            let fit = match self.backend.memory() {
                Ok((available, total)) => guard::check(&need, available, total),
                Err(reason) => Fit::Skip(reason),
            };
            if let Fit::Skip(why) = fit {
                return Err((Status::Skipped, why));
            }
        }
        self.launches += 1;
        self.progress.phase(format!(
            "{}: launching {}",
            role.role.name,
            launch.key.label()
        ));
        let log_name = launch::log_name(self.launches, &role.role.name, &launch.key);
        let bytes =
            role.model.facts.tensor_bytes + role.draft.as_ref().map_or(0, |d| d.facts.tensor_bytes);
        self.backend
            .launch(&spec, &log_name, bytes)
            .map_err(|why| (Status::Failed, why))
    }

    /// The plan's points in order, stopping after an over-saturated rate; then the search.
    async fn serve_points(
        &mut self,
        server: &B::Server,
        launch: &Launch<'_>,
        mix: &Mix,
    ) -> anyhow::Result<()> {
        for pattern in &launch.plan.points {
            let summary = self.serve_point(server, launch, mix, pattern, None).await?;
            if self.interrupt.is_set() {
                return Ok(());
            }
            if summary.saturated && matches!(pattern, Pattern::Rate { .. }) {
                self.progress.line(format!(
                    "{}: over-saturated at {pattern} (queueing delay grew through the phase): higher rates not served",
                    launch.role.role.name
                ));
                break;
            }
        }
        match launch.plan.find_max_rate {
            Some(target) => self.search(server, launch, mix, target).await,
            None => Ok(()),
        }
    }

    /// `--find-max-rate`: phases at the rates the search asks for, from the rate one
    /// request at a time would sustain, until it has its bracket.
    async fn search(
        &mut self,
        server: &B::Server,
        launch: &Launch<'_>,
        mix: &Mix,
        target: f64,
    ) -> anyhow::Result<()> {
        let start = self.start_rate(server, mix).await;
        let mut search = MaxRateSearch::new(target, start, args::MAX_SEARCH_STEPS);
        while let Some(asked) = search.next_rate() {
            // Three significant digits: the rate is part of the row's key and its label.
            let rps = round_to_3_digits(asked);
            let pattern = Pattern::Rate {
                rps,
                burstiness: 1.0,
            };
            let summary = self
                .serve_point(server, launch, mix, &pattern, Some(&search))
                .await?;
            if self.interrupt.is_set() {
                return Ok(());
            }
            search.record(rps, &summary);
        }
        let found = search.result();
        self.progress.line(row::describe_max_rate(
            &launch.role.role.name,
            target,
            found.as_ref(),
        ));
        row::mark_max_rate(&mut self.rows, found.as_ref());
        Ok(())
    }

    /// The rate one request at a time sustains: a second request, timed.
    async fn start_rate(&self, server: &B::Server, mix: &Mix) -> f64 {
        let t0 = std::time::Instant::now();
        let ok = server.request(&mix.entries[0].request).await.is_ok();
        let secs = t0.elapsed().as_secs_f64();
        match ok && secs > 0.0 {
            true => 1.0 / secs,
            false => 1.0,
        }
    }

    /// One phase at `pattern`: sent, summarized, its row and raw lines written at once.
    async fn serve_point(
        &mut self,
        server: &B::Server,
        launch: &Launch<'_>,
        mix: &Mix,
        pattern: &Pattern,
        search: Option<&MaxRateSearch>,
    ) -> anyhow::Result<load::LoadSummary> {
        let plan = &launch.plan;
        let spec = LoadSpec {
            pattern: *pattern,
            bounds: plan.bounds,
            seed: plan.seed,
        };
        let what = if search.is_some() {
            "searching"
        } else {
            "serving"
        };
        let label = format!("{}: {what} {pattern}", launch.role.role.name);
        let pids: Vec<u32> = server.pid().into_iter().collect();
        let rule = self.settings.noise.as_ref();
        quiet::until_quiet(rule, &pids, &self.interrupt, &self.progress, &label).await;
        self.progress.phase(label);
        let start = rule.and_then(|_| Snapshot::take(&pids).ok());
        let record: PhaseRecord = load::run_phase(server, &spec, mix, &self.interrupt).await;
        let foreign = start.and_then(|s| s.until(&Snapshot::take(&pids).ok()?));
        let summary = load::summarize(&record, &plan.slo);
        let key = row::key(self.settings, launch.role, &launch.key, mix, pattern);
        let mut built = row::build(self.settings, launch.role, &key, &record, &summary, plan);
        quiet::judge(&mut built, foreign.as_ref(), rule);
        for raw in row::raw_lines(&key, &record) {
            self.writer.push_raw(&raw)?;
        }
        self.writer.push(&built)?;
        self.progress.cell_done(table::line(&built));
        self.rows.push(built);
        Ok(summary)
    }

    /// A row per load point that was not served, with the reason.
    fn not_served(
        &mut self,
        launch: &Launch<'_>,
        mix: &Mix,
        status: Status,
        reason: &str,
    ) -> anyhow::Result<()> {
        for pattern in &launch.plan.points {
            let key = row::key(self.settings, launch.role, &launch.key, mix, pattern);
            let mut built = row::base(self.settings, launch.role, &key, status);
            built.reason = reason.to_string();
            self.writer.push(&built)?;
            self.progress.cell_done(table::line(&built));
            self.rows.push(built);
        }
        Ok(())
    }

    /// The request mix of a role under `plan`.
    fn mix(&self, role: &ResolvedRole, plan: &LoadPlan) -> Mix {
        request_mix(role, plan, self.workloads, self.settings.n_predict)
    }
}

/// The request mix of a role: `--mix`'s workloads and weights, else `workloads` equally
/// weighted; each workload's prompt built offline as the run's cells build theirs, with
/// `n_predict` tokens out unless the plan draws output lengths.
pub(super) fn request_mix(
    role: &ResolvedRole,
    plan: &LoadPlan,
    workloads: &[Workload],
    n_predict: u32,
) -> Mix {
    let weighted: Vec<(Workload, f64)> = match &plan.mix {
        Some(mix) => mix.clone(),
        None => workloads.iter().map(|w| (*w, 1.0)).collect(),
    };
    let lengths = plan
        .output_tokens
        .map_or_else(|| vec![n_predict], |l| l.values());
    let mut entries = Vec::new();
    for (w, weight) in weighted {
        let prompt = workload::prompt(
            role.model.behavior.as_ref(),
            w,
            0,
            role.model.facts.vocab_size,
        );
        for &n in &lengths {
            let mut request = CompletionRequest::new(prompt.clone(), n);
            // A server measured under load answers in whatever order it can: give a
            // queued request room beyond the default first-token wait.
            request.first_token_timeout = request.first_token_timeout.max(row::QUEUE_ALLOWANCE);
            entries.push(MixEntry {
                label: w.to_string(),
                request,
                weight: weight / lengths.len() as f64,
            });
        }
    }
    Mix { entries }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searched_rates_keep_three_significant_digits() {
        assert_eq!(round_to_3_digits(0.6879190956622723), 0.688);
        assert_eq!(round_to_3_digits(0.34395954783113614), 0.344);
        assert_eq!(round_to_3_digits(12.345), 12.3);
        assert_eq!(round_to_3_digits(2.0), 2.0);
    }
}
