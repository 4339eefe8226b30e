//! A row's fields as SQLite values and back, through the CSV's own text.
//!
//! Writing: the row's serde form gives each column's value: numbers stay integers or reals
//! (so `sqlite3` sorts and averages them), text stays text, an empty `Option` is NULL and a
//! boolean is the CSV's `true` / `false`. Reading: each value becomes the text the CSV holds
//! (an integer in decimal, a real in Rust's shortest round-trip form, NULL as empty) and the
//! record is deserialized exactly as the CSV reader does, so the two give equal rows.

use rusqlite::types::Value;

use crate::results::ResultRow;

/// The values of `row`, one per column of `header`, in its order.
pub fn row_values(row: &ResultRow, header: &[String]) -> Result<Vec<Value>, String> {
    let object = match serde_json::to_value(row) {
        Ok(serde_json::Value::Object(map)) => map,
        other => return Err(format!("a result row serializes as {other:?}")),
    };
    header
        .iter()
        .map(|column| match object.get(column) {
            Some(v) => value_of(column, v),
            None => Err(format!("column `{column}` is not a field of the row")),
        })
        .collect()
}

/// One field as an SQLite value.
fn value_of(column: &str, v: &serde_json::Value) -> Result<Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Text(b.to_string()),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Integer(i),
            (None, Some(_)) if n.is_u64() => {
                return Err(format!(
                    "column `{column}`: {n} does not fit SQLite's integers"
                ))
            }
            (None, Some(f)) => Value::Real(f),
            (None, None) => return Err(format!("column `{column}`: {n} is not a number")),
        },
        J::String(s) => Value::Text(s.clone()),
        J::Array(_) | J::Object(_) => return Err(format!("column `{column}` is not a scalar")),
    })
}

/// The CSV text of one stored value; `None` for NULL.
pub fn text_of(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Integer(i) => Ok(Some(i.to_string())),
        Value::Real(f) => Ok(Some(f.to_string())),
        Value::Text(s) => Ok(Some(s.clone())),
        Value::Blob(_) => Err("a blob where the results schema has a scalar".into()),
    }
}

/// The row of a stored record: `texts` in the order of `header`. A NULL column is left out
/// of the record, as a column a CSV of an older version lacks, so it reads as its default
/// (empty for an `Option`, which is what the CSV's empty cell means too).
pub fn row_of(texts: Vec<Option<String>>, header: &[String]) -> Result<ResultRow, String> {
    let (names, values): (Vec<&str>, Vec<String>) = header
        .iter()
        .zip(texts)
        .filter_map(|(name, text)| Some((name.as_str(), text?)))
        .unzip();
    csv::StringRecord::from(values)
        .deserialize::<ResultRow>(Some(&csv::StringRecord::from(names)))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_numbers_and_empty_is_null() {
        let row = ResultRow {
            parallel: 4,
            decode_tps_mean: Some(12.5),
            ram_gib: 16.0,
            lossless: Some(true),
            host: "007".into(),
            ..ResultRow::default()
        };
        let header = crate::results::header();
        let values = row_values(&row, &header).unwrap();
        let at = |name: &str| &values[header.iter().position(|c| c == name).unwrap()];
        assert_eq!(at("parallel"), &Value::Integer(4));
        assert_eq!(at("decode_tps_mean"), &Value::Real(12.5));
        assert_eq!(at("ram_gib"), &Value::Real(16.0));
        assert_eq!(at("lossless"), &Value::Text("true".into()));
        assert_eq!(at("host"), &Value::Text("007".into()));
        assert_eq!(at("speedup"), &Value::Null);
    }

    #[test]
    fn reals_come_back_bit_for_bit() {
        for f in [0.1, 1.0 / 3.0, 1e-300, 123_456_789.123_456_79, 2.5e17] {
            let text = text_of(&Value::Real(f)).unwrap().unwrap();
            assert_eq!(
                text.parse::<f64>().unwrap().to_bits(),
                f.to_bits(),
                "{text}"
            );
        }
    }
}
