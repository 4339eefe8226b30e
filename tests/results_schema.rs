//! Pins the results CSV format: header and one row as an insta snapshot, a write/read round
//! trip, and the README's column table generated from the struct's doc comments.

use std::path::Path;

use tpsbench::results::{
    column_docs, columns_markdown, header, read_results, CellKey, Difference, RawRepetition,
    ResultRow, ResultWriter, Source, Status, SCHEMA_VERSION,
};

/// A fully filled row as the driver would write it for a speculative cell.
fn sample_row() -> ResultRow {
    let key = CellKey {
        role: "hot-chat".into(),
        model_file: "qwen2.5-7b-instruct-q4_k_m.gguf".into(),
        model_arch: "qwen2".into(),
        model_n_params: 7_615_616_512,
        model_quant: "Q4_K_M".into(),
        model_tensor_bytes: 4_683_071_488,
        mode: "spec:16".parse().unwrap(),
        workload: "chat".into(),
        parallel: 1,
        ctx: 4096,
        threads: 2,
        depth: 4096,
        server_args: "-fa on -ctk q8_0".into(),
        load: String::new(),
        deploy_phase: String::new(),
        deploy_round: None,
    };
    ResultRow {
        reason: String::new(),
        timestamp_utc: "2026-11-27T12:00:00Z".into(),
        draft_model_file: "qwen2.5-0.5b-instruct-q8_0.gguf".into(),
        decode_tps_mean: Some(12.5),
        decode_tps_median: Some(12.4),
        decode_tps_sd: Some(0.25),
        decode_tps_ci95_low: Some(12.19),
        decode_tps_ci95_high: Some(12.81),
        decode_tps_min: Some(12.2),
        decode_tps_max: Some(12.9),
        n_reps: 5,
        n_outliers: 0,
        launches: 2,
        between_launch_cv: Some(0.031),
        client_decode_tps_mean: Some(12.1),
        prefill_tps_mean: Some(85.25),
        ttft_ms_mean: Some(420.5),
        itl_p50_ms: Some(70.1),
        itl_p90_ms: Some(95.0),
        itl_p99_ms: Some(180.0),
        step_ms_p50: Some(140.2),
        step_ms_p99: Some(190.0),
        e2e_ms_mean: Some(21_500.0),
        aggregate_tps: None,
        draft_n: Some(1600),
        draft_accepted: Some(1200),
        acceptance: Some(0.75),
        speedup: Some(1.8),
        speedup_ci95_low: Some(1.7),
        speedup_ci95_high: Some(1.9),
        speedup_pairs: Some(5),
        lossless: Some(false),
        agreement_share: Some(0.72),
        first_difference: Some(73),
        first_difference_margin: Some(0.017),
        difference: Some(Difference::NearTie),
        source: Source::Tpsbench,
        server_url: "http://127.0.0.1:8080".into(),
        host: "box1".into(),
        cpu_model: "AMD EPYC 7B13".into(),
        physical_cores: 2,
        logical_cores: 2,
        ram_gib: 15.6,
        isa: "avx2 fma f16c".into(),
        bandwidth_gbps: Some(18.5),
        bandwidth_centre_gbps: Some(17.2),
        bandwidth_spread_pct: Some(3.1),
        engine_version: "version: 11434 (abc1234)".into(),
        engine_package_version: "11434.0.0".into(),
        engine_server_sha256: "ab".repeat(32),
        engine_system_info: "CPU : SSE3 = 1 | AVX2 = 1 | FMA = 1".into(),
        engine_sha256: "ab".repeat(32),
        engine_variant: "native".into(),
        engine_self_test: "passed (9 models, 8.1 s)".into(),
        harness_version: "0.1.0".into(),
        harness_git_commit: "ad9ec63".into(),
        profile: "smoke".into(),
        profile_hash: "cd".repeat(32),
        model_file_bytes: 4_683_074_240,
        quant_mix: "Q4_K:3.9GB;Q6_K:0.8GB".into(),
        active_params: 7_615_616_512,
        active_bytes_per_token: 4_683_071_488,
        synthetic: false,
        guide_expected_low_tps: Some(8.0),
        guide_expected_high_tps: Some(15.0),
        roofline_tps: Some(3.95),
        roofline_share: Some(0.81),
        client_cpu_pct: Some(0.3),
        foreign_cpu_pct: Some(4.5),
        steal_pct: Some(0.2),
        server_load_ms: Some(1234.0),
        launch_to_ready_ms: Some(1500.0),
        prompt_tokens: Some(31),
        n_predict: 256,
        ..ResultRow::for_key(&key, Status::Ok)
    }
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn header_and_row_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.csv");
    let mut writer = ResultWriter::create(&path).unwrap();
    writer.push(&sample_row()).unwrap();
    insta::assert_snapshot!("csv_header_and_row", read_text(&path));
}

#[test]
fn schema_version_is_the_first_column() {
    assert_eq!(header()[0], "schema_version");
    assert_eq!(SCHEMA_VERSION, 5);
}

