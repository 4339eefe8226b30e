//! The preset shapes `profile::shapes` plans with agree with the presets `synth` builds
//! stand-ins from, and every `synthetic` of a shipped profile names a buildable preset.

use tpsbench::profile::{self, shapes};
use tpsbench::synth::presets;

#[test]
fn planner_shapes_match_the_synth_presets() {
    for shape in shapes::PRESETS {
        let preset =
            presets::by_name(shape.name).unwrap_or_else(|| panic!("synth lacks {}", shape.name));
        let s = &preset.shape;
        assert_eq!(shape.n_layer, s.n_layer, "{}", shape.name);
        assert_eq!(shape.n_head_kv, s.n_head_kv, "{}", shape.name);
        assert_eq!(u64::from(shape.head_dim), s.head_dim, "{}", shape.name);
        assert_eq!(shape.context_length, s.context_length, "{}", shape.name);
        let experts = s.is_moe().then_some((s.n_expert, s.n_expert_used));
        assert_eq!(shape.experts, experts, "{}", shape.name);
        let params_b = preset.published_params as f64 / 1e9;
        assert!((shape.params_b - params_b).abs() < 1e-9, "{}", shape.name);
        let active_b = preset.published_active_params.map(|p| p as f64 / 1e9);
        assert_eq!(shape.active_params_b, active_b, "{}", shape.name);
    }
    assert_eq!(
        shapes::PRESETS.len(),
        presets::names().len(),
        "a synth preset is missing from profile::shapes"
    );
}

#[test]
fn every_synthetic_role_names_a_synth_preset() {
    for (name, _) in profile::EMBEDDED {
        for role in profile::load(name).unwrap().roles {
            if let Some(preset) = &role.synthetic {
                assert!(
                    presets::by_name(preset).is_some(),
                    "{name}/{}: {preset}",
                    role.name
                );
            }
        }
    }
}

#[test]
fn every_synthetic_role_has_a_quant_synth_can_lay_out() {
    for (name, _) in profile::EMBEDDED {
        for role in profile::load(name).unwrap().roles {
            if role.synthetic.is_some() {
                let quant = role.quant.as_deref().unwrap_or("(none)");
                let mix = quant.parse::<tpsbench::synth::QuantMix>();
                assert!(
                    mix.is_ok(),
                    "{name}/{}: --synthetic cannot build {quant}",
                    role.name,
                );
            }
        }
    }
}
