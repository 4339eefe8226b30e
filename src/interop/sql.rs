//! llama-bench's `-o sql` layout, written by `bench export --format llama-bench-sql` and read
//! by `bench import`: a `CREATE TABLE IF NOT EXISTS llama_bench (...)` and one
//! `INSERT INTO llama_bench (...) VALUES (...);` per test, so `sqlite3 llama-bench.sqlite`
//! takes our records beside llama-bench's own and `compare-llama-bench.py` reads the file.
//!
//! The columns, their order and their types are `test::get_fields` and
//! `test::get_field_type` of the pinned `tools/llama-bench/llama-bench.cpp`: the per-repetition
//! samples are not columns, nor are fields outside that list (a newer build's, or
//! `tpsbench_commit`), since an `INSERT` naming a column that a table made by llama-bench
//! lacks would fail. Values are written as its `get_values` writes them (booleans `0`/`1`,
//! rates with six decimals), each in single quotes; unlike llama-bench, a quote inside a value
//! is doubled so that the statement stays valid SQL.

use super::llama_bench::LlamaBenchTest;
use serde_json::{Map, Value};

/// SQL column type of a llama-bench field, as `get_field_type` decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Text,
    Integer,
    Bool,
    Real,
}

/// llama-bench's SQL columns in its order (`test::get_fields`).
const COLUMNS: [(&str, Column); 42] = [
    ("build_commit", Column::Text),
    ("build_number", Column::Integer),
    ("cpu_info", Column::Text),
    ("gpu_info", Column::Text),
    ("backends", Column::Text),
    ("model_filename", Column::Text),
    ("model_type", Column::Text),
    ("model_size", Column::Integer),
    ("model_n_params", Column::Integer),
    ("n_batch", Column::Integer),
    ("n_ubatch", Column::Integer),
    ("n_threads", Column::Integer),
    ("cpu_mask", Column::Text),
    ("cpu_strict", Column::Bool),
    ("poll", Column::Integer),
    ("type_k", Column::Text),
    ("type_v", Column::Text),
    ("n_gpu_layers", Column::Integer),
    ("n_cpu_moe", Column::Integer),
    ("split_mode", Column::Text),
    ("main_gpu", Column::Integer),
    ("no_kv_offload", Column::Bool),
    ("flash_attn", Column::Integer),
    ("devices", Column::Text),
    ("tensor_split", Column::Text),
    ("tensor_buft_overrides", Column::Text),
    ("load_mode", Column::Text),
    ("lazy_mode", Column::Text),
    ("embeddings", Column::Bool),
    ("no_op_offload", Column::Integer),
    ("no_host", Column::Bool),
    ("repack", Column::Bool),
    ("fit_target", Column::Integer),
    ("fit_min_ctx", Column::Integer),
    ("n_prompt", Column::Integer),
    ("n_gen", Column::Integer),
    ("n_depth", Column::Integer),
    ("test_time", Column::Text),
    ("avg_ns", Column::Integer),
    ("stddev_ns", Column::Integer),
    ("avg_ts", Column::Real),
    ("stddev_ts", Column::Real),
];

impl Column {
    /// The SQL type llama-bench declares (`sql_printer::get_sql_field_type`).
    fn sql_type(self) -> &'static str {
        match self {
            Column::Text => "TEXT",
            Column::Integer | Column::Bool => "INTEGER",
            Column::Real => "REAL",
        }
    }
}

/// The whole `-o sql` text of `tests`: the table, then one statement per test.
pub fn render(tests: &[LlamaBenchTest]) -> anyhow::Result<String> {
    let mut out = String::from("CREATE TABLE IF NOT EXISTS llama_bench (\n");
    for (i, (name, column)) in COLUMNS.iter().enumerate() {
        let comma = if i + 1 < COLUMNS.len() { "," } else { "" };
        out += &format!("  {name} {}{comma}\n", column.sql_type());
    }
    out += ");\n\n";
    let names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
    for t in tests {
        let Value::Object(fields) = serde_json::to_value(t)? else {
            anyhow::bail!("a llama-bench record is not a JSON object");
        };
        let values: Vec<String> = COLUMNS.iter().map(|c| quoted(&fields, *c)).collect();
        out += &format!(
            "INSERT INTO llama_bench ({}) VALUES ({});\n",
            names.join(", "),
            values.join(", ")
        );
    }
    Ok(out)
}

/// One value as llama-bench prints it, in single quotes.
fn quoted(fields: &Map<String, Value>, (name, column): (&str, Column)) -> String {
    let text = match (fields.get(name), column) {
        (Some(Value::Bool(b)), _) => u8::from(*b).to_string(),
        (Some(Value::Number(n)), Column::Real) => format!("{:.6}", n.as_f64().unwrap_or(0.0)),
        (Some(Value::Number(n)), _) => n.to_string(),
        (Some(Value::String(s)), _) => s.clone(),
        (Some(other), _) => other.to_string(),
        (None, _) => String::new(),
    };
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_insert_with_llama_benchs_value_forms() {
        let mut t = LlamaBenchTest {
            model_filename: "it's.gguf".into(),
            avg_ts: 12.5,
            ..LlamaBenchTest::default()
        };
        t.extra.insert("tpsbench_commit".into(), "abc".into());
        let sql = render(&[t]).unwrap();
        assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS llama_bench (\n  build_commit TEXT,\n"));
        assert!(sql.contains("  cpu_strict INTEGER,\n") && sql.contains("  stddev_ts REAL\n);"));
        let insert = sql.lines().find(|l| l.starts_with("INSERT")).unwrap();
        // quote doubled, booleans as digits, rates with six decimals, no extra column
        assert!(insert.contains("'it''s.gguf'"), "{insert}");
        assert!(insert.contains("'0x0', '0', '50'"), "{insert}");
        assert!(insert.ends_with("'12.500000', '0.000000');"), "{insert}");
        assert!(!insert.contains("tpsbench_commit"));
    }
}
