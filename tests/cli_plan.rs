//! `bench plan` from the command line: the production profile at three RAM sizes, JSON
//! output, and the errors of a broken or unknown profile.

use assert_cmd::Command;
use predicates::str::contains;
use serde_json::Value;

fn bench() -> Command {
    let mut cmd = Command::cargo_bin("bench").unwrap();
    // An empty models directory: every role is sized by the guide's formula.
    cmd.env("BENCH_MODELS_DIR", env!("CARGO_TARGET_TMPDIR"));
    cmd
}

fn plan_json(ram: &str) -> Value {
    let out = bench()
        .args(["plan", "--profile", "production", "--ram", ram, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn kept(plan: &Value) -> Vec<String> {
    let roles = plan["roles"].as_array().unwrap();
    roles
        .iter()
        .filter(|r| r["status"] == "kept")
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn production_fits_in_512_gb() {
    let plan = plan_json("512");
    assert_eq!(plan["fits_all"], true);
    assert_eq!(kept(&plan).len(), 7);
    assert_eq!(plan["guide_tier"], "FULL");
    let available = plan["budget"]["available_gb"].as_f64().unwrap();
    assert!((available - 419.2).abs() < 1e-9, "{available}");
    assert!(plan["roles"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["size"]["weights_source"] == "guide-formula"));
}

#[test]
fn production_in_128_gb_drops_the_warm_roles_in_scaling_down_order() {
    let plan = plan_json("128");
    assert_eq!(
        kept(&plan),
        [
            "frontdoor",
            "coder_escalation",
            "workers",
            "worker_vision",
            "draft"
        ]
    );
    let roles = plan["roles"].as_array().unwrap();
    let step = |name: &str| roles.iter().find(|r| r["name"] == name).unwrap()["drop_step"].as_u64();
    assert_eq!(step("architect_general"), Some(1));
    assert_eq!(step("ingest"), Some(2));
}

#[test]
fn production_in_32_gb_fits_nothing_and_says_which_tier_would() {
    bench()
        .args(["plan", "--profile", "production", "--ram", "32"])
        .assert()
        .success()
        .stdout(contains("fits: nothing"))
        .stdout(contains(
            "dropped: draft (0.5 GiB): draft model of roles that were all dropped",
        ))
        // A note: on stderr, apart from the report.
        .stderr(contains(
            "note: nothing fits: the guide's tier for 32.0 GiB is MINIMAL (profile `minimal`)",
        ));
}

#[test]
fn the_embedded_profile_is_used_outside_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    bench()
        .current_dir(dir.path())
        .args(["plan", "--profile", "basic", "--ram", "128"])
        .assert()
        .success()
        .stdout(contains("profile basic (<embedded profiles/basic.toml>"));
}

#[test]
fn a_broken_profile_is_reported_with_file_line_column_and_allowed_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    let text = "name = \"broken\"\n\n[[roles]]\nname = \"frontdoor\"\nparams_b = 7.0\nquant = \"Q4_K_M\"\ntier = \"HOT\"\nmodes = [\"baseline\", \"spec-16\"]\n";
    std::fs::write(&path, text).unwrap();
    let shown = format!("{}:8:22: unknown mode `spec-16`", path.display());
    bench()
        .args(["plan", "--profile", path.to_str().unwrap(), "--ram", "64"])
        .assert()
        .code(2)
        .stderr(contains(shown))
        .stderr(contains("allowed: baseline, spec:K"));
}

#[test]
fn an_unknown_key_lists_the_allowed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    std::fs::write(&path, "name = \"t\"\n[run]\nn_predictt = 5\n").unwrap();
    bench()
        .args(["plan", "--profile", path.to_str().unwrap(), "--ram", "64"])
        .assert()
        .code(2)
        .stderr(contains(format!(
            "{}:3:1: unknown field `n_predictt`, expected one of",
            path.display()
        )))
        .stderr(contains("`ci_target_pct`"));
}

#[test]
fn an_unknown_profile_name_lists_the_embedded_ones() {
    bench()
        .args(["plan", "--profile", "gigantic", "--ram", "64"])
        .assert()
        .code(2)
        .stderr(contains("no profile `gigantic`"))
        .stderr(contains(
            "embedded: dev, minimal, basic, standard, production, full",
        ));
}

#[test]
fn a_present_model_file_is_sized_exactly_and_a_broken_one_by_the_formula() {
    use tpsbench::gguf::{GgmlType, Value as Meta, Writer};
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new();
    w.metadata("general.architecture", Meta::String("qwen2".into()));
    w.metadata("qwen2.block_count", Meta::U32(2));
    w.metadata("qwen2.embedding_length", Meta::U32(256));
    w.metadata("qwen2.attention.head_count", Meta::U32(4));
    w.metadata("qwen2.attention.head_count_kv", Meta::U32(2));
    w.tensor("token_embd.weight", &[256, 512], GgmlType::Q8_0);
    let file = std::fs::File::create(dir.path().join("tiny.gguf")).unwrap();
    let file_bytes = w
        .write_to(file, |_, info, out: &mut dyn std::io::Write| {
            out.write_all(&vec![0u8; info.n_bytes as usize])
        })
        .unwrap();
    std::fs::write(dir.path().join("broken.gguf"), b"not a gguf").unwrap();
    let profile = dir.path().join("p.toml");
    let role = |name: &str, model: &str| {
        format!("[[roles]]\nname = \"{name}\"\nmodel = \"{model}\"\nquant = \"Q8_0\"\nparams_b = 1.0\ntier = \"HOT\"\nctx = 1000\n")
    };
    let text = format!(
        "name = \"p\"\n{}{}",
        role("frontdoor", "tiny.gguf"),
        role("workers", "broken.gguf")
    );
    std::fs::write(&profile, text).unwrap();
    let out = bench()
        .args([
            "plan",
            "--profile",
            profile.to_str().unwrap(),
            "--ram",
            "64",
            "--json",
        ])
        .args(["--models-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let exact = &plan["roles"][0]["size"];
    assert_eq!(exact["weights_source"], "gguf-exact");
    assert_eq!(exact["weights_bytes"], file_bytes);
    assert_eq!(exact["kv_source"], "gguf-exact");
    // 2 layers x 2 KV heads x (64 + 64) x 2 bytes x 1000 tokens.
    assert_eq!(exact["kv_bytes"], 1_024_000);
    let broken = &plan["roles"][1]["size"];
    assert_eq!(broken["weights_source"], "guide-formula");
    assert_eq!(broken["weights_bytes"], 1_100_000_000);
    assert!(broken["read_error"]
        .as_str()
        .unwrap()
        .contains("broken.gguf"));
}

#[test]
fn without_ram_the_plan_uses_this_machines_memtotal() {
    let out = bench()
        .args(["plan", "--profile", "dev", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["ram_source"], "this-machine");
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!((plan["ram_gib"].as_f64().unwrap() - kib / 1048576.0).abs() < 1e-6);
}

#[test]
fn the_smoke_profiles_custom_shapes_are_sized_by_their_stand_ins() {
    let out = bench()
        .args(["plan", "--profile", "smoke", "--ram", "24", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["fits_all"], true);
    for role in plan["roles"].as_array().unwrap() {
        assert_eq!(
            role["size"]["weights_source"], "synth-layout",
            "{}",
            role["name"]
        );
        assert_eq!(role["size"]["kv_source"], "synth-shape", "{}", role["name"]);
        assert!(role["size"]["weights_bytes"].as_u64().unwrap() > 0);
    }
}

#[test]
fn format_markdown_prints_the_plan_table_and_json_is_an_alias() {
    let run = |args: &[&str]| {
        let out = bench()
            .args(["plan", "--profile", "production", "--ram", "512"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(&["--json"]), run(&["--format", "json"]));
    let plan: Value = serde_json::from_str(&run(&["--json"])).unwrap();
    let md = run(&["--format", "markdown"]);
    assert!(md.contains("| role | tier | model |"), "{md}");
    assert!(md.contains("|---|"), "{md}");
    for role in plan["roles"].as_array().unwrap() {
        let name = role["name"].as_str().unwrap();
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no row for {name} in\n{md}"));
        let status = if role["status"] == "kept" {
            "fits"
        } else {
            "DROPPED"
        };
        assert!(row.ends_with(&format!("| {status} |")), "{row}");
    }
    assert!(md.contains("fits: "), "{md}");
}
