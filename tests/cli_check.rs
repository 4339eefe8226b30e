//! `bench check` on the fixture CSVs: exit 0 when nothing regressed, 1 with every regression
//! listed with its numbers, 2 on bad input; `--profile` says it is not available until wired.

#[path = "fixtures/results/gen.rs"]
mod gen;

use assert_cmd::Command;
use predicates::prelude::*;

fn fixture(name: &str) -> String {
    gen::dir().join(name).display().to_string()
}

fn check(current: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("bench")
        .unwrap()
        .args([
            "check",
            "--baseline",
            &fixture("smoke-baseline.csv"),
            "--current",
            &fixture(current),
        ])
        .args(extra)
        .assert()
}

#[test]
fn noise_within_tolerance_passes() {
    check("smoke-current-ok.csv", &["--metrics", "all"])
        .code(0)
        .stdout(
            predicate::str::contains("0 regressed")
                .and(predicate::str::contains("REGRESSED").not()),
        );
}

#[test]
fn broken_acceleration_fails_with_numbers() {
    let out = check(
        "smoke-current-regressed.csv",
        &["--metrics", "ratio", "--tolerance", "5%"],
    )
    .code(1);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("REGRESSED dense [qwen2 0.32B F16] spec:16 chat np=1: speedup: 2.39 -> 1.06 x (current/baseline 0.442 ["), "{text}");
    assert!(
        text.contains("spec:4 chat np=1: status: ok -> mode-not-effective"),
        "{text}"
    );
    assert!(
        text.contains("lookup chat np=1: lossless: true -> false"),
        "{text}"
    );
    assert!(text.contains("acceptance: 1.00 -> 0.52"), "{text}");
    assert!(text.contains("4 regressed"), "{text}");
    // Short enough for a CI log.
    assert!(text.lines().count() <= 12, "{text}");
}

#[test]
fn a_huge_tolerance_lets_the_speedup_through_but_not_lossless() {
    let out = check(
        "smoke-current-regressed.csv",
        &["--metrics", "ratio", "--tolerance", "0.6"],
    )
    .code(1);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(!text.contains("speedup: 2.39"), "{text}");
    assert!(text.contains("lossless: true -> false"), "{text}");
}

#[test]
fn faster_machine_improves_absolute_and_warns() {
    check("big-box.csv", &["--metrics", "absolute"])
        .code(0)
        .stdout(
            predicate::str::contains("WARNING: inputs differ in threads")
                .and(predicate::str::contains("improved  dense"))
                .and(predicate::str::contains("... and 5 more")),
        );
}

#[test]
fn bad_input_exits_2() {
    check("malformed.csv", &[])
        .code(2)
        .stderr(predicate::str::contains("malformed.csv:2:"));
    check("does-not-exist.csv", &[])
        .code(2)
        .stderr(predicate::str::contains("does-not-exist.csv"));
    check("smoke-current-ok.csv", &["--tolerance", "lots"]).code(2);
}

#[test]
fn profile_runs_through_the_driver_and_bad_names_exit_2() {
    // `--profile` runs the profile with the driver first; an unknown profile is bad input and
    // nothing is launched.
    Command::cargo_bin("bench")
        .unwrap()
        .args([
            "check",
            "--baseline",
            &fixture("smoke-baseline.csv"),
            "--profile",
            "no-such-profile",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no profile `no-such-profile`"));
}
