//! The documentation of every CSV column, taken from the `///` comments of [`ResultRow`].
//!
//! Rust keeps no doc comments at run time, so the source of `row.rs` is embedded and its
//! `ResultRow` struct read field by field. The README's column table is this output, and a
//! test fails when the two differ (regenerate with
//! `TPSBENCH_BLESS=1 cargo test --test results_schema`).
//!
//! [`ResultRow`]: super::ResultRow

/// The source of the row definition.
const ROW_SOURCE: &str = include_str!("row.rs");

/// One column: its name and its documentation (unit in parentheses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDoc {
    /// Column name as in the CSV header.
    pub name: String,
    /// The field's `///` comment, lines joined with spaces.
    pub doc: String,
}

/// Every column of `ResultRow` in CSV order with its documentation.
pub fn column_docs() -> Vec<ColumnDoc> {
    let body = ROW_SOURCE
        .split("pub struct ResultRow {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .unwrap_or("");
    let mut docs = Vec::new();
    let mut pending: Vec<&str> = Vec::new();
    for line in body.lines().map(str::trim) {
        if let Some(doc) = line.strip_prefix("///") {
            pending.push(doc.trim());
        } else if let Some(field) = line.strip_prefix("pub ") {
            let name = field.split(':').next().unwrap_or("").trim().to_owned();
            docs.push(ColumnDoc {
                name,
                doc: pending.join(" "),
            });
            pending.clear();
        }
    }
    docs
}

/// The column table in Markdown: `| # | column | meaning and unit |`.
pub fn columns_markdown() -> String {
    let mut out = String::from("| # | column | meaning (unit) |\n|---|---|---|\n");
    for (i, c) in column_docs().iter().enumerate() {
        out.push_str(&format!(
            "| {} | `{}` | {} |\n",
            i + 1,
            c.name,
            c.doc.replace('|', "\\|")
        ));
    }
    out
}
