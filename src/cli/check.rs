//! `bench check --profile NAME`'s measuring: the profile is run as `bench run --profile NAME`
//! would run it (every option at its default, `--max-reps` when given) and the gate reads the
//! results file it wrote. It lives in the command layer because it joins two commands: the
//! run loop below and the analysis that judges its rows.

use std::path::{Path, PathBuf};

/// `bench run --profile NAME [--max-reps N]` with every other option at its default; the
/// path of the results CSV it wrote. With `--db` the run appends its rows to that database.
pub fn run_profile(
    name: &str,
    max_reps: Option<u32>,
    db: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let mut args = crate::driver::RunArgs::for_profile(name);
    args.max_reps = max_reps;
    args.db = db.map(Path::to_path_buf);
    let outcome = crate::driver::run_profile(&args)?;
    anyhow::ensure!(
        !outcome.interrupted,
        "the run of profile {name} was interrupted"
    );
    eprintln!("check: ran profile {name}: {}", outcome.csv.display());
    Ok(outcome.csv)
}
