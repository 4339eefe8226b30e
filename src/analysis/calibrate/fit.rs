//! The fits: efficiency per quant family and kind (least squares on the logarithms), the
//! guide's speed rows predicted from them, measured speedups next to the guide's
//! acceleration table, and the expected-speed table a profile can point at.

use super::*;

/// An efficiency fit of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EfficiencyFit {
    /// Quant family, or "all".
    pub family: String,
    /// "dense", "moe" or "all".
    pub kind: String,
    /// Fitted efficiency: measured / roofline (fraction).
    pub efficiency: f64,
    /// Standard deviation of the log residuals.
    pub log_sd: f64,
    /// Number of cells.
    pub n: usize,
}

impl EfficiencyFit {
    /// Low and high factor of a prediction.
    pub fn range_factor(&self) -> f64 {
        self.log_sd.exp().max(MIN_RANGE_FACTOR)
    }
}

fn kind(moe: bool) -> &'static str {
    if moe {
        "moe"
    } else {
        "dense"
    }
}

fn fit_group(points: &[&RooflinePoint], family: &str, kind: &str) -> Option<EfficiencyFit> {
    let x: Vec<f64> = points.iter().map(|p| p.roofline_tps).collect();
    let y: Vec<f64> = points.iter().map(|p| p.decode_tps).collect();
    let fit = fit_scale(&x, &y)?;
    Some(EfficiencyFit {
        family: family.into(),
        kind: kind.into(),
        efficiency: fit.factor,
        log_sd: fit.log_sd,
        n: points.len(),
    })
}

/// Fits per (family, kind), then per kind over all families, then over everything.
pub fn fit_efficiencies(points: &[RooflinePoint]) -> Vec<EfficiencyFit> {
    let mut groups: BTreeMap<(String, &str), Vec<&RooflinePoint>> = BTreeMap::new();
    for p in points {
        groups
            .entry((p.family.clone(), kind(p.moe)))
            .or_default()
            .push(p);
        groups
            .entry(("all".into(), kind(p.moe)))
            .or_default()
            .push(p);
        groups.entry(("all".into(), "all")).or_default().push(p);
    }
    let mut fits: Vec<EfficiencyFit> = groups
        .iter()
        .filter_map(|((fam, k), pts)| fit_group(pts, fam, k))
        .collect();
    // Most specific first: family fits, then "all/<kind>", then "all/all".
    fits.sort_by_key(|f| {
        (
            f.family == "all",
            f.kind == "all",
            f.family.clone(),
            f.kind.clone(),
        )
    });
    fits
}

/// The most specific fit for a family and kind: exact, same family any kind, same kind any
/// family, then all, then anything of the same kind.
pub fn pick_fit<'a>(
    fits: &'a [EfficiencyFit],
    family: &str,
    moe: bool,
) -> Option<&'a EfficiencyFit> {
    let k = kind(moe);
    let find = |fam: &str, kd: &str| fits.iter().find(|f| f.family == fam && f.kind == kd);
    find(family, k)
        .or_else(|| fits.iter().find(|f| f.family == family))
        .or_else(|| find("all", k))
        .or_else(|| find("all", "all"))
        .or_else(|| fits.iter().find(|f| f.kind == k))
        .or_else(|| fits.first())
}

/// A measured point that stands for a guide row: same family and kind, total parameters
/// within a factor 1.35 (synthetic Qwen2.5-0.5B shapes have 0.63B with untied embeddings).
fn measured_for(row: &SpeedRow, points: &[RooflinePoint]) -> Option<f64> {
    let fam = guide::quant_group(row.quant);
    let near: Vec<f64> = points
        .iter()
        .filter(|p| p.family == fam && p.moe == row.is_moe())
        .filter(|p| (p.n_params as f64 / (row.params_b * 1e9)).ln().abs() < 1.35f64.ln())
        .map(|p| p.decode_tps)
        .collect();
    Moments::of(&near).map(|m| m.mean)
}

/// Predicted ranges for every row of the guide's speed table.
pub fn predict(
    fits: &[EfficiencyFit],
    bandwidth_gbps: f64,
    points: &[RooflinePoint],
) -> Vec<SpeedExpectation> {
    guide::SPEEDS
        .iter()
        .filter_map(|row| {
            let fit = pick_fit(fits, &guide::quant_group(row.quant), row.is_moe())?;
            let bytes = row.active_bytes_per_token();
            let mid = fit.efficiency * bandwidth_gbps * 1e9 / bytes;
            let f = fit.range_factor();
            Some(SpeedExpectation {
                size: row.size_label.into(),
                quant: row.quant_label.into(),
                params_b: row.params_b,
                active_params_b: row.active_params_b,
                active_bytes_per_token: bytes,
                low_tps: mid / f,
                high_tps: mid * f,
                guide_low_tps: row.low_tps,
                guide_high_tps: row.high_tps,
                fit: format!("{}/{}", fit.family, fit.kind),
                measured_tps: measured_for(row, points),
            })
        })
        .collect()
}

