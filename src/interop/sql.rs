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

use std::path::Path;

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

/// Whether a file's text is llama-bench's `-o sql` (its first statement).
pub fn is_sql(text: &str) -> bool {
    let start = text.trim_start();
    start.starts_with("CREATE TABLE") || start.starts_with("INSERT INTO")
}

/// The records of llama-bench's `-o sql` text: one per `INSERT INTO llama_bench` line (the
/// `CREATE TABLE` and anything else is skipped). A value is typed by its column as
/// llama-bench declares it; a column it does not declare is kept as text. An `INSERT` that
/// does not parse is an error naming the file and line.
pub fn parse(text: &str, path: &Path) -> anyhow::Result<Vec<LlamaBenchTest>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.trim().strip_prefix("INSERT INTO llama_bench (") else {
            continue;
        };
        let at = |why: String| anyhow::anyhow!("{}:{}: {why}", path.display(), i + 1);
        let fields = insert_fields(rest).map_err(at)?;
        let record = serde_json::from_value(Value::Object(fields))
            .map_err(|e| at(format!("not a llama-bench record: {e}")))?;
        out.push(record);
    }
    Ok(out)
}

/// `c1, c2) VALUES ('v1', 'v2');` as a JSON object of typed values.
fn insert_fields(rest: &str) -> Result<Map<String, Value>, String> {
    let (columns, values) = rest
        .split_once(") VALUES (")
        .ok_or("no `) VALUES (` in the INSERT")?;
    let values = values
        .trim_end()
        .strip_suffix(");")
        .ok_or("the INSERT does not end with `);`")?;
    let names: Vec<&str> = columns.split(',').map(str::trim).collect();
    let texts = quoted_values(values)?;
    if names.len() != texts.len() {
        return Err(format!(
            "{} columns but {} values",
            names.len(),
            texts.len()
        ));
    }
    let mut fields = Map::new();
    for (name, text) in names.into_iter().zip(texts) {
        fields.insert(name.to_owned(), typed(name, text)?);
    }
    Ok(fields)
}

/// The values of `'a', 'b''c'`: each in single quotes, a doubled quote standing for one.
fn quoted_values(list: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = list.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('\'') {
            return Err(format!("value {} is not in single quotes", out.len() + 1));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\'') if chars.next_if_eq(&'\'').is_some() => value.push('\''),
                Some('\'') => break,
                Some(c) => value.push(c),
                None => return Err(format!("value {} has no closing quote", out.len() + 1)),
            }
        }
        out.push(value);
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            Some(',') => {}
            None => return Ok(out),
            Some(c) => return Err(format!("`{c}` after value {}", out.len())),
        }
    }
}

/// A value's text as its column's type.
fn typed(name: &str, text: String) -> Result<Value, String> {
    let column = COLUMNS.iter().find(|(n, _)| *n == name).map(|(_, c)| *c);
    let bad = |e: &dyn std::fmt::Display| format!("{name} = '{text}': {e}");
    Ok(match column {
        Some(Column::Integer) => Value::from(text.parse::<i64>().map_err(|e| bad(&e))?),
        Some(Column::Bool) => Value::from(text.parse::<i64>().map_err(|e| bad(&e))? != 0),
        Some(Column::Real) => Value::from(text.parse::<f64>().map_err(|e| bad(&e))?),
        Some(Column::Text) | None => Value::from(text),
    })
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

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn quoted_values_and_their_errors() {
        assert_eq!(quoted_values("'a', 'b''c' ,''").unwrap(), ["a", "b'c", ""]);
        assert!(quoted_values("'a', 2").unwrap_err().contains("value 2"));
        assert!(quoted_values("'a").unwrap_err().contains("closing quote"));
    }

    #[test]
    fn a_bad_value_names_its_file_and_line() {
        let text = "CREATE TABLE IF NOT EXISTS llama_bench (n_gen INTEGER);\n\n\
                    INSERT INTO llama_bench (model_filename, n_gen) VALUES ('m', 'x');\n";
        let e = parse(text, Path::new("lb.sql")).unwrap_err().to_string();
        assert!(e.starts_with("lb.sql:3: n_gen = 'x'"), "{e}");
    }
}
