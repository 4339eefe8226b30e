//! Workloads shipped with the tool: what a request asks for and how long its answer is.
//!
//! Text prompts serve real models; synthetic `cycle` models get token-id prompts built
//! from their cycle structure, so the ground truth of every answer is known in advance.
//! A cell at depth D puts D filler tokens before the workload's prompt: seeded random ids
//! over the vocabulary, as llama-bench's `-d` fills its context, so decode is measured with
//! D tokens already in the context.

pub use crate::profile::Workload;

use crate::engine::request::{Prompt, PromptPart};
use crate::synth::Behavior;

/// The prompt of a cell: `depth` filler tokens of a `n_vocab`-token vocabulary, then the
/// workload's prompt (token ids for a synthetic model with a known behaviour, else text).
pub fn prompt(behavior: Option<&Behavior>, w: Workload, depth: u32, n_vocab: u64) -> Prompt {
    let filler = filler_tokens(depth as usize, n_vocab);
    match behavior.filter(|b| b.has_ground_truth()) {
        Some(b) => Prompt::Tokens([filler, b.cycle_prompt(synthetic_prompt_tokens(w))].concat()),
        None if filler.is_empty() => Prompt::Text(text_prompt(w)),
        None => {
            let mut parts: Vec<PromptPart> = filler.into_iter().map(PromptPart::Token).collect();
            parts.push(PromptPart::Text(text_prompt(w)));
            Prompt::Mixed(parts)
        }
    }
}

/// Tokens of a cell's prompt before the server counts them: exact for token prompts, an
/// estimate for text (about four bytes per token, as English text tokenizes); the bool says
/// which.
pub fn prompt_tokens(behavior: Option<&Behavior>, w: Workload, depth: u32) -> (u64, bool) {
    let own = match behavior.filter(|b| b.has_ground_truth()) {
        Some(_) => (synthetic_prompt_tokens(w) as u64, true),
        None => ((text_prompt(w).len() as u64).div_ceil(4), false),
    };
    (u64::from(depth) + own.0, own.1)
}

/// `n` seeded pseudo-random token ids below `n_vocab` (splitmix64), the same on every call.
fn filler_tokens(n: usize, n_vocab: u64) -> Vec<u32> {
    let mut state: u64 = 0x7470_7362_656e_6368; // "tpsbench"
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z % n_vocab.max(1)) as u32
        })
        .collect()
}

/// The text prompt of a workload, for real models.
pub fn text_prompt(w: Workload) -> String {
    match w {
        Workload::Chat => CHAT_PROMPT.to_string(),
        Workload::CodeEdit => {
            format!("{CODE_EDIT_INSTRUCTION}\n\n```rust\n{CODE_EDIT_SOURCE}```\n\n```rust\n")
        }
        Workload::Summarize => {
            format!(
                "{SUMMARIZE_INSTRUCTION}\n\n{}\n\nSummary:",
                summarize_document()
            )
        }
    }
}

/// Length in tokens of the token-id prompt used with synthetic `cycle` models.
pub fn synthetic_prompt_tokens(w: Workload) -> usize {
    match w {
        Workload::Chat => 24,
        // Longer than the cycles the presets use, so the answer continues a pattern
        // already in the context, as an edited file repeats its source.
        Workload::CodeEdit => 320,
        Workload::Summarize => 1024,
    }
}

const CHAT_PROMPT: &str = "You are a helpful assistant. Explain, in a few clear paragraphs, \
why memory bandwidth rather than compute usually limits the speed at which a large language \
model generates text on a CPU, and what that means when choosing a server.";

const CODE_EDIT_INSTRUCTION: &str = "Return the following Rust file unchanged except that the \
function `mean` must return 0.0 for an empty slice instead of NaN. Output only the code.";

const CODE_EDIT_SOURCE: &str = r#"//! Small statistics helpers.

/// Arithmetic mean of the values.
pub fn mean(values: &[f64]) -> f64 {
    let sum: f64 = values.iter().sum();
    sum / values.len() as f64
}

/// Sample variance (n - 1 in the denominator).
pub fn variance(values: &[f64]) -> f64 {
    let m = mean(values);
    let squares: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    squares / (values.len() as f64 - 1.0)
}

/// Sample standard deviation.
pub fn std_dev(values: &[f64]) -> f64 {
    variance(values).sqrt()
}

