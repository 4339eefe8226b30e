//! Fitting the cost model: non-negative least squares on relative residuals (each cell's row
//! divided by its measured time, so a 1000 t/s draft and a 5 t/s 7B count alike), 95%
//! intervals by resampling whole models (cells of one model share its errors), and the terms
//! the data cannot identify: a column with one value, columns so collinear that their variance
//! inflation exceeds [`MAX_VIF`], or fewer distinct shapes than terms.

use serde::{Deserialize, Serialize};

use super::machine::{Covered, Machine};
use super::terms::{Part, Setting, Shape};
use crate::measure::{case_bootstrap, invert, nnls, percentile_interval, t_quantile_975};

/// Bootstrap refits per part.
pub const BOOTSTRAP_REPS: usize = 400;
/// Seed of the bootstrap (fixed: the same data give the same intervals).
pub const BOOTSTRAP_SEED: u64 = 0x7470_7362;
/// Variance inflation beyond which a column is called collinear with the others.
pub const MAX_VIF: f64 = 50.0;

/// One observation: a design row, the measured seconds per token, and its model.
#[derive(Debug, Clone, PartialEq)]
pub struct Obs {
    /// Design row ([`Part::row`]).
    pub x: Vec<f64>,
    /// Measured seconds per token.
    pub y: f64,
    /// Which model the cell measured (resampling unit).
    pub model: String,
}

/// What the data say about one term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identifiability {
    /// Distinct values of the column over the cells.
    pub distinct: usize,
    /// Variance inflation factor of the column (infinite when the columns are dependent).
    pub vif: f64,
    /// The column it is most collinear with (largest |cosine|), when another exists.
    pub most_collinear_with: Option<String>,
    /// True when the term can be identified: several values, VIF within [`MAX_VIF`].
    pub identified: bool,
    /// Why not, in words (empty when identified).
    pub note: String,
}

/// One fitted coefficient with its 95% interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermFit {
    /// Term name ([`super::terms::TermDef::name`]).
    pub name: String,
    /// What its column holds.
    pub column: String,
    /// Fitted coefficient (seconds per unit of the column).
    pub value: f64,
    /// 2.5th percentile over the bootstrap refits.
    pub low: f64,
    /// 97.5th percentile over the bootstrap refits.
    pub high: f64,
    /// Whether the data identify it.
    pub identifiability: Identifiability,
    /// The interval reaches 0: the data do not show that this term costs anything.
    pub reaches_zero: bool,
}

/// The fit of one part (decode or prefill).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartFit {
    /// Decode or prefill.
    pub part: Part,
    /// Coefficients in column order.
    pub terms: Vec<TermFit>,
    /// The coefficient vectors of the bootstrap refits (for prediction intervals).
    pub draws: Vec<Vec<f64>>,
    /// Root mean square relative residual, on n - (non-zero terms) degrees of freedom.
    pub rel_sd: f64,
    /// Those degrees of freedom (at least 1).
    pub df: usize,
    /// Cells fitted.
    pub n_cells: usize,
    /// Distinct models among them.
    pub n_models: usize,
    /// Distinct design rows (shapes x settings).
    pub n_shapes: usize,
    /// Notes on what the data cannot say.
    pub notes: Vec<String>,
}

/// A predicted rate with its 95% interval (tokens/s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Point prediction (tokens/s).
    pub tps: f64,
    /// Low end (tokens/s).
    pub low: f64,
    /// High end (tokens/s).
    pub high: f64,
    /// Seconds per token of each term at the point estimate, in column order.
    pub seconds_by_term: Vec<f64>,
}

/// The fitted decode and prefill parts of one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    /// The machine the cells were measured on (its median bandwidth and usual threads).
    pub machine: Machine,
    /// The fitted models by weight bytes (for measured / interpolated / extrapolated).
    pub covered: Vec<Covered>,
    /// Decode: seconds per generated token.
    pub decode: PartFit,
    /// Prefill: seconds per prompt token, when prefill rates were measured.
    pub prefill: Option<PartFit>,
}

impl CostModel {
    /// The fit of a part.
    pub fn part(&self, part: Part) -> Option<&PartFit> {
        match part {
            Part::Decode => Some(&self.decode),
            Part::Prefill => self.prefill.as_ref(),
        }
    }

