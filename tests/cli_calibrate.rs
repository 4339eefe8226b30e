//! `bench calibrate` on the fixture CSVs: the Markdown tables shaped like the guide's, and an
//! expectations TOML that the profile module loads.

#[path = "fixtures/results/gen.rs"]
mod gen;

use assert_cmd::Command;
use tpsbench::guide::Expectations;

fn fixture(name: &str) -> String {
    gen::dir().join(name).display().to_string()
}

#[test]
fn calibrates_the_smoke_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("bench")
        .unwrap()
        .args(["calibrate", &fixture("smoke-baseline.csv"), "--out"])
        .arg(dir.path())
        .assert()
        .success();
    let md = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    // The roofline fit: 47.2 t/s measured against 44 GB/s / 0.646 GB = 68.1 t/s.
    assert!(md.contains("| F16 | dense | 1 | 0.693 |"), "{md}");
    // 0.32B-0.67B models: large enough that no small-model caveat is printed.
    assert!(!md.contains("**Note**: every measured model"), "{md}");
    // Every row of the guide's speed table, with the guide's range beside the prediction.
    for size in [
        "| 0.5B | Q8 |",
        "| 7B | Q4 |",
        "| 70B | Q4 |",
        "| 235B MoE | Q4 |",
        "| 480B MoE | Q4 |",
    ] {
        assert!(md.contains(size), "{size} missing:\n{md}");
    }
    assert!(md.contains("| 80.0-120 | 42.8 |"), "{md}");
    assert!(
        md.contains("| Speculative Decoding | 1.86-2.39x | 2 | 3-11x |"),
        "{md}"
    );
    assert!(md.contains("Fitted draft cost c = "), "{md}");
    assert!(
        md.contains(
            "| synth-qwen2.5-0.5b-q8_0.gguf (synthetic) | 0.63 | Q8_0 | 0.69 | 0.67 | +3.0% |"
        ),
        "{md}"
    );

    let toml_path = dir.path().join("ci-box.toml");
    let e = Expectations::load(&toml_path).unwrap();
    assert!(e.source.contains("ci-box"), "{}", e.source);
    // The measured F16 model now has an expectation of its own around its measured rate.
    let r = e.expected(0.323, "F16", false).unwrap();
    assert!(r.low_tps < 47.2 && 47.2 < r.high_tps, "{r:?}");
    // The guide's 7B Q4 row, recalibrated for this machine's bandwidth.
    let r = e.expected(7.0, "Q4_K_M", false).unwrap();
    assert!(r.high_tps < 25.0, "{r:?}");
    assert!(dir.path().join("ci-box.md").exists());
    assert!(dir.path().join("ci-box.fits.toml").exists());
}

#[test]
fn no_bandwidth_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = gen::smoke(&gen::CI_BOX, false, 1.0);
    for r in &mut rows {
        r.bandwidth_gbps = None;
    }
    let csv = dir.path().join("nobw.csv");
    std::fs::write(&csv, gen::csv_text(&rows)).unwrap();
    Command::cargo_bin("bench")
        .unwrap()
        .arg("calibrate")
        .arg(&csv)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("bandwidth"));
}
