//! `bench predict`: decode and prefill rates of any GGUF on a calibrated machine (or on
//! another machine given by its `bench hw --json`), from the cost model `bench calibrate`
//! fitted ([`super::costmodel`]), with a 95% interval and whether the model lies within what
//! was measured. Speculative modes go through the expected-tokens-per-step model
//! ([`super::specmodel`]): `spec:K` with a draft file and a per-token acceptance costs one
//! target step plus K draft steps per verification, both predicted by the cost model (the
//! draft cost the machine's `spec:K` cells imply is shown beside it when calibrate fitted
//! one); `lookup` drafts for free from the context, so a step costs one target step and
//! yields `E(hit rate, K)` tokens; `moe:N` reads N experts' weights.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde::Serialize;

use super::calibrate::Fits;
use super::costmodel::fit::TimePrediction;
use super::costmodel::table::status_of;
use super::costmodel::{CostModel, Machine, Part, Prediction, RowStatus, Setting, Shape};
use super::render::num;
use super::specmodel;
use crate::gguf::{Model, ModelFacts};
use crate::mode::{Mode, ModeKind};
use crate::util::output::{OutputArgs, Report, Style, Table};

/// llama.cpp's default maximum draft length (`speculative.n_max`), used by `lookup`.
pub const LOOKUP_DRAFT_MAX: u32 = 16;
/// Prompt length of the prefill prediction when `--depth` is 0.
pub const DEFAULT_PROMPT: u32 = 512;

/// Arguments of `bench predict`.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// The GGUF model to predict (any size; only its header is read).
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// The calibration `bench calibrate` wrote (`calibration/<host>.fits.toml`; default: that
    /// file for this host).
    #[arg(long)]
    pub machine: Option<PathBuf>,
    /// Predict for another machine described by its `bench hw --json` (its bandwidth and
    /// physical cores; the calibrated machine's efficiencies are assumed to carry over).
    #[arg(long)]
    pub hw: Option<PathBuf>,
    /// Tokens of context before decoding (also the prompt length of the prefill prediction).
    #[arg(long, default_value_t = DEFAULT_PROMPT)]
    pub depth: u32,
    /// Tokens generated (decode is averaged over them).
    #[arg(long, default_value_t = 128)]
    pub n_predict: u32,
    /// Threads (default: the machine's).
    #[arg(long)]
    pub threads: Option<u32>,
    /// Mode: `baseline`, `spec:K` (with --draft and --acceptance), `lookup` (with --hit-rate)
    /// or `moe:N`.
    #[arg(long, default_value = "baseline")]
    pub mode: Mode,
    /// Draft model of `spec:K`.
    #[arg(long)]
    pub draft: Option<PathBuf>,
    /// Per-token acceptance of the draft for `spec:K` (0..1).
    #[arg(long)]
    pub acceptance: Option<f64>,
    /// Per-token hit rate of prompt lookup (0..1).
    #[arg(long)]
    pub hit_rate: Option<f64>,
    /// Output format (json: the whole prediction, stable names).
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What `bench predict` prints.
#[derive(Debug, Clone, Serialize)]
pub struct PredictOutput {
    /// The model file.
    pub model: String,
    /// Weight bytes per token, KV bytes per token, vocabulary, ... as used.
    pub shape: Shape,
    /// The machine predicted for.
    pub machine: Machine,
    /// The calibration file.
    pub calibration: String,
    /// Depth, threads, bandwidth.
    pub setting: Setting,
    /// The mode.
    pub mode: String,
    /// Plain decode (the mode's weights for `moe:N`).
    pub decode: Prediction,
    /// Decode with the mode's speculation, when it has one.
    pub accelerated: Option<Prediction>,
    /// The same from the draft cost the machine's `spec:K` cells imply, when fitted (tokens/s).
    pub accelerated_measured_cost: Option<f64>,
    /// That draft cost (a draft step relative to a target step, of the measured pairs).
    pub measured_draft_cost: Option<f64>,
    /// Expected tokens per verification step of the mode.
    pub tokens_per_step: Option<f64>,
    /// Prefill of a `depth`-token prompt.
    pub prefill: Option<Prediction>,
    /// Measured, interpolated or extrapolated (by weight bytes).
    pub status: RowStatus,
    /// Why.
    pub status_note: String,
}

fn default_machine_file() -> PathBuf {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let safe = crate::util::safe_file_name(&host, "-.");
    Path::new("calibration").join(format!("{safe}.fits.toml"))
}

fn load_fits(args: &PredictArgs) -> anyhow::Result<(Fits, CostModel, String)> {
    let path = args.machine.clone().unwrap_or_else(default_machine_file);
    if args.machine.is_none() && !path.exists() {
        bail!(
            "no calibration for this host at {}: run `bench calibrate RESULTS.csv --out calibration` or give --machine FILE",
            path.display()
        );
    }
    let fits = Fits::load(&path)?;
    let Some(model) = fits.cost_model.clone() else {
        bail!(
            "{}: no [cost_model] (written by a bench calibrate that had no GGUF for any measured model); calibrate again with --models-dir",
            path.display()
        );
    };
    check_terms(&model, &path)?;
    Ok((fits, model, path.display().to_string()))
}