    /// The last-level cache a prediction on `m` may count (bytes): `m`'s when known and the
    /// fitted machine's was known too, else 0 (every weight byte from DRAM), since a fit
    /// without the cache's size never costed cached weights.
    pub fn llc_bytes_on(&self, m: &Machine) -> f64 {
        match (self.machine.llc_bytes, m.llc_bytes) {
            (Some(_), Some(b)) => b as f64,
            _ => 0.0,
        }
    }

    /// Predicted rate of a shape in a setting.
    pub fn predict(&self, part: Part, s: &Shape, at: &Setting) -> Option<Prediction> {
        let fit = self.part(part)?;
        Some(fit.predict_time(&part.row(s, at)).as_rate(fit))
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(u, v)| u * v).sum()
}

/// Point coefficients by NNLS on relative residuals; columns scaled to unit maximum first.
pub fn coefficients(obs: &[&Obs]) -> Option<Vec<f64>> {
    let n = obs.first()?.x.len();
    let scale: Vec<f64> = (0..n)
        .map(|j| obs.iter().map(|o| (o.x[j] / o.y).abs()).fold(0.0, f64::max))
        .map(|m| if m > 0.0 { m } else { 1.0 })
        .collect();
    let a: Vec<Vec<f64>> = obs
        .iter()
        .map(|o| (0..n).map(|j| o.x[j] / o.y / scale[j]).collect())
        .collect();
    let b = vec![1.0; obs.len()];
    let beta = nnls(&a, &b)?;
    Some(beta.iter().zip(&scale).map(|(v, s)| v / s).collect())
}

/// A time prediction before it becomes a rate: point seconds, the refits' seconds, and the
/// residual spread.
pub struct TimePrediction {
    seconds: f64,
    by_term: Vec<f64>,
    draws: Vec<f64>,
}

impl PartFit {
    /// Point coefficients.
    pub fn beta(&self) -> Vec<f64> {
        self.terms.iter().map(|t| t.value).collect()
    }

    /// Seconds per token of a design row, with every refit's seconds.
    pub fn predict_time(&self, x: &[f64]) -> TimePrediction {
        let beta = self.beta();
        TimePrediction {
            seconds: dot(x, &beta),
            by_term: x.iter().zip(&beta).map(|(u, v)| u * v).collect(),
            draws: self.draws.iter().map(|d| dot(x, d)).collect(),
        }
    }

    /// Half-width of a 95% prediction interval on the log scale: the refits' spread and the
    /// cells' relative scatter, in quadrature.
    fn log_half_width(&self, t: &TimePrediction) -> f64 {
        let boot = percentile_interval(&t.draws)
            .filter(|(lo, _)| *lo > 0.0)
            .map_or(0.0, |(lo, hi)| {
                (t.seconds / lo).ln().abs().max((hi / t.seconds).ln().abs())
            });
        let scatter = t_quantile_975(self.df as f64) * self.rel_sd;
        (boot * boot + scatter * scatter).sqrt()
    }
}

impl TimePrediction {
    /// Seconds of the point prediction.
    pub fn seconds(&self) -> f64 {
        self.seconds
    }

    /// The same as seconds of `other` added (e.g. a draft's steps); refits paired by index.
    pub fn plus_scaled(&self, other: &TimePrediction, k: f64) -> TimePrediction {
        TimePrediction {
            seconds: self.seconds + k * other.seconds,
            by_term: self
                .by_term
                .iter()
                .zip(&other.by_term)
                .map(|(a, b)| a + k * b)
                .collect(),
            draws: self
                .draws
                .iter()
                .zip(&other.draws)
                .map(|(a, b)| a + k * b)
                .collect(),
        }
    }

    /// Tokens per second for `tokens` tokens per `seconds`, with the interval of `fit`.
    pub fn as_rate_of(&self, fit: &PartFit, tokens: f64) -> Prediction {
        let h = fit.log_half_width(self);
        let tps = tokens / self.seconds;
        Prediction {
            tps,
            low: tps * (-h).exp(),
            high: tps * h.exp(),
            seconds_by_term: self.by_term.clone(),
        }
    }

    /// One token per `seconds`.
    pub fn as_rate(&self, fit: &PartFit) -> Prediction {
        self.as_rate_of(fit, 1.0)
    }
}

