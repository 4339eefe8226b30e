//! `bench report` on the fixture CSVs: report.md with four SVG charts that need no font files
//! (text is plain `<text>` in a generic family; rendered to PNG by hand with cairosvg and
//! looked at, see docs/readme/analysis.md).

#[path = "fixtures/results/gen.rs"]
mod gen;

use assert_cmd::Command;

#[test]
fn writes_markdown_and_four_svg_charts() {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("bench")
        .unwrap()
        .arg("report")
        .arg(gen::dir().join("smoke-baseline.csv"))
        .arg("--out")
        .arg(dir.path())
        .assert()
        .success();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for chart in ["roofline.svg", "speedup.svg", "itl.svg", "acceptance.svg"] {
        assert!(
            md.contains(&format!("]({chart})")),
            "{chart} not linked:\n{md}"
        );
        let svg = std::fs::read_to_string(dir.path().join(chart)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{chart}"
        );
        assert!(svg.contains("<text"), "{chart} has no text");
        assert!(
            !svg.contains("url(") && !svg.contains("@font-face"),
            "{chart} needs external resources"
        );
    }
    let roof = std::fs::read_to_string(dir.path().join("roofline.svg")).unwrap();
    assert!(roof.contains("roofline: 44.0 GB/s / bytes") && roof.contains("235B MoE Q4"));
    let speed = std::fs::read_to_string(dir.path().join("speedup.svg")).unwrap();
    assert!(speed.contains("dense spec:16") && speed.contains("2.39x"));
    assert!(
        md.contains("| dense | synth-dense-f16.gguf | spec:16 | chat | 1 | 2 | 0 | ok | 113 |"),
        "{md}"
    );
    assert!(md.contains("## Calibration for ci-box"), "{md}");
    assert!(
        !md.contains("threads.svg") && !md.contains("depth.svg"),
        "no sweep, no sweep chart"
    );
}

#[test]
fn a_threads_and_depth_sweep_gets_its_two_charts() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    // The fixture's baseline cells at 1 and 2 threads and depths 0 and 256: the rates are
    // made up, the charts only arrange them.
    for (threads, depth, scale) in [(1, 0, 0.55), (2, 0, 1.0), (1, 256, 0.5), (2, 256, 0.9)] {
        for mut r in gen::smoke(&gen::CI_BOX, false, scale)
            .into_iter()
            .filter(|r| r.mode == "baseline" && r.role == "dense")
        {
            (r.threads, r.depth) = (threads, depth);
            rows.push(r);
        }
    }
    let csv = dir.path().join("swept.csv");
    std::fs::write(&csv, gen::csv_text(&rows)).unwrap();
    Command::cargo_bin("bench")
        .unwrap()
        .arg("report")
        .arg(&csv)
        .arg("--out")
        .arg(dir.path().join("out"))
        .assert()
        .success();
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    for (chart, line) in [
        ("threads.svg", "dense baseline chat depth 256"),
        ("depth.svg", "dense baseline chat t=2"),
    ] {
        assert!(md.contains(&format!("]({chart})")), "{chart}:\n{md}");
        let svg = std::fs::read_to_string(dir.path().join("out").join(chart)).unwrap();
        assert!(svg.contains(line), "{chart} lacks the line {line}");
    }
}

#[test]
fn cells_without_data_leave_a_note_instead_of_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<_> = gen::smoke(&gen::CI_BOX, false, 1.0)
        .into_iter()
        .filter(|r| r.mode == "baseline")
        .collect();
    let csv = dir.path().join("only-baselines.csv");
    std::fs::write(&csv, gen::csv_text(&rows)).unwrap();
    Command::cargo_bin("bench")
        .unwrap()
        .arg("report")
        .arg(&csv)
        .arg("--out")
        .arg(dir.path().join("out"))
        .assert()
        .success();
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(md.contains("Not drawn: no speedups to draw."), "{md}");
    assert!(md.contains("](roofline.svg)"), "{md}");
}

#[test]
fn itl_falls_back_to_the_raw_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = gen::smoke(&gen::CI_BOX, false, 1.0);
    let reps = gen::raw_reps(&rows);
    for r in &mut rows {
        (r.itl_p50_ms, r.itl_p90_ms, r.itl_p99_ms) = (None, None, None);
    }
    let (csv, jsonl) = gen::written(&rows, &reps);
    std::fs::write(dir.path().join("r.csv"), csv).unwrap();
    std::fs::write(dir.path().join("r.jsonl"), jsonl).unwrap();
    Command::cargo_bin("bench")
        .unwrap()
        .arg("report")
        .arg(dir.path().join("r.csv"))
        .arg("--out")
        .arg(dir.path().join("out"))
        .assert()
        .success();
    let svg = std::fs::read_to_string(dir.path().join("out/itl.svg")).unwrap();
    // The dense baseline decodes at 47.2 t/s: gaps of about 21 ms.
    assert!(
        svg.contains("dense baseline"),
        "ITL chart not drawn from raw gaps"
    );
}

#[test]
fn two_machines_called_vm_get_their_own_names_rooflines_and_marks() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, (cpu, bw, scale)) in [
        ("AMD EPYC 9V74", 30.0, 1.0),
        ("Intel Xeon 8480C", 60.0, 1.8),
    ]
    .into_iter()
    .enumerate()
    {
        let mut rows = gen::smoke(&gen::CI_BOX, false, scale);
        for r in &mut rows {
            (r.host, r.cpu_model, r.bandwidth_gbps) = ("vm".into(), cpu.into(), Some(bw));
            if i == 1 && r.mode == "lookup" {
                r.lossless = Some(false); // the second machine's lookup cells lost the output
            }
        }
        let csv = dir.path().join(format!("vm{i}.csv"));
        std::fs::write(&csv, gen::csv_text(&rows)).unwrap();
        paths.push(csv);
    }
    let out = dir.path().join("out");
    Command::cargo_bin("bench")
        .unwrap()
        .arg("report")
        .args(&paths)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("machine vm (AMD EPYC 9V74)"), "{md}");
    assert!(md.contains("machine vm (Intel Xeon 8480C)"), "{md}");
    let roof = std::fs::read_to_string(out.join("roofline.svg")).unwrap();
    assert!(
        roof.contains("vm (AMD EPYC 9V74): roofline 30.0 GB/s"),
        "one roofline each"
    );
    assert!(roof.contains("vm (Intel Xeon 8480C): roofline 60.0 GB/s"));
    let itl = std::fs::read_to_string(out.join("itl.svg")).unwrap();
    // every cell label names role, mode, workload and slots, and the lossy ones say so
    assert!(itl.contains("dense lookup chat np=1 [LOSSY]"), "{itl}");
    assert!(itl.contains("dense baseline chat np=1"), "{itl}");
}
