//! The calibration as Markdown: fits, residuals, the recalibrated speed table, the
//! acceleration table, the speculative model and the size check. Reporting only.

use super::*;
use crate::util::output::Report;

fn range(low: f64, high: f64) -> String {
    if low < 0.1 {
        format!("{} to {}", num(low), num(high))
    } else {
        format!("{}-{}", num(low), num(high))
    }
}

impl Calibration {
    fn fit_of(&self, p: &RooflinePoint) -> Option<&EfficiencyFit> {
        pick_fit(&self.expectations.efficiency, &p.family, p.moe)
    }

    /// The roofline fits table.
    pub fn fits_table(&self) -> Table {
        let mut t = Table::new([
            "Quant family",
            "Kind",
            "Cells",
            "Efficiency",
            "Log-residual sd",
            "Range factor",
        ]);
        for f in &self.expectations.efficiency {
            t.push(vec![
                f.family.clone(),
                f.kind.clone(),
                f.n.to_string(),
                format!("{:.3}", f.efficiency),
                format!("{:.3}", f.log_sd),
                format!("x/{:.2}", f.range_factor()),
            ]);
        }
        t
    }

    /// Each measured cell against its fit.
    pub fn residuals_table(&self) -> Table {
        let mut t = Table::new([
            "Cell",
            "Fit",
            "Roofline t/s",
            "Measured t/s",
            "Fitted t/s",
            "Measured / fitted",
            "Far off",
        ]);
        for p in &self.points {
            let Some(f) = self.fit_of(p) else { continue };
            let fitted = f.efficiency * p.roofline_tps;
            let r = p.decode_tps / fitted;
            let far = !(1.0 / FAR_OFF_FACTOR..=FAR_OFF_FACTOR).contains(&r);
            t.push(vec![
                p.cell.clone(),
                format!("{}/{}", f.family, f.kind),
                num(p.roofline_tps),
                num(p.decode_tps),
                num(fitted),
                format!("{r:.3}"),
                if far { "FAR OFF".into() } else { String::new() },
            ]);
        }
        t
    }

    /// The guide's "Inference Speed by Model Size", recalibrated.
    pub fn speed_table(&self) -> Table {
        let mut t = Table::new([
            "Model Size",
            "Quant",
            "Active GB/token",
            "Expected t/s (this machine)",
            "Guide t/s",
            "Measured t/s",
            "Fit",
        ]);
        for s in &self.expectations.speed {
            t.push(vec![
                s.size.clone(),
                s.quant.clone(),
                format!("{:.2}", s.active_bytes_per_token / 1e9),
                range(s.low_tps, s.high_tps),
                range(s.guide_low_tps, s.guide_high_tps),
                s.measured_tps.map_or("-".into(), num),
                s.fit.clone(),
            ]);
        }
        t
    }

    /// The guide's "Acceleration Methods", measured.
    pub fn accel_table(&self) -> Table {
        let mut t = Table::new([
            "Method",
            "Measured speedup",
            "Cells",
            "Guide typical speedup",
        ]);
        for a in &self.expectations.acceleration {
            let measured = match (a.low, a.high) {
                (Some(l), Some(h)) => format!("{l:.2}-{h:.2}x"),
                _ => "not measured".into(),
            };
            t.push(vec![
                a.method.clone(),
                measured,
                a.n.to_string(),
                format!("{}-{}x", a.guide_low, a.guide_high),
            ]);
        }
        t
    }

    /// Every speculative cell on the fitted model.
    pub fn spec_table(&self) -> Table {
        let c = self
            .expectations
            .speculative
            .as_ref()
            .map_or(f64::NAN, |s| s.draft_cost);
        let mut t = Table::new([
            "Cell",
            "K",
            "Accepted / drafted",
            "Drafted/step",
            "Tokens/step (measured)",
            "Per-token acceptance",
            "Measured speedup [95% CI]",
            "Model speedup",
            "Implied draft cost",
        ]);
        for (p, s) in spec_points(&self.speedups) {
            t.push(vec![
                p.cell.clone(),
                s.k.to_string(),
                p.acceptance.map_or("-".into(), |a| format!("{a:.3}")),
                format!("{:.2}", s.drafted_per_step),
                format!("{:.2}", s.tokens_per_step),
                format!(
                    "{:.3}",
                    specmodel::per_token_acceptance(s.tokens_per_step, s.k)
                ),
                format!("{:.2} [{}, {}]", p.speedup, num(p.low), num(p.high)),
                format!("{:.2}", specmodel::point_speedup(&s, c)),
                format!("{:.3}", specmodel::implied_draft_cost(&s)),
            ]);
        }
        t
    }

    /// The guide's size formula next to the GGUF files.
    pub fn size_table(&self) -> Table {
        let mut t = Table::new([
            "Model",
            "Params (B)",
            "Quant",
            "Guide formula GB",
            "GGUF GB",
            "Error",
        ]);
        for s in &self.sizes {
            let name = if s.synthetic {
                format!("{} (synthetic)", s.model_file)
            } else {
                s.model_file.clone()
            };
            t.push(vec![
                name,
                num(s.params_b),
                s.quant.clone(),
                s.guide_gb.map_or("-".into(), num),
                num(s.gguf_gb),
                s.error()
                    .map_or("-".into(), |e| format!("{:+.1}%", e * 100.0)),
            ]);
        }
        t
    }