/// Relative residuals `(x beta - y) / y` of observations.
fn rel_residuals(obs: &[&Obs], beta: &[f64]) -> Vec<f64> {
    obs.iter().map(|o| (dot(&o.x, beta) - o.y) / o.y).collect()
}

fn distinct_models(obs: &[Obs]) -> Vec<String> {
    let mut m: Vec<String> = obs.iter().map(|o| o.model.clone()).collect();
    m.sort();
    m.dedup();
    m
}

/// Refits on whole models drawn with replacement.
fn bootstrap(obs: &[Obs], models: &[String]) -> Vec<Vec<f64>> {
    case_bootstrap(models.len(), BOOTSTRAP_REPS, BOOTSTRAP_SEED, |idx| {
        let sample: Vec<&Obs> = idx
            .iter()
            .flat_map(|&i| obs.iter().filter(move |o| o.model == models[i]))
            .collect();
        coefficients(&sample)
    })
}

/// Fits one part; `None` without observations or when NNLS fails.
pub fn fit_part(part: Part, obs: &[Obs]) -> Option<PartFit> {
    let all: Vec<&Obs> = obs.iter().collect();
    let beta = coefficients(&all)?;
    let models = distinct_models(obs);
    let draws = bootstrap(obs, &models);
    let resid = rel_residuals(&all, &beta);
    let used = beta.iter().filter(|v| **v > 0.0).count();
    let df = obs.len().saturating_sub(used).max(1);
    let rel_sd = (resid.iter().map(|r| r * r).sum::<f64>() / df as f64).sqrt();
    let ident = identifiability(part, obs);
    let terms = term_fits(part, &beta, &draws, ident);
    let n_shapes = distinct_rows(obs);
    let notes = part_notes(part, &terms, n_shapes, models.len());
    Some(PartFit {
        part,
        terms,
        draws,
        rel_sd,
        df,
        n_cells: obs.len(),
        n_models: models.len(),
        n_shapes,
        notes,
    })
}

fn term_fits(
    part: Part,
    beta: &[f64],
    draws: &[Vec<f64>],
    ident: Vec<Identifiability>,
) -> Vec<TermFit> {
    part.terms()
        .iter()
        .zip(ident)
        .enumerate()
        .map(|(j, (def, identifiability))| {
            let col: Vec<f64> = draws.iter().map(|d| d[j]).collect();
            let (low, high) = percentile_interval(&col).unwrap_or((f64::NAN, f64::NAN));
            TermFit {
                name: def.name.into(),
                column: def.column.into(),
                value: beta[j],
                low,
                high,
                identifiability,
                reaches_zero: low <= 0.0,
            }
        })
        .collect()
}

fn part_notes(part: Part, terms: &[TermFit], n_shapes: usize, n_models: usize) -> Vec<String> {
    let mut notes = Vec::new();
    if n_shapes < terms.len() {
        notes.push(format!(
            "{n_shapes} distinct cell shapes for {} terms: too few to identify them all",
            terms.len()
        ));
    }
    if n_models < 3 {
        notes.push(format!(
            "{n_models} model(s): the intervals, from resampling models, mean little"
        ));
    }
    let zero: Vec<&str> = terms
        .iter()
        .filter(|t| t.reaches_zero && t.identifiability.identified)
        .map(|t| t.name.as_str())
        .collect();
    if !zero.is_empty() {
        notes.push(format!(
            "the intervals of {} reach 0: these cells do not show those costs",
            zero.join(", ")
        ));
    }
    for t in terms.iter().filter(|t| !t.identifiability.identified) {
        notes.push(format!(
            "{:?} term `{}` not identified: {}",
            part, t.name, t.identifiability.note
        ));
    }
    notes
}

