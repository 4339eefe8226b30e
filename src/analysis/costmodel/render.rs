//! The cost model as report blocks (Markdown text and tables): the coefficients with their intervals and what the data
//! cannot identify, the leave-one-model-out table, and a predicted guide table. Reporting
//! only; the numbers come from [`super::fit`], [`super::validate`] and [`super::table`].

use super::fit::{CostModel, PartFit, Prediction, TermFit};
use super::machine::Machine;
use super::table::{TableRow, TABLE_DEPTH, TABLE_N_PREDICT};
use super::validate::Lomo;
use crate::analysis::render::{num, Table};
use crate::util::output::Report;

/// A coefficient in the unit people read: share of bandwidth, Gflop/s per thread, ns per
/// attention head-position, us per block, ms per token.
pub fn readable(name: &str, v: f64) -> String {
    match name {
        "weights" | "weights_llc" | "kv" if v > 0.0 => {
            format!("{:.1}% of bandwidth", 100.0 / v)
        }
        "weights" | "weights_llc" | "kv" => "free (0)".into(),
        "compute" | "attention" if v > 0.0 => format!("{} Gflop/s per thread", num(1.0 / v)),
        "compute" | "attention" => "free (0)".into(),
        "positions" => format!("{} ns per head-position per thread", num(v)),
        "layers" => format!("{} us per block", num(v * 1e6)),
        _ => format!("{} ms", num(v * 1e3)),
    }
}

fn term_row(t: &TermFit) -> Vec<String> {
    vec![
        t.name.clone(),
        t.column.clone(),
        format!("{:.4e}", t.value),
        format!("[{:.3e}, {:.3e}]", t.low, t.high),
        readable(&t.name, t.value),
        format!(
            "{} to {}",
            readable(&t.name, t.high),
            readable(&t.name, t.low)
        ),
        if t.identifiability.identified && t.reaches_zero {
            "yes, but the interval reaches 0".into()
        } else if t.identifiability.identified {
            "yes".into()
        } else {
            format!("no: {}", t.identifiability.note)
        },
    ]
}

/// The coefficients of one part.
pub fn terms_table(fit: &PartFit) -> Table {
    let mut t = Table::new([
        "Term",
        "Column",
        "Coefficient",
        "95% interval",
        "Reads as",
        "Interval reads as",
        "Identified",
    ]);
    for term in &fit.terms {
        t.push(term_row(term));
    }
    t
}

fn part_report(r: &mut Report, title: &str, fit: &PartFit) {
    r.text(format!(
        "### {title}\n\n{} cells of {} models ({} distinct shapes); relative residual sd {:.1}% on {} degrees of freedom.\n\n",
        fit.n_cells,
        fit.n_models,
        fit.n_shapes,
        fit.rel_sd * 100.0,
        fit.df
    ));
    r.table(terms_table(fit));
    let notes: String = fit.notes.iter().map(|n| format!("\n- {n}")).collect();
    r.text(notes + "\n");
}

/// Both parts' coefficients.
pub fn model_report(r: &mut Report, m: &CostModel) {
    part_report(r, "Decode (seconds per generated token)", &m.decode);
    if let Some(p) = &m.prefill {
        r.text("\n");
        part_report(r, "Prefill (seconds per prompt token)", p);
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |e| format!("{:.1}%", e * 100.0))
}

/// The leave-one-model-out table.
pub fn lomo_report(r: &mut Report, l: &Lomo) {
    let mut t = Table::new([
        "Model",
        "Cell",
        "Depth",
        "Measured t/s",
        "Predicted t/s",
        "Error",
    ]);
    for row in &l.rows {
        t.push(vec![
            row.model.clone(),
            row.cell.clone(),
            format!("{:.0}", row.depth),
            num(row.measured_tps),
            num(row.predicted_tps),
            format!("{:.1}%", row.abs_error * 100.0),
        ]);
    }
    r.text(format!(
        "{:?}: median absolute error {}, worst {} over {} held-out cells.\n\n",
        l.part,
        pct(l.median_abs_error),
        pct(l.worst_abs_error),
        l.rows.len()
    ));
    r.table(t);
    if !l.skipped.is_empty() {
        r.text(format!(
            "\nNot held out (the rest could not be fitted): {}\n",
            l.skipped.join(", ")
        ));
    }
}

fn range(p: &Prediction) -> String {
    format!("{} ({}-{})", num(p.tps), num(p.low), num(p.high))
}

/// A predicted guide table.
pub fn table_report(r: &mut Report, m: &Machine, rows: &[TableRow]) {
    let mut t = Table::new([
        "Model Size",
        "Experts",
        "Weights GB/token",
        "Decode t/s (95%)",
        "Prefill t/s (95%)",
        "Guide t/s",
        "Status",
    ]);
    for row in rows {
        t.push(vec![
            row.label.clone(),
            row.experts_used.map_or("-".into(), |n| n.to_string()),
            format!("{:.2}", row.weight_bytes / 1e9),
            range(&row.decode),
            row.prefill.as_ref().map_or("-".into(), range),
            row.guide_tps
                .map_or("-".into(), |(lo, hi)| format!("{lo}-{hi}")),
            format!("{} ({})", row.status.as_str(), row.status_note),
        ]);
    }
    r.text(format!(
        "{} ({}): {:.1} GB/s, {} threads; {}. Depth {TABLE_DEPTH} tokens, {TABLE_N_PREDICT} generated.\n\n",
        m.name, m.cpu_model, m.bandwidth_gbps, m.threads, m.source,
    ));
    r.table(t);
}