#[test]
fn round_trip_keeps_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/run.csv");
    let mut rows = vec![sample_row()];
    let mut failed = ResultRow::for_key(
        &CellKey {
            mode: "moe:2".parse().unwrap(),
            ..sample_row().key()
        },
        Status::Failed,
    );
    failed.reason = "server exited with signal 9\nlog tail: \"ggml_abort\", line 2".into();
    rows.push(failed);
    let mut skipped = ResultRow::for_key(
        &CellKey {
            mode: "lookup".parse().unwrap(),
            ..sample_row().key()
        },
        Status::ModeNotEffective,
    );
    skipped.reason = "no drafted tokens".into();
    rows.push(skipped);
    let mut writer = ResultWriter::create(&path).unwrap();
    for row in &rows {
        writer.push(row).unwrap();
    }
    assert_eq!(read_results(&path).unwrap(), rows);
}

#[test]
fn raw_repetitions_round_trip_as_json_lines() {
    use tpsbench::measure::{ChunkRaw, RequestRaw, ServerTimingsRaw};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.csv");
    let request = RequestRaw {
        first_byte: std::time::Duration::from_micros(1500),
        chunks: vec![ChunkRaw {
            at: std::time::Duration::from_millis(2),
            tokens: 1,
        }],
        end: std::time::Duration::from_millis(3),
        timings: ServerTimingsRaw {
            prompt_n: 4,
            prompt_ms: 1.5,
            predicted_n: 1,
            predicted_ms: 0.5,
            draft_n: None,
            draft_n_accepted: None,
        },
        token_ids: vec![42],
        top_two: Vec::new(),
    };
    let rep = RawRepetition::new(&sample_row().key(), 0, true, request);
    let mut writer = ResultWriter::create(&path).unwrap();
    writer.push_raw(&rep).unwrap();
    let text = read_text(&dir.path().join("run.jsonl"));
    assert_eq!(text.lines().count(), 1);
    assert!(
        text.starts_with("{\"schema_version\":5,\"role\":\"hot-chat\""),
        "{text}"
    );
    let back: RawRepetition = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(back, rep);
}

#[test]
fn every_column_is_documented_with_a_unit_or_value_set() {
    let docs = column_docs();
    let names: Vec<String> = docs.iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        names,
        header(),
        "column_docs must list the header's columns in order"
    );
    for c in &docs {
        assert!(!c.doc.is_empty(), "column {} has no doc comment", c.name);
    }
}

#[test]
fn readme_column_table_is_generated_from_the_struct() {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/readme/results.md");
    let text = read_text(&readme);
    let (begin, end) = ("<!-- columns:begin -->\n", "<!-- columns:end -->");
    let start = text.find(begin).expect("columns:begin marker") + begin.len();
    let stop = text.find(end).expect("columns:end marker");
    let table = columns_markdown();
    if std::env::var_os("TPSBENCH_BLESS").is_some() {
        let updated = format!("{}{}{}", &text[..start], table, &text[stop..]);
        std::fs::write(&readme, updated).unwrap();
        return;
    }
    assert_eq!(
        &text[start..stop],
        table,
        "regenerate with TPSBENCH_BLESS=1 cargo test --test results_schema"
    );
}

#[test]
fn raw_lines_read_back_per_cell_without_the_warm_up() {
    use std::time::Duration;
    use tpsbench::measure::{RequestRaw, ServerTimingsRaw};
    use tpsbench::results::{decode_tps_by_cell, read_raw};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.csv");
    let request = |predicted_ms: f64| RequestRaw {
        timings: ServerTimingsRaw {
            predicted_n: 10,
            predicted_ms,
            ..Default::default()
        },
        end: Duration::from_millis(1),
        ..RequestRaw::default()
    };
    let key = sample_row().key();
    let mut writer = ResultWriter::create(&path).unwrap();
    writer
        .push_raw(&RawRepetition::new(&key, 0, true, request(1000.0)))
        .unwrap();
    writer
        .push_raw(&RawRepetition::new(&key, 0, false, request(500.0)))
        .unwrap();
    writer
        .push_raw(&RawRepetition::new(&key, 1, false, request(250.0)))
        .unwrap();
    let reps = read_raw(writer.jsonl_path()).unwrap();
    assert_eq!(reps.len(), 3);
    // 10 tokens, the first from the prompt: 9 over 500 ms and over 250 ms.
    assert_eq!(decode_tps_by_cell(&reps)[&key], vec![18.0, 36.0]);

    let bad = dir.path().join("bad.jsonl");
    let text = std::fs::read_to_string(writer.jsonl_path()).unwrap();
    std::fs::write(
        &bad,
        text.replacen(
            &format!("\"schema_version\":{SCHEMA_VERSION}"),
            "\"schema_version\":7",
            1,
        ),
    )
    .unwrap();
    let err = read_raw(&bad).unwrap_err().to_string();
    assert!(
        err.contains("bad.jsonl:1: column `schema_version`"),
        "{err}"
    );
    std::fs::write(&bad, text.replacen("\"rep\":1", "\"rep\":\"x\"", 1)).unwrap();
    let err = read_raw(&bad).unwrap_err().to_string();
    assert!(err.contains("bad.jsonl:3: column "), "{err}");
}
