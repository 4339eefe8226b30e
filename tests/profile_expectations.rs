//! A profile's `expectations` file written by `bench calibrate` replaces the guide's speed
//! table: the calibration pipeline's real output is read by `guide::Expectations`.

use assert_cmd::Command;
use tpsbench::guide::Expectations;
use tpsbench::profile::{self, ProfileSource};

#[test]
fn a_calibration_written_by_bench_calibrate_drives_a_profiles_expected_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/results/big-box.csv"
    );
    Command::cargo_bin("bench")
        .unwrap()
        .args(["calibrate", fixture, "--out"])
        .arg(dir.path())
        .assert()
        .success();
    let toml_path = dir.path().join("big-box.toml");
    let table = Expectations::load(&toml_path).unwrap();
    assert!(table.source.contains("big-box"), "{}", table.source);
    // Every row of the guide's speed table, with the host's predicted range (calibrate
    // adds rows for the other quants of each size and for the measured models).
    for label in [
        "0.5B Q8",
        "1.5B Q4",
        "7B Q4",
        "14B Q4",
        "32B Q4",
        "70B Q4",
        "235B MoE Q4",
        "480B MoE Q4",
    ] {
        assert!(
            table.rows.iter().any(|r| r.label == label),
            "no row {label}"
        );
    }
    let text = format!(
        "name = \"cal\"\nexpectations = \"{}\"\n[[roles]]\nname = \"workers\"\nsynthetic = \"qwen2.5-7b\"\nquant = \"Q4_K_M\"\ntier = \"HOT\"\n",
        toml_path.display()
    );
    let p = profile::parse(&text, ProfileSource::File("cal.toml".into())).unwrap();
    let range = p.roles[0]
        .expected_range(&p.load_expectations().unwrap(), None, None)
        .unwrap();
    assert_eq!(range.label, "7B Q4");
    assert!(range.source.contains("big-box"));
    let guide = p.roles[0]
        .expected_range(&Expectations::guide(), None, None)
        .unwrap();
    assert_eq!((guide.low_tps, guide.high_tps), (25.0, 40.0));
    assert_ne!(
        (range.low_tps, range.high_tps),
        (guide.low_tps, guide.high_tps)
    );
}
