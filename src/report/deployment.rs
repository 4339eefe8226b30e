//! The deployment chart of a report: for every role of a deployment its decode rate alone
//! (the other servers resident and idle) and together (every role under its load at once),
//! with the contention and the model's prediction written beside, and the machine's
//! aggregate output rate summed alone against together. What sharing one machine costs
//! each role, at a glance.

use std::path::Path;

use plotters::prelude::*;

use super::charts::{categorical_height, category_label, err, FONT, W};
use crate::driver::deploy::summary::{self, DeploymentSummary};
use crate::results::load::LoadedFile;

/// One pair of bars: alone and together (tokens/s), and the text beside them.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub label: String,
    pub alone: f64,
    pub together: f64,
    pub note: String,
}

/// Every deployment of every file.
pub fn deployments(files: &[LoadedFile]) -> Vec<DeploymentSummary> {
    files
        .iter()
        .flat_map(|f| summary::summarize(&f.rows))
        .collect()
}

/// The bars of the deployments: a pair per role, then the machine's aggregate.
pub fn pairs(deployments: &[DeploymentSummary]) -> Vec<Pair> {
    let mut out = Vec::new();
    let many = deployments.len() > 1;
    for d in deployments {
        // Several deployments are told apart by when they started (`16:27:44Z`), which
        // keeps the labels short enough to leave the bars room.
        let prefix = match many {
            true => format!("{} ", d.id.rsplit('T').next().unwrap_or(&d.id)),
            false => String::new(),
        };
        for r in &d.roles {
            let (Some(alone), Some(together)) = (r.alone_tps, r.together_tps) else {
                continue;
            };
            let contention = r.contention.as_ref().map_or(String::new(), |c| {
                format!("{:.2} [{:.2}, {:.2}]", c.ratio, c.low, c.high)
            });
            let predicted = r
                .predicted
                .map_or(String::new(), |p| format!(", predicted {p:.2}"));
            out.push(Pair {
                label: format!("{prefix}{} {} decode t/s", r.role, r.mode),
                alone,
                together,
                note: format!("{contention}{predicted}"),
            });
        }
        if let (Some(alone), Some(together)) =
            (d.machine.alone_output_tps, d.machine.together_output_tps)
        {
            out.push(Pair {
                label: format!("{prefix}machine output t/s"),
                alone,
                together,
                note: format!("{:.2}", together / alone),
            });
        }
    }
    out
}

/// Horizontal bars, alone (grey) above together (blue) for each pair.
pub fn chart(path: &Path, pairs: &[Pair]) -> anyhow::Result<()> {
    anyhow::ensure!(!pairs.is_empty(), "no deployment to draw");
    let top = pairs
        .iter()
        .map(|p| p.alone.max(p.together))
        .fold(0.0f64, f64::max);
    let hi = top * 1.9; // room for the text right of the bars
    let n = pairs.len() as f64;
    let root = SVGBackend::new(path, (W, categorical_height(pairs.len()) + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let labels: Vec<String> = pairs.iter().map(|p| p.label.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Each role alone (grey) and together (blue): contention = together / alone",
            (FONT, 22),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(super::labels::column_px(&labels))
        .build_cartesian_2d(0.0..hi, (n - 0.5)..-0.5)
        .map_err(err)?;
    let fmt = move |v: &f64| category_label(&labels, *v);
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(pairs.len() * 2 + 1)
        .y_label_formatter(&fmt)
        .x_desc("tokens per second")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for (i, p) in pairs.iter().enumerate() {
        let y = i as f64;
        let bars = [
            Rectangle::new([(0.0, y - 0.35), (p.alone, y)], BLACK.mix(0.3).filled()),
            Rectangle::new([(0.0, y), (p.together, y + 0.35)], BLUE.mix(0.6).filled()),
        ];
        chart.draw_series(bars).map_err(err)?;
        let text = format!("{:.1} -> {:.1}  {}", p.alone, p.together, p.note);
        chart
            .draw_series([Text::new(
                text,
                (p.alone.max(p.together) + hi * 0.01, y - 0.1),
                (FONT, 12).into_font(),
            )])
            .map_err(err)?;
    }
    root.present().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{ResultRow, Status};

    #[test]
    fn a_deployment_draws_a_pair_per_role_and_the_machine() {
        let row = |role: &str, phase: &str, round: u32, tps: f64| ResultRow {
            deployment_id: "deploy-1".into(),
            role: role.into(),
            deploy_phase: phase.into(),
            deploy_round: Some(round),
            status: Status::Ok,
            decode_tps_mean: Some(tps),
            output_tps: Some(tps),
            ..ResultRow::default()
        };
        let rows = vec![
            row("a", "alone", 1, 10.0),
            row("a", "together", 1, 8.0),
            row("a", "alone", 2, 10.0),
            row("a", "together", 2, 9.0),
        ];
        let pairs = pairs(&summary::summarize(&rows));
        assert_eq!(pairs.len(), 2);
        assert_eq!((pairs[0].alone, pairs[0].together), (10.0, 8.5));
        assert_eq!(pairs[1].label, "machine output t/s");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.svg");
        chart(&path, &pairs).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.contains("10.0 -&gt; 8.5") || svg.contains("10.0 -> 8.5"),
            "{svg}"
        );
    }
}