fn distinct_rows(obs: &[Obs]) -> usize {
    let mut keys: Vec<Vec<i64>> = obs
        .iter()
        .map(|o| {
            o.x.iter()
                .map(|v| (v.abs().max(1e-300).ln() * 1e4) as i64)
                .collect()
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys.len()
}

fn distinct_values(col: &[f64]) -> usize {
    let mut v: Vec<f64> = col.to_vec();
    v.sort_by(f64::total_cmp);
    v.dedup_by(|a, b| (*a - *b).abs() <= 1e-9 * a.abs().max(b.abs()));
    v.len()
}

/// Identifiability of each column on the weighted design (rows divided by y, columns scaled
/// to unit length): distinct values and the variance inflation `(G^-1)_jj` of the Gram matrix
/// of the columns that are not 0 in every cell (such a column, e.g. the LLC's weights when no
/// model fits in the cache, costs nothing in the fit and says nothing about the others).
pub fn identifiability(part: Part, obs: &[Obs]) -> Vec<Identifiability> {
    let names: Vec<&str> = part.terms().iter().map(|t| t.name).collect();
    let n = names.len();
    let cols: Vec<Vec<f64>> = (0..n)
        .map(|j| obs.iter().map(|o| o.x[j] / o.y).collect())
        .collect();
    let unit: Vec<Vec<f64>> = cols.iter().map(|c| normalise(c)).collect();
    let live: Vec<usize> = (0..n)
        .filter(|&j| unit[j].iter().any(|v| *v != 0.0))
        .collect();
    let gram: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| dot(&unit[i], &unit[j])).collect())
        .collect();
    let live_gram: Vec<Vec<f64>> = live
        .iter()
        .map(|&i| live.iter().map(|&j| gram[i][j]).collect())
        .collect();
    let inv = invert(&live_gram);
    (0..n)
        .map(|j| {
            let raw: Vec<f64> = obs.iter().map(|o| o.x[j]).collect();
            let distinct = distinct_values(&raw);
            let vif = match (live.iter().position(|&k| k == j), &inv) {
                (Some(k), Some(m)) => m[k][k],
                _ => f64::INFINITY,
            };
            let partner = most_collinear(&gram, j).map(|k| names[k].to_string());
            judge(names[j], distinct, vif, partner)
        })
        .collect()
}

fn normalise(c: &[f64]) -> Vec<f64> {
    let norm = dot(c, c).sqrt();
    if norm > 0.0 {
        c.iter().map(|v| v / norm).collect()
    } else {
        c.to_vec()
    }
}

fn most_collinear(gram: &[Vec<f64>], j: usize) -> Option<usize> {
    (0..gram.len())
        .filter(|&k| k != j)
        .max_by(|&a, &b| gram[j][a].abs().total_cmp(&gram[j][b].abs()))
}

fn judge(name: &str, distinct: usize, vif: f64, partner: Option<String>) -> Identifiability {
    let constant = name == "fixed";
    let note = if !constant && distinct < 2 {
        format!("its column has one value over the cells ({distinct} distinct)")
    } else if !vif.is_finite() || vif > MAX_VIF {
        format!(
            "collinear with the other columns (variance inflation {}; closest: `{}`)",
            if vif.is_finite() {
                format!("{vif:.0}")
            } else {
                "infinite".into()
            },
            partner.as_deref().unwrap_or("-")
        )
    } else {
        String::new()
    };
    Identifiability {
        distinct,
        vif,
        most_collinear_with: partner,
        identified: note.is_empty(),
        note,
    }
}

