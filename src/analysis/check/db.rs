//! `bench check --db FILE` without `--baseline`: the baseline is the newest row of each cell
//! among the database's runs that pass the filters (`--profile` among them), the run of
//! `--current` left out.

use super::CheckArgs;
use crate::results::load::{self, LoadedFile};
use std::path::Path;

/// The baseline of `args` from the database `db`.
pub(super) fn baseline(args: &CheckArgs, db: &Path) -> anyhow::Result<LoadedFile> {
    let filter = crate::results::db::DbFilter {
        profile: args.profile.clone(),
        select: args.select.clone(),
    };
    let current = args
        .current
        .as_deref()
        .and_then(|p| std::fs::canonicalize(p).ok());
    let runs = load::load_db(db, &filter)?
        .into_iter()
        .filter(|run| Some(&run.path) != current.as_ref())
        .collect();
    let baseline = load::newest_per_cell(db, runs);
    anyhow::ensure!(
        !baseline.rows.is_empty(),
        "{}: no run to use as the baseline besides --current",
        db.display()
    );
    Ok(baseline)
}