/// Measured speedups next to the guide's acceleration table.
pub fn acceleration(points: &[SpeedupPoint]) -> Vec<AccelExpectation> {
    guide::ACCELERATIONS
        .iter()
        .map(|row| {
            let v: Vec<f64> = points
                .iter()
                .filter(|p| row.matches(&p.mode))
                .map(|p| p.speedup)
                .collect();
            AccelExpectation {
                method: row.method.into(),
                kind: row.kind(),
                low: v.iter().copied().reduce(f64::min),
                high: v.iter().copied().reduce(f64::max),
                n: v.len(),
                guide_low: row.low_speedup,
                guide_high: row.high_speedup,
            }
        })
        .collect()
}

/// Rounded to 0.01 (tokens/s in the TOML are read by people too).
fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A representative llama.cpp quant of a family, for the bits per weight of a family row.
fn representative_quant(family: &str) -> &str {
    match family {
        "Q8" => "Q8_0",
        "Q6" => "Q6_K",
        "Q5" => "Q5_K_M",
        "Q4" => "Q4_K_M",
        "Q3" => "Q3_K_M",
        "Q2" => "Q2_K",
        other => other,
    }
}

fn speed_row(
    label: String,
    params_b: f64,
    family: &str,
    moe: bool,
    range: (f64, f64),
    note: String,
) -> ExpectedRow {
    ExpectedRow {
        label,
        params_b,
        quant: family.to_string(),
        moe,
        low_tps: round2(range.0),
        high_tps: round2(range.1),
        note,
    }
}

/// The cost model's 95% decode interval for a guide row as the guide states it (its own
/// expert reduction), with a note saying so; `None` without a fitted cost model.
fn cost_range(cal: &Calibration, label: &str) -> Option<((f64, f64), String)> {
    let row = cal
        .cost
        .this_machine
        .iter()
        .find(|r| r.label == label && r.guide_tps.is_some())?;
    let (glo, ghi) = row.guide_tps?;
    let note = format!(
        "cost model, {} ({}); guide {glo}-{ghi}",
        row.status.as_str(),
        row.status_note
    );
    Some(((row.decode.low, row.decode.high), note))
}

/// The profile-facing expectations (`guide::Expectations`): the guide's rows recalibrated (by
/// the cost model's 95% interval when it was fitted, else by the roofline fit), the same sizes
/// for every other measured quant family (e.g. F16), and one row per measured model at its own
/// size, so that the next run of the same models on this machine is judged against its own
/// ranges.
pub fn profile_expectations(cal: &Calibration) -> GuideExpectations {
    let info = &cal.expectations.calibration;
    let mut rows: Vec<ExpectedRow> = cal
        .expectations
        .speed
        .iter()
        .map(|s| {
            let label = format!("{} {}", s.size, s.quant);
            let (range, note) = cost_range(cal, &label).unwrap_or_else(|| {
                let note = format!(
                    "calibrated ({} fit); guide {}-{}",
                    s.fit, s.guide_low_tps, s.guide_high_tps
                );
                ((s.low_tps, s.high_tps), note)
            });
            speed_row(
                label,
                s.params_b,
                &s.quant,
                s.size.contains("MoE"),
                range,
                note,
            )
        })
        .collect();
    for fit in cal
        .expectations
        .efficiency
        .iter()
        .filter(|f| f.family != "all" && f.kind != "all")
    {
        let moe = fit.kind == "moe";
        for g in guide::SPEEDS.iter().filter(|g| g.is_moe() == moe) {
            if guide::quant_group(g.quant) == fit.family {
                continue;
            }
            let bytes = g.active_params_b
                * 1e9
                * guide::effective_bits_per_weight(representative_quant(&fit.family))
                / 8.0;
            let mid = fit.efficiency * info.bandwidth_gbps * 1e9 / bytes;
            let f = fit.range_factor();
            let label = format!("{} {}", g.size_label, fit.family);
            rows.push(speed_row(
                label,
                g.params_b,
                &fit.family,
                moe,
                (mid / f, mid * f),
                format!("calibrated ({}/{} fit)", fit.family, fit.kind),
            ));
        }
    }
    for p in cal.points.iter().filter(|p| p.mode.is_baseline()) {
        let Some(fit) = pick_fit(&cal.expectations.efficiency, &p.family, p.moe) else {
            continue;
        };
        let mid = fit.efficiency * p.roofline_tps;
        let f = fit.range_factor();
        let label = format!("{} (measured model)", p.model_file);
        let note = format!(
            "calibrated ({}/{} fit); measured {:.1} t/s",
            fit.family, fit.kind, p.decode_tps
        );
        rows.push(speed_row(
            label,
            p.n_params as f64 / 1e9,
            &p.family,
            p.moe,
            (mid / f, mid * f),
            note,
        ));
    }
    GuideExpectations {
        source: format!(
            "bench calibrate: host {} ({}), {:.1} GB/s, {}",
            info.host, info.cpu_model, info.bandwidth_gbps, info.generated_utc
        ),
        rows,
    }
}
