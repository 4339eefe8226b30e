//! Every preset written as a GGUF file agrees with its published parameter count within 1%,
//! as read back by the gguf reader that `bench size` uses.
//!
//! The two 0.5B presets are written in full (published layout, `random` behaviour); all
//! others as sparse files: the real header, tensor infos and file size, with the tensor
//! data left as holes, so 235B and 480B cost no disk.

use tpsbench::gguf::{GgufFile, Model};
use tpsbench::synth::{self, plan, presets, BehaviorSpec, QuantMix, Recipe};

fn published_layout(name: &str, quant: QuantMix) -> Recipe {
    let p = presets::by_name(name).unwrap();
    Recipe::new(
        p.name,
        p.shape,
        quant,
        BehaviorSpec::Random { seed: 5 },
        None,
    )
    .unwrap()
}

#[test]
fn every_preset_file_has_the_published_parameter_count() {
    let dir = tempfile::tempdir().unwrap();
    for preset in presets::all() {
        let recipe = published_layout(preset.name, QuantMix::Q4_K_M);
        let sparse = !preset.name.ends_with("0.5b");
        let path = dir.path().join(format!("{}.gguf", preset.name));
        let report = synth::write_model(&recipe, &path, sparse).unwrap();
        let file = GgufFile::open(&path).unwrap();
        let facts = Model::open(&path).unwrap().facts(); // what `bench size` reports
        assert_eq!(facts.n_params, file.n_params());
        let rel = facts.n_params as f64 / preset.published_params as f64 - 1.0;
        eprintln!(
            "{:24} {:>16} params ({:+.2}% vs published), {:.2} GB{}",
            preset.name,
            file.n_params(),
            rel * 100.0,
            report.file_bytes as f64 / 1e9,
            if sparse { " (sparse)" } else { "" }
        );
        assert!(
            rel.abs() < 0.01,
            "{}: {} vs {}",
            preset.name,
            facts.n_params,
            preset.published_params
        );
        if let Some(active) = preset.published_active_params {
            // ModelFacts counts one embedding row per token (what is read); the cards count the
            // whole embedding table as activated, and round ("3.3B", "22B", "35B"): 5%.
            let card_style =
                facts.active_params + facts.embedding_params - facts.embedding_row_params;
            let rel_active = card_style as f64 / active as f64 - 1.0;
            eprintln!(
                "{:24} {:>16} active params per token, {card_style} counted as the card does ({:+.2}%)",
                "",
                facts.active_params,
                rel_active * 100.0
            );
            assert!(
                rel_active.abs() < 0.05,
                "{}: active {card_style} vs {active}",
                preset.name
            );
        }
        assert_eq!(file.tensor_bytes(), plan::tensor_bytes(&recipe.plan()));
        assert_eq!(file.file_bytes, std::fs::metadata(&path).unwrap().len());
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn cycle_layout_adds_an_untied_output_only_to_tied_presets() {
    for preset in presets::all() {
        let tied = published_layout(preset.name, QuantMix::F16);
        let cycle = Recipe::preset(preset.name, QuantMix::F16).unwrap();
        let extra = plan::n_params(&cycle.plan()) - plan::n_params(&tied.plan());
        let want = if preset.shape.tied_embeddings {
            preset.shape.n_vocab * preset.shape.n_embd
        } else {
            0
        };
        assert_eq!(extra, want, "{}", preset.name);
    }
}

#[test]
fn ensure_model_reuses_the_cached_file_and_separates_recipes() {
    let dir = tempfile::tempdir().unwrap();
    let mut shape = presets::by_name("qwen2.5-0.5b").unwrap().shape;
    (shape.n_layer, shape.n_vocab) = (2, 4096);
    let spec = BehaviorSpec::Cycle {
        cycle_len: 16,
        seed: 3,
        diverge: 0.0,
    };
    let recipe = Recipe::new("tiny", shape.clone(), QuantMix::Q8_0, spec, None).unwrap();
    let first = synth::ensure_model(&recipe, dir.path()).unwrap();
    let mtime = std::fs::metadata(&first).unwrap().modified().unwrap();
    let again = synth::ensure_model(&recipe, dir.path()).unwrap();
    assert_eq!(first, again);
    assert_eq!(
        std::fs::metadata(&again).unwrap().modified().unwrap(),
        mtime,
        "rewritten"
    );
    let spec2 = BehaviorSpec::Cycle {
        cycle_len: 16,
        seed: 3,
        diverge: 0.25,
    };
    let draft = Recipe::new("tiny", shape, QuantMix::Q8_0, spec2, None).unwrap();
    let other = synth::ensure_model(&draft, dir.path()).unwrap();
    assert_ne!(first, other);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "temporary files left behind: {names:?}");
}
