//! What a run does about a machine that is not quiet: the foreign load of each cell
//! ([`crate::hardware::foreign`]) goes into its row (`foreign_cpu_pct`, `steal_pct`), and a
//! cell measured while other processes took more than the threshold (`--foreign-threshold`,
//! percent of one core) is marked noisy (a `noisy: ...` note first in its reason, `noisy` in
//! the run table's verdict), waited for before it starts (`--when-noisy wait`, bounded) or
//! failed (`--when-noisy refuse`). The batch cells (`execute/`) and the serving phases
//! (`serve/`) both go through here.

use super::interrupt::Interrupt;
use super::progress::Progress;
use crate::hardware::foreign::{ForeignLoad, Snapshot};
use crate::results::{ResultRow, Status, NOISY_NOTE};
use std::time::{Duration, Instant};

/// `--foreign-threshold` when not given: 10% of one core. An idle Linux VM shows 1-3%
/// (kernel threads, the shell, sshd); a compiler or a second benchmark shows 50-200%. At 10%
/// a cron job or an editor's indexer is flagged, and nothing that would not move a decode
/// rate by more than a few percent is.
pub const DEFAULT_FOREIGN_THRESHOLD_PCT: f64 = 10.0;

/// The longest `--when-noisy wait` waits before a cell; it then measures anyway, and the
/// row says noisy.
pub const WAIT_LIMIT: Duration = Duration::from_secs(120);

/// The window over which `--when-noisy wait` judges the machine quiet.
const WAIT_WINDOW: Duration = Duration::from_secs(1);

/// What to do about a cell measured while other processes took the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum WhenNoisy {
    /// Measure, and mark the cell noisy with the figure.
    #[default]
    Warn,
    /// Before each cell, wait (at most 120 s) until the machine is quiet; then as `warn`.
    Wait,
    /// Fail a cell measured while the machine was not quiet, with the figure as the reason.
    Refuse,
}

/// The run's rule: what counts as noisy and what to do about it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuietRule {
    /// What to do.
    pub when: WhenNoisy,
    /// Foreign CPU above this is noisy (percent of one core).
    pub threshold_pct: f64,
}

impl Default for QuietRule {
    fn default() -> Self {
        QuietRule {
            when: WhenNoisy::Warn,
            threshold_pct: DEFAULT_FOREIGN_THRESHOLD_PCT,
        }
    }
}

/// Parses `--foreign-threshold`: percent of one core, `10` or `10%`, at least 0.
pub fn parse_threshold(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v: f64 = t
        .strip_suffix('%')
        .unwrap_or(t)
        .trim()
        .parse()
        .map_err(|e| format!("{s:?}: {e} (write 10 or 10%: percent of one core)"))?;
    match v.is_finite() && v >= 0.0 {
        true => Ok(v),
        false => Err(format!(
            "{s:?}: the threshold is a percentage of one core, 0 or more"
        )),
    }
}

/// The note a noisy cell's reason starts with, when `load` is above the threshold.
pub fn noisy_note(load: &ForeignLoad, threshold_pct: f64) -> Option<String> {
    (load.foreign_cpu_pct > threshold_pct).then(|| {
        format!(
            "{NOISY_NOTE}other processes took {:.0}% of one core while this cell was measured \
             (threshold {threshold_pct:.0}%, steal {:.1}%)",
            load.foreign_cpu_pct, load.steal_pct
        )
    })
}

/// Fills a row's `foreign_cpu_pct` and `steal_pct` from `load`, and applies `rule` to a
/// measured row: the noisy note first in its reason, or with `refuse` the row failed with
/// it. A row that was not measured keeps its status and reason.
pub fn judge(row: &mut ResultRow, load: Option<&ForeignLoad>, rule: Option<&QuietRule>) {
    let Some(load) = load else { return };
    row.foreign_cpu_pct = Some(round1(load.foreign_cpu_pct));
    row.steal_pct = Some(round1(load.steal_pct));
    let (Some(rule), Status::Ok) = (rule, row.status) else {
        return;
    };
    let Some(note) = noisy_note(load, rule.threshold_pct) else {
        return;
    };
    let mut notes = vec![note];
    if rule.when == WhenNoisy::Refuse {
        row.status = Status::Failed;
        notes.push("refused (--when-noisy refuse): measure again on a quiet machine".into());
    }
    notes.extend((!row.reason.is_empty()).then(|| row.reason.clone()));
    row.reason = notes.join("; ");
}