    /// The whole document: Markdown text and the tables (`--format table` shows the same
    /// text with terminal tables, `--format csv` the tables alone).
    pub fn report(&self) -> Report {
        let info = &self.expectations.calibration;
        let mut r = Report::new();
        r.text(format!(
            "# Calibration for {} ({})\n\nMeasured read bandwidth {:.1} GB/s; sources: {}.\n\n",
            info.host,
            info.cpu_model,
            info.bandwidth_gbps,
            info.sources.join(", ")
        ));
        r.text("## Roofline fits\n\ndecode t/s = efficiency x bandwidth / active bytes per token, fitted on the logarithms.\n\n");
        r.text(self.small_models_note());
        r.table(self.fits_table());
        r.text(format!(
            "\n### Cells against their fit (far off: beyond x/{FAR_OFF_FACTOR})\n\n"
        ));
        r.table(self.residuals_table());
        r.text("\n## Inference Speed by Model Size (this machine)\n\nActive bytes per token = active parameters x effective bits per weight / 8 (Q8_0 8.5, Q4_K_M 4.85); MoE rows use the guide's expert reduction.\n\n");
        r.table(self.speed_table());
        self.cost_report(&mut r);
        r.text("\n## Acceleration Methods (measured)\n\n");
        r.table(self.accel_table());
        self.spec_report(&mut r);
        r.text("\n## Model sizes: the guide's formula against GGUF files\n\nGuide: GB = params (B) x quant multiplier x 1.1.\n\n");
        r.table(self.size_table());
        r
    }

    /// The whole Markdown document (what `--out` writes).
    pub fn markdown(&self) -> String {
        self.report().markdown()
    }

    /// A caveat when every fitted model is tiny: their speed is bound by per-token overhead,
    /// not by memory bandwidth, so extrapolating to large models is not meaningful.
    fn small_models_note(&self) -> String {
        let largest = self.points.iter().map(|p| p.n_params).max().unwrap_or(0);
        if largest as f64 >= SMALL_MODEL_PARAMS {
            return String::new();
        }
        format!(
            "**Note**: every measured model has fewer than {:.2}B parameters (largest {:.3}B). Such models are bound by per-token overhead, not by memory bandwidth, so the efficiencies below are low and the predictions for large models are not meaningful; calibrate with real models or `bench run --synthetic` stand-ins of the guide's sizes.\n\n",
            SMALL_MODEL_PARAMS / 1e9,
            largest as f64 / 1e9
        )
    }

    fn spec_report(&self, r: &mut Report) {
        let Some(s) = &self.expectations.speculative else {
            r.text("\nNo `spec:K` cell with an acceptance: the speculative-decoding model was not fitted.\n");
            return;
        };
        r.text(format!(
            "\n### Speculative decoding model\n\nspeedup = E / (1 + D c), E tokens and D drafted tokens per decoding step, both measured: steps = tokens after each request's first - accepted, E = those tokens / steps, D = drafted / steps (accepted / drafted is not the per-token acceptance a of E = (1 - a^(K+1)) / (1 - a); the a shown solves that equation for the measured E). Fitted draft cost c = {:.3} of a target step ({} cells).\n\n",
            s.draft_cost, s.n
        ));
        r.table(self.spec_table());
    }
}

impl Calibration {
    /// The cost model: coefficients, leave-one-model-out error, the guide's table on this
    /// machine and on every other machine given.
    fn cost_report(&self, r: &mut Report) {
        use costmodel::render::{lomo_report, model_report, table_report};
        let c = &self.cost;
        let mut md = String::from("\n## Cost model\n\nDecode time per token = weight bytes larger than the last-level cache / bandwidth x k_w + weight bytes that fit in it / bandwidth x k_c + KV bytes at the mean context / bandwidth x k_kv + the weights' arithmetic per thread x k_f + attention arithmetic per thread x k_a + attention head-positions per thread x k_p + blocks x k_l + k_0, fitted by non-negative least squares on relative residuals over every `baseline` and `moe:N` cell with one slot; 95% intervals from 400 refits on models drawn with replacement. Shapes from each model's GGUF.\n\n");
        md += &match c.cells.llc_bytes {
            Some(b) => format!(
                "Last-level cache of {}: {:.0} MiB; a model whose weight bytes fit is costed as cached.\n\n",
                c.cells.host,
                b as f64 / 1048576.0
            ),
            None => format!(
                "Last-level cache of {} not known (give its `bench hw --json` with --host-hw): every weight byte is costed as read from DRAM.\n\n",
                c.cells.host
            ),
        };
        if c.cells.other_host_rows > 0 {
            md += &format!(
                "{} usable rows of other hosts than {} left out (one machine per fit).\n\n",
                c.cells.other_host_rows, c.cells.host
            );
        }
        if !c.cells.missing.is_empty() {
            md += &format!(
                "Left out, no GGUF with the row's parameter count found (searched {}): {}\n\n",
                c.cells
                    .searched
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                c.cells.missing.join(", ")
            );
        }
        let Some(model) = &c.model else {
            r.text(md + "No cell with a GGUF at hand: the cost model was not fitted.\n");
            return;
        };
        r.text(md);
        model_report(r, model);
        r.text("\n### Leave one model out\n\n");
        lomo_report(r, &c.lomo_decode);
        r.text("\n");
        lomo_report(r, &c.lomo_prefill);
        r.text("\n### The guide's table on this machine (cost model)\n\n");
        table_report(r, &model.machine, &c.this_machine);
        for (m, rows) in &c.other_machines {
            r.text("\n### The guide's table on another machine (cost model)\n\n");
            table_report(r, m, rows);
        }
    }
}