/// Fits both parts from observations.
pub fn fit_model(
    decode: &[Obs],
    prefill: &[Obs],
    covered: Vec<Covered>,
    machine: Machine,
) -> Option<CostModel> {
    Some(CostModel {
        machine,
        covered,
        decode: fit_part(Part::Decode, decode)?,
        prefill: fit_part(Part::Prefill, prefill),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::SplitMix64;

    /// Standard normal by Box-Muller from the bootstrap's generator (independent of the fit).
    fn normal(rng: &mut SplitMix64) -> f64 {
        let u1 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (-2.0 * (u1.max(1e-300)).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Twelve model shapes in three quant widths at four depths, times from known
    /// coefficients with 3% multiplicative noise; five of them (11 to 43 MB of weights) fit
    /// in the 48 MiB last-level cache, seven (64 MB to 1 GB) do not.
    fn synthetic(truth: &[f64; 8], noise: f64, seed: u64) -> Vec<Obs> {
        let mut rng = SplitMix64::new(seed);
        let mut obs = Vec::new();
        for m in 0..12 {
            let params = 1e7 * 2f64.powi(m / 2) * if m % 2 == 0 { 1.0 } else { 1.6 };
            let bytes_per_param = [2.0, 1.0625, 0.56][m as usize % 3];
            let s = Shape {
                weight_bytes: params * bytes_per_param,
                active_params: params,
                kv_bytes_per_token: 4096.0 * (1.0 + f64::from(m % 4)),
                attn_elements: 2048.0 * (1.0 + f64::from(m % 5)),
                vocab: [32_000.0, 151_936.0, 262_144.0][(m as usize / 3) % 3],
                layers: f64::from(2 + m % 6),
                head_count: [4.0, 8.0, 12.0, 14.0][m as usize % 4],
                sliding_window: 0.0,
                sliding_window_layers: 0.0,
            };
            for depth in [24.0, 320.0, 1024.0, 4000.0] {
                let at = Setting {
                    depth,
                    n_predict: 64.0,
                    prompt_tokens: depth,
                    threads: 2.0,
                    bandwidth_gbps: 30.0,
                    llc_bytes: 48.0 * 1024.0 * 1024.0,
                };
                let x = Part::Decode.row(&s, &at);
                let y = dot(&x, truth) * (noise * normal(&mut rng)).exp();
                obs.push(Obs {
                    x,
                    y,
                    model: format!("m{m}"),
                });
            }
        }
        obs
    }

    #[test]
    fn recovers_known_coefficients_within_their_intervals() {
        // 1/0.6 of the bandwidth for weights from DRAM, 1/1.5 for weights in the LLC, 1/0.5
        // for the KV cache, 8 Gflop/s per thread for the weights' arithmetic, 4 for
        // attention's, 40 ns per attention head-position, 30 us per block, 0.4 ms fixed.
        let truth = [
            1.0 / 0.6,
            1.0 / 1.5,
            2.0,
            1.0 / 8.0,
            1.0 / 4.0,
            40.0,
            3e-5,
            4e-4,
        ];
        let fit = fit_part(Part::Decode, &synthetic(&truth, 0.03, 11)).unwrap();
        for (t, want) in fit.terms.iter().zip(truth) {
            assert!(
                t.low <= want && want <= t.high,
                "{}: {} not in [{}, {}] (fit {})",
                t.name,
                want,
                t.low,
                t.high,
                t.value
            );
            assert!(t.identifiability.identified, "{t:?}");
        }
        assert!((fit.rel_sd - 0.03).abs() < 0.01, "{}", fit.rel_sd);
    }

    #[test]
    fn exact_data_give_exact_coefficients() {
        let truth = [1.5, 0.5, 1.0, 0.1, 0.2, 20.0, 1e-5, 1e-3];
        let obs = synthetic(&truth, 0.0, 1);
        let refs: Vec<&Obs> = obs.iter().collect();
        let beta = coefficients(&refs).unwrap();
        for (b, t) in beta.iter().zip(truth) {
            assert!((b / t - 1.0).abs() < 1e-6, "{beta:?}");
        }
    }

    #[test]
    fn a_constant_column_and_a_copied_column_are_named() {
        // Every cell has the same number of blocks, no model fits in the LLC, and KV bytes are
        // exactly proportional to weight bytes at one depth: none can be told apart from the
        // fixed term or the weights. The all-zero LLC column does not make the others
        // collinear.
        let obs: Vec<Obs> = (1..9)
            .map(|i| {
                let w = f64::from(i) * 1e-3;
                let x = vec![
                    w,
                    0.0,
                    0.01 * w,
                    f64::from(i * i) * 0.1,
                    f64::from(i).sqrt(),
                    f64::from(i).ln() + f64::from(i % 3),
                    24.0,
                    1.0,
                ];
                Obs {
                    x,
                    y: 2.0 * w + 1e-3,
                    model: format!("m{i}"),
                }
            })
            .collect();
        let id = identifiability(Part::Decode, &obs);
        assert!(
            !id[1].identified && id[1].note.contains("one value"),
            "{id:?}"
        );
        assert!(
            !id[2].identified && id[2].note.contains("collinear"),
            "{id:?}"
        );
        assert_eq!(id[2].most_collinear_with.as_deref(), Some("weights"));
        assert!(!id[6].identified, "{:?}", id[6]);
        assert!(id[3].identified || id[3].note.contains("collinear"));
    }
}