/// With `--when-noisy wait`: samples the machine in 1-s windows until other processes take
/// no more than the threshold, at most [`WAIT_LIMIT`], saying so on the progress line.
/// `pids` are our servers. False when Ctrl-C ended the wait.
pub async fn until_quiet(
    rule: Option<&QuietRule>,
    pids: &[u32],
    interrupt: &Interrupt,
    progress: &Progress,
    what: &str,
) -> bool {
    let Some(rule) = rule.filter(|r| r.when == WhenNoisy::Wait) else {
        return true;
    };
    let start = Instant::now();
    loop {
        let Ok(before) = Snapshot::take(pids) else {
            return true;
        };
        tokio::select! {
            biased;
            _ = interrupt.wait() => return false,
            _ = tokio::time::sleep(WAIT_WINDOW) => {}
        }
        let load = Snapshot::take(pids)
            .ok()
            .and_then(|after| before.until(&after));
        let Some(load) = load else { return true };
        let waited = start.elapsed().as_secs();
        if load.foreign_cpu_pct <= rule.threshold_pct {
            if waited > 1 {
                progress.line(format!("{what}: the machine is quiet after {waited} s"));
            }
            return true;
        }
        if start.elapsed() >= WAIT_LIMIT {
            progress.line(format!(
                "WARNING: {what}: other processes still take {:.0}% of one core after {waited} s \
                 (threshold {:.0}%): measuring anyway, the row says noisy; stop them or raise \
                 --foreign-threshold",
                load.foreign_cpu_pct, rule.threshold_pct
            ));
            return true;
        }
        progress.phase(format!(
            "{what}: waiting for a quiet machine: other processes take {:.0}% of one core \
             (threshold {:.0}%), waited {waited} s of at most {} s",
            load.foreign_cpu_pct,
            rule.threshold_pct,
            WAIT_LIMIT.as_secs()
        ));
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(foreign: f64) -> ForeignLoad {
        ForeignLoad {
            foreign_cpu_pct: foreign,
            ours_cpu_pct: 150.0,
            steal_pct: 0.44,
            ticks: 500,
        }
    }

    fn measured(reason: &str) -> ResultRow {
        ResultRow {
            status: Status::Ok,
            reason: reason.into(),
            ..ResultRow::default()
        }
    }

    #[test]
    fn waiting_is_only_for_wait_and_ctrl_c_ends_it() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let progress = Progress::new(1, true);
        let interrupt = Interrupt::default();
        let never_quiet = QuietRule {
            when: WhenNoisy::Wait,
            threshold_pct: -1.0,
        };
        let warn = QuietRule {
            when: WhenNoisy::Warn,
            ..never_quiet
        };
        runtime.block_on(async {
            // warn and refuse measure at once, however busy the machine.
            let start = Instant::now();
            assert!(until_quiet(Some(&warn), &[], &interrupt, &progress, "c").await);
            assert!(until_quiet(None, &[], &interrupt, &progress, "c").await);
            assert!(start.elapsed() < WAIT_WINDOW);
            // A machine that is never quiet enough: Ctrl-C ends the wait, long before the
            // 120 s bound.
            let trigger = interrupt.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                trigger.trigger();
            });
            let start = Instant::now();
            assert!(!until_quiet(Some(&never_quiet), &[], &interrupt, &progress, "c").await);
            let waited = start.elapsed();
            assert!(
                waited >= Duration::from_millis(1500) && waited < WAIT_LIMIT,
                "{waited:?}"
            );
        });
    }

    #[test]
    fn thresholds_parse_as_percent_of_a_core() {
        assert_eq!(parse_threshold("10"), Ok(10.0));
        assert_eq!(parse_threshold(" 150% "), Ok(150.0));
        assert!(parse_threshold("-1").is_err());
        assert!(parse_threshold("NaN").is_err());
        assert!(parse_threshold("lots")
            .unwrap_err()
            .contains("percent of one core"));
    }

    #[test]
    fn a_quiet_cell_gets_its_figures_and_no_note() {
        let mut row = measured("");
        judge(&mut row, Some(&load(3.04)), Some(&QuietRule::default()));
        assert_eq!(row.foreign_cpu_pct, Some(3.0));
        assert_eq!(row.steal_pct, Some(0.4));
        assert_eq!((row.status, row.reason.as_str()), (Status::Ok, ""));
        assert!(!row.is_noisy());
    }

    #[test]
    fn a_noisy_cell_is_marked_first_and_keeps_its_other_notes() {
        let mut row = measured("ground truth: ok");
        judge(&mut row, Some(&load(45.0)), Some(&QuietRule::default()));
        assert_eq!(row.status, Status::Ok);
        assert_eq!(
            row.reason,
            "noisy: other processes took 45% of one core while this cell was measured \
             (threshold 10%, steal 0.4%); ground truth: ok"
        );
        // Notes are joined by "; ": the noisy note holds none, so a reader can drop it whole.
        assert_eq!(row.reason.split("; ").count(), 2, "{}", row.reason);
        assert!(row.is_noisy());
    }

    #[test]
    fn refuse_fails_a_noisy_cell_and_leaves_unmeasured_ones_alone() {
        let rule = QuietRule {
            when: WhenNoisy::Refuse,
            threshold_pct: 20.0,
        };
        let mut row = measured("");
        judge(&mut row, Some(&load(25.0)), Some(&rule));
        assert_eq!(row.status, Status::Failed);
        assert!(row.reason.starts_with("noisy: other processes took 25%"));
        assert!(row.reason.contains("refused (--when-noisy refuse)"));
        let mut skipped = ResultRow {
            status: Status::Skipped,
            reason: "no memory".into(),
            ..ResultRow::default()
        };
        judge(&mut skipped, Some(&load(90.0)), Some(&rule));
        assert_eq!(
            (skipped.status, skipped.reason.as_str()),
            (Status::Skipped, "no memory")
        );
        // Without a rule (a running server measured with --server-url): figures only.
        let mut row = measured("");
        judge(&mut row, Some(&load(90.0)), None);
        assert_eq!((row.status, row.foreign_cpu_pct), (Status::Ok, Some(90.0)));
        assert!(!row.is_noisy());
    }
}