/// A cost model written with other terms than this version's (an older calibrate) would be
/// applied to the wrong columns: refused, naming what to do.
fn check_terms(model: &CostModel, path: &Path) -> anyhow::Result<()> {
    let parts = [Some(&model.decode), model.prefill.as_ref()];
    for fit in parts.into_iter().flatten() {
        let have: Vec<&str> = fit.terms.iter().map(|t| t.name.as_str()).collect();
        let want: Vec<&str> = fit.part.terms().iter().map(|t| t.name).collect();
        anyhow::ensure!(
            have == want,
            "{}: its {:?} cost model has the terms {} where this version has {}; calibrate again",
            path.display(),
            fit.part,
            have.join(", "),
            want.join(", ")
        );
    }
    Ok(())
}

fn facts(path: &Path) -> anyhow::Result<ModelFacts> {
    Ok(Model::open(path)
        .with_context(|| format!("reading GGUF {}", path.display()))?
        .facts())
}

/// The model's facts with the mode's expert count.
fn facts_for_mode(path: &Path, mode: &Mode) -> anyhow::Result<ModelFacts> {
    let f = facts(path)?;
    let Some(n) = mode.moe_n() else { return Ok(f) };
    match f.expert_count {
        Some(total) if (1..=total).contains(&n) => Ok(f.with_experts_used(n)),
        Some(total) => bail!("{}: moe:{n} needs 1..={total} experts", path.display()),
        None => bail!(
            "{}: moe:{n} needs a mixture-of-experts model",
            path.display()
        ),
    }
}

fn check_mode(args: &PredictArgs) -> anyhow::Result<()> {
    let Some(kind) = args.mode.kind() else {
        bail!("predict takes one mode at a time (baseline, spec:K, lookup, moe:N)")
    };
    // What each kind's prediction needs besides the model: a new kind does not compile
    // until it says.
    let ok = match kind {
        ModeKind::Baseline | ModeKind::Moe => true,
        ModeKind::Spec => args.draft.is_some() && args.acceptance.is_some(),
        ModeKind::Lookup => args.hit_rate.is_some(),
    };
    anyhow::ensure!(
        ok,
        "--mode {}: spec:K needs --draft FILE and --acceptance A, lookup needs --hit-rate H",
        args.mode
    );
    for (name, v) in [
        ("--acceptance", args.acceptance),
        ("--hit-rate", args.hit_rate),
    ] {
        if let Some(v) = v {
            anyhow::ensure!((0.0..=1.0).contains(&v), "{name} {v}: must lie in 0..1");
        }
    }
    Ok(())
}

fn machine_for(args: &PredictArgs, model: &CostModel) -> anyhow::Result<Machine> {
    let mut m = match &args.hw {
        Some(p) => Machine::from_hw(
            &crate::hardware::HwFacts::load(p)?,
            &p.display().to_string(),
        ),
        None => model.machine.clone(),
    };
    if let Some(t) = args.threads {
        anyhow::ensure!(t > 0, "--threads must be at least 1");
        m.threads = t;
    }
    Ok(m)
}

fn time_of(model: &CostModel, part: Part, s: &Shape, at: &Setting) -> Option<TimePrediction> {
    Some(model.part(part)?.predict_time(&part.row(s, at)))
}

/// Speculative decoding: E tokens per (one target step + K draft steps).
fn spec_prediction(
    model: &CostModel,
    args: &PredictArgs,
    target: &TimePrediction,
    at: &Setting,
    k: u32,
) -> anyhow::Result<(Prediction, f64)> {
    let draft_path = args.draft.as_deref().context("spec:K needs --draft")?;
    let draft = Shape::of(&facts(draft_path)?);
    let dt = time_of(model, Part::Decode, &draft, at).context("no decode fit")?;
    let e = specmodel::expected_tokens(args.acceptance.unwrap_or(0.0), k);
    let step = target.plus_scaled(&dt, f64::from(k));
    Ok((step.as_rate_of(&model.decode, e), e))
}

