//! The cost model as Markdown: the coefficients with their intervals and what the data
//! cannot identify, the leave-one-model-out table, and a predicted guide table. Reporting
//! only; the numbers come from [`super::fit`], [`super::validate`] and [`super::table`].

use super::fit::{CostModel, PartFit, Prediction, TermFit};
use super::machine::Machine;
use super::table::{TableRow, TABLE_DEPTH, TABLE_N_PREDICT};
use super::validate::Lomo;
use crate::analysis::render::{num, Table};

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

fn part_markdown(title: &str, fit: &PartFit) -> String {
    let mut md = format!(
        "### {title}\n\n{} cells of {} models ({} distinct shapes); relative residual sd {:.1}% on {} degrees of freedom.\n\n",
        fit.n_cells,
        fit.n_models,
        fit.n_shapes,
        fit.rel_sd * 100.0,
        fit.df
    );
    md += &terms_table(fit).markdown();
    for n in &fit.notes {
        md += &format!("\n- {n}");
    }
    md + "\n"
}

/// Both parts' coefficients.
pub fn model_markdown(m: &CostModel) -> String {
    let mut md = part_markdown("Decode (seconds per generated token)", &m.decode);
    if let Some(p) = &m.prefill {
        md += "\n";
        md += &part_markdown("Prefill (seconds per prompt token)", p);
    }
    md
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |e| format!("{:.1}%", e * 100.0))
}

/// The leave-one-model-out table.
pub fn lomo_markdown(l: &Lomo) -> String {
    let mut t = Table::new([
        "Model",
        "Cell",
        "Depth",
        "Measured t/s",
        "Predicted t/s",
        "Error",
    ]);
    for r in &l.rows {
        t.push(vec![
            r.model.clone(),
            r.cell.clone(),
            format!("{:.0}", r.depth),
            num(r.measured_tps),
            num(r.predicted_tps),
            format!("{:.1}%", r.abs_error * 100.0),
        ]);
    }
    let mut md = format!(
        "{:?}: median absolute error {}, worst {} over {} held-out cells.\n\n",
        l.part,
        pct(l.median_abs_error),
        pct(l.worst_abs_error),
        l.rows.len()
    );
    md += &t.markdown();
    if !l.skipped.is_empty() {
        md += &format!(
            "\nNot held out (the rest could not be fitted): {}\n",
            l.skipped.join(", ")
        );
    }
    md
}

fn range(p: &Prediction) -> String {
    format!("{} ({}-{})", num(p.tps), num(p.low), num(p.high))
}

/// A predicted guide table.
pub fn table_markdown(m: &Machine, rows: &[TableRow]) -> String {
    let mut t = Table::new([
        "Model Size",
        "Experts",
        "Weights GB/token",
        "Decode t/s (95%)",
        "Prefill t/s (95%)",
        "Guide t/s",
        "Status",
    ]);
    for r in rows {
        t.push(vec![
            r.label.clone(),
            r.experts_used.map_or("-".into(), |n| n.to_string()),
            format!("{:.2}", r.weight_bytes / 1e9),
            range(&r.decode),
            r.prefill.as_ref().map_or("-".into(), range),
            r.guide_tps
                .map_or("-".into(), |(lo, hi)| format!("{lo}-{hi}")),
            format!("{} ({})", r.status.as_str(), r.status_note),
        ]);
    }
    format!(
        "{} ({}): {:.1} GB/s, {} threads; {}. Depth {TABLE_DEPTH} tokens, {TABLE_N_PREDICT} generated.\n\n{}",
        m.name,
        m.cpu_model,
        m.bandwidth_gbps,
        m.threads,
        m.source,
        t.markdown()
    )
}