/// Median of the values; sorts a copy.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// Smallest and largest value.
pub fn min_max(values: &[f64]) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for &v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_three() {
        assert_eq!(mean(&[1.0, 2.0, 3.0]), 2.0);
    }

    #[test]
    fn median_of_even() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
"#;

const SUMMARIZE_INSTRUCTION: &str =
    "Summarise the following report in five bullet points for an engineering manager.";

/// A long, varied document built from a few paragraphs about running inference servers.
fn summarize_document() -> String {
    const PARAGRAPHS: [&str; 6] = [
        "The inference cluster serves a front-door model that answers most requests directly, \
         escalating to larger coder and architect models only when the request needs them. \
         Latency budgets differ per role: the front door must answer within a second, while \
         architects may think for minutes.",
        "Memory is the binding constraint. Every resident model occupies its full weight size \
         in RAM, plus a key-value cache that grows with the context length and the number of \
         parallel slots. Operators keep a safety buffer so that a burst of long contexts does \
         not push the machine into swapping.",
        "Throughput on CPUs follows memory bandwidth. Each generated token reads every active \
         weight once, so a model of twenty gigabytes on a machine with two hundred gigabytes per \
         second of bandwidth cannot exceed about ten tokens per second without speculation.",
        "Speculative decoding drafts several tokens with a small model and verifies them in one \
         pass of the large model. When the draft agrees often, the large model emits several \
         tokens per pass; when it disagrees, the drafting time is wasted.",
        "Prompt lookup drafts tokens by finding the last few generated tokens earlier in the \
         context. It costs almost nothing and helps most when the answer repeats the prompt, as \
         in code edits, extraction and summaries with quotations.",
        "Mixture-of-experts models route every token through a few experts out of many. Using \
         fewer experts than the model was trained with reads fewer bytes per token and speeds \
         decoding up, at a cost in quality that grows quickly below half the trained count.",
    ];
    let mut doc = String::new();
    for round in 0..4 {
        for (i, p) in PARAGRAPHS.iter().enumerate() {
            doc.push_str(&format!("Section {}.{}: {p}\n\n", round + 1, i + 1));
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_grow_with_the_workload() {
        let chat = text_prompt(Workload::Chat).len();
        let edit = text_prompt(Workload::CodeEdit).len();
        let summ = text_prompt(Workload::Summarize).len();
        assert!(chat < edit && edit < summ, "{chat} {edit} {summ}");
        assert!(text_prompt(Workload::CodeEdit).contains("pub fn mean"));
        assert!(synthetic_prompt_tokens(Workload::CodeEdit) > 256);
    }

    #[test]
    fn depth_puts_that_many_filler_tokens_before_the_prompt() {
        let at_zero = prompt(None, Workload::Chat, 0, 1000);
        assert_eq!(at_zero, Prompt::Text(text_prompt(Workload::Chat)));
        let Prompt::Mixed(parts) = prompt(None, Workload::Chat, 256, 1000) else {
            panic!("a text prompt at depth is a mixed prompt");
        };
        assert_eq!(parts.len(), 257);
        assert!(parts[..256]
            .iter()
            .all(|p| matches!(p, PromptPart::Token(t) if *t < 1000)));
        assert_eq!(parts[256], PromptPart::Text(text_prompt(Workload::Chat)));
        // Seeded: the same filler every time, and not one repeated id.
        assert_eq!(filler_tokens(256, 1000), filler_tokens(256, 1000));
        let distinct: std::collections::HashSet<_> = filler_tokens(256, 1000).into_iter().collect();
        assert!(distinct.len() > 200, "{}", distinct.len());
    }

    #[test]
    fn a_synthetic_prompt_keeps_its_cycle_after_the_filler() {
        let b = Behavior::Cycle(crate::synth::Cycle::new(32, 7, 0.0, (0, 4000), 4096));
        let Prompt::Tokens(tokens) = prompt(Some(&b), Workload::Chat, 100, 4096) else {
            panic!("token prompt");
        };
        assert_eq!(tokens.len(), 100 + synthetic_prompt_tokens(Workload::Chat));
        assert_eq!(tokens[100..], b.cycle_prompt(24)[..]);
        assert_eq!(prompt_tokens(Some(&b), Workload::Chat, 100), (124, true));
        let (n, exact) = prompt_tokens(None, Workload::Chat, 100);
        assert!(!exact && n > 100, "{n}");
    }
}