/// Runs the prediction.
pub fn predict(args: &PredictArgs) -> anyhow::Result<PredictOutput> {
    check_mode(args)?;
    let (fits, model, origin) = load_fits(args)?;
    let f = facts_for_mode(&args.model, &args.mode)?;
    let shape = Shape::of(&f);
    let machine = machine_for(args, &model)?;
    let at = Setting {
        depth: f64::from(args.depth),
        n_predict: f64::from(args.n_predict),
        prompt_tokens: f64::from(args.depth.max(1)),
        threads: f64::from(machine.threads),
        bandwidth_gbps: machine.bandwidth_gbps,
        llc_bytes: model.llc_bytes_on(&machine),
    };
    let target = time_of(&model, Part::Decode, &shape, &at).context("no decode fit")?;
    let decode = target.as_rate(&model.decode);
    let (accelerated, tokens_per_step) = match &args.mode {
        Mode::Spec { k } => {
            let (p, e) = spec_prediction(&model, args, &target, &at, *k)?;
            (Some(p), Some(e))
        }
        Mode::Lookup { .. } => {
            let e = specmodel::expected_tokens(args.hit_rate.unwrap_or(0.0), LOOKUP_DRAFT_MAX);
            (Some(target.as_rate_of(&model.decode, e)), Some(e))
        }
        _ => (None, None),
    };
    let measured_cost = match (&args.mode, &fits.speculative, args.acceptance) {
        (Mode::Spec { k }, Some(s), Some(a)) => {
            Some(decode.tps * specmodel::speedup(a, *k, s.draft_cost))
        }
        _ => None,
    };
    let family = crate::guide::quant_group(f.quant.as_deref().unwrap_or(""));
    let (status, status_note) = status_of(
        &model.covered,
        &family,
        f.expert_count.is_some(),
        shape.weight_bytes,
    );
    Ok(PredictOutput {
        model: args.model.display().to_string(),
        prefill: model.predict(Part::Prefill, &shape, &at),
        shape,
        machine,
        calibration: origin,
        setting: at,
        mode: args.mode.to_string(),
        decode,
        accelerated,
        accelerated_measured_cost: measured_cost,
        measured_draft_cost: fits
            .speculative
            .as_ref()
            .map(|s| s.draft_cost)
            .filter(|_| measured_cost.is_some()),
        tokens_per_step,
        status,
        status_note,
    })
}

fn line(p: &Prediction) -> String {
    format!("{} t/s (95% {}-{})", num(p.tps), num(p.low), num(p.high))
}

impl PredictOutput {
    /// The report as a table of facts (an aligned list on the terminal).
    pub fn table(&self) -> Table {
        let mut t = Table::new(["what", "value"]).styled(Style::Plain);
        for (k, v) in self.rows() {
            t.push(vec![k, v]);
        }
        t
    }

    fn rows(&self) -> Vec<(String, String)> {
        let (s, m) = (&self.shape, &self.machine);
        let mut rows = vec![
            (
                "model".into(),
                format!(
                    "{}: {:.3} GB weights/token, {:.0} B KV/token, vocabulary {:.0}",
                    self.model,
                    s.weight_bytes / 1e9,
                    s.kv_bytes_per_token,
                    s.vocab
                ),
            ),
            (
                "machine".into(),
                format!(
                    "{} ({}): {:.1} GB/s, {} threads; cost model {}",
                    m.name, m.cpu_model, m.bandwidth_gbps, m.threads, self.calibration
                ),
            ),
            (
                "setting".into(),
                format!(
                    "depth {:.0}, {:.0} generated, mode {}",
                    self.setting.depth, self.setting.n_predict, self.mode
                ),
            ),
            (
                "decode".into(),
                format!(
                    "{}  [{}: {}]",
                    line(&self.decode),
                    self.status.as_str(),
                    self.status_note
                ),
            ),
            ("ms per token".into(), self.decode_terms()),
        ];
        if let (Some(a), Some(e)) = (&self.accelerated, self.tokens_per_step) {
            rows.push((
                self.mode.clone(),
                format!("{}  ({e:.2} tokens per step)", line(a)),
            ));
        }
        if let (Some(v), Some(c)) = (self.accelerated_measured_cost, self.measured_draft_cost) {
            rows.push((format!("{} (fitted c)", self.mode), format!(
                "{} t/s with the draft cost c = {c:.3} fitted to the machine's measured spec:K pairs (their draft and target, not these)",
                num(v)
            )));
        }
        if let Some(p) = &self.prefill {
            rows.push((
                "prefill".into(),
                format!(
                    "{} for a {:.0}-token prompt",
                    line(p),
                    self.setting.prompt_tokens
                ),
            ));
        }
        if m.source.contains("assumed") {
            rows.push(("note".into(), m.source.clone()));
        }
        rows
    }

    /// Decode's milliseconds per token by term of the cost model.
    fn decode_terms(&self) -> String {
        let ms: Vec<String> = Part::Decode
            .terms()
            .iter()
            .zip(&self.decode.seconds_by_term)
            .map(|(t, v)| format!("{} {:.3}", t.name, v * 1e3))
            .collect();
        format!("by term: {}", ms.join(", "))
    }
}

/// Runs `bench predict`.
pub fn command(args: &PredictArgs) -> anyhow::Result<ExitCode> {
    let out = predict(args)?;
    let text = Report::from(out.table()).render(args.output.format(), &out)?;
    crate::util::output::print(&text)?;
    Ok(ExitCode::SUCCESS)
}
