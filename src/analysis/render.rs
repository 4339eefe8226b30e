//! A plain table of strings and its renderings: terminal (comfy-table), Markdown and CSV.
//! Each command builds a [`Table`]; choosing the output format is then one match.

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement};

/// Output format of `compare` (and of the tables of `calibrate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Terminal table.
    Table,
    /// Markdown table.
    Md,
    /// CSV.
    Csv,
    /// JSON (the whole structure, not the table).
    Json,
}

/// Headings and rows of strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column headings.
    pub headers: Vec<String>,
    /// Rows; each as long as `headers`.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headings.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Terminal rendering.
    pub fn terminal(&self) -> String {
        let mut t = comfy_table::Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(&self.headers);
        for r in &self.rows {
            t.add_row(r);
        }
        t.to_string() + "\n"
    }

    /// Markdown rendering (pipes in cells escaped).
    pub fn markdown(&self) -> String {
        let esc = |s: &String| s.replace('|', "\\|");
        let mut out = format!(
            "| {} |\n",
            self.headers.iter().map(esc).collect::<Vec<_>>().join(" | ")
        );
        out += &format!("|{}\n", "---|".repeat(self.headers.len()));
        for r in &self.rows {
            out += &format!(
                "| {} |\n",
                r.iter().map(esc).collect::<Vec<_>>().join(" | ")
            );
        }
        out
    }

    /// CSV rendering.
    pub fn csv(&self) -> anyhow::Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.headers)?;
        for r in &self.rows {
            w.write_record(r)?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }

    /// Rendering for a non-JSON format.
    pub fn render(&self, format: Format) -> anyhow::Result<String> {
        match format {
            Format::Table => Ok(self.terminal()),
            Format::Md => Ok(self.markdown()),
            Format::Csv => self.csv(),
            Format::Json => anyhow::bail!("JSON is rendered from the data, not from a table"),
        }
    }
}

/// A number with a sensible number of digits for its size.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 0.1 || v == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1e}")
    }
}

/// `1.23 [1.10, 1.38]`, or `1.23 [no CI]`.
pub fn ratio_text(r: &super::stats::RatioCi) -> String {
    if r.has_ci() {
        format!("{:.3} [{:.3}, {:.3}]", r.ratio, r.low, r.high)
    } else {
        format!("{:.3} [no CI]", r.ratio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_csv() {
        let mut t = Table::new(["a", "b|c"]);
        t.push(vec!["1".into(), "x,y".into()]);
        assert_eq!(t.markdown(), "| a | b\\|c |\n|---|---|\n| 1 | x,y |\n");
        assert_eq!(t.csv().unwrap(), "a,b|c\n1,\"x,y\"\n");
        assert!(t.terminal().contains("x,y"));
        assert_eq!(num(123.456), "123");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(1.2345), "1.23");
        assert_eq!(num(0.0034), "3.4e-3");
    }
}
