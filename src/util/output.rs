//! The one output mechanism: every command that prints a table or a report builds a
//! [`Report`] (text and [`Table`]s) once and renders it in the [`Format`] the user chose
//! with `--format table|markdown|json|csv` ([`OutputArgs`]; `--json` is `--format json`).
//!
//! As hyperfine's exporters, rendering turns data into a `String` and does no I/O. The
//! terminal, Markdown and CSV renderings come from the same cells, so they hold the same
//! facts; JSON is the command's own serde structure (what `--json` printed before, which
//! users pipe into jq), or the tables' rows as objects for a command that has none.
//!
//! Architecture Invariant: this module sits at the bottom (std, serde, comfy-table, csv
//! and clap only); every command above uses it and it knows none of them.

use comfy_table::{presets, CellAlignment, ContentArrangement};
use serde::Serialize;

/// How a command prints what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Terminal table(s).
    Table,
    /// Markdown tables.
    #[value(alias = "md")]
    Markdown,
    /// JSON (the command's whole structure; stable field names).
    Json,
    /// CSV (the tables only; several tables are separated by a blank line).
    Csv,
}

/// The shared `--format` / `--json` arguments, flattened into each command's arguments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::Args)]
pub struct OutputArgs {
    /// Output format: table, markdown (or md), json or csv.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

impl OutputArgs {
    /// Arguments that ask for `format`.
    pub fn of(format: Format) -> OutputArgs {
        OutputArgs {
            format: Some(format),
            json: false,
        }
    }

    /// The chosen format, the terminal table when none was chosen.
    pub fn format(&self) -> Format {
        self.format_or(Format::Table)
    }

    /// The chosen format, `default` when none was chosen.
    pub fn format_or(&self, default: Format) -> Format {
        if self.json {
            return Format::Json;
        }
        self.format.unwrap_or(default)
    }
}

/// How a table looks on a terminal (Markdown and CSV look the same for every style).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Style {
    /// Every cell boxed, rows not separated (comfy-table's `UTF8_FULL_CONDENSED`).
    #[default]
    Grid,
    /// A box around the table and under the headings only (`UTF8_BORDERS_ONLY`).
    Borders,
    /// No lines, no headings, no trailing spaces: an aligned list of facts.
    Plain,
}

/// A title, headings, rows of cells and lines of notes after them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Shown above the table (may span lines); not part of CSV.
    pub title: Option<String>,
    /// Column headings.
    pub headers: Vec<String>,
    /// Rows; each as long as `headers`.
    pub rows: Vec<Vec<String>>,
    /// Lines shown below the table; not part of CSV.
    pub notes: Vec<String>,
    /// Terminal look.
    pub style: Style,
    /// Columns right-aligned on the terminal (by index).
    pub right: Vec<usize>,
}

impl Table {
    /// A table with these headings.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            ..Table::default()
        }
    }

    /// The same table with a title.
    pub fn titled(mut self, title: impl Into<String>) -> Table {
        self.title = Some(title.into());
        self
    }

    /// The same table in another terminal style.
    pub fn styled(mut self, style: Style) -> Table {
        self.style = style;
        self
    }

    /// The same table with these columns right-aligned on the terminal.
    pub fn right_aligned(mut self, columns: impl IntoIterator<Item = usize>) -> Table {
        self.right = columns.into_iter().collect();
        self
    }

    /// Appends a row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Appends a line of notes.
    pub fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }

    /// Terminal rendering: title, table, notes; ends with a newline.
    pub fn terminal(&self) -> String {
        let mut out = self.title.as_ref().map_or(String::new(), |t| line(t));
        out += &self.terminal_body();
        for n in &self.notes {
            out += &line(n);
        }
        out
    }

    fn terminal_body(&self) -> String {
        let mut t = comfy_table::Table::new();
        t.set_content_arrangement(ContentArrangement::Disabled);
        match self.style {
            Style::Grid => t.load_preset(presets::UTF8_FULL_CONDENSED),
            Style::Borders => t.load_preset(presets::UTF8_BORDERS_ONLY),
            Style::Plain => t.load_preset(presets::NOTHING),
        };
        if self.style != Style::Plain {
            t.set_header(&self.headers);
        }
        for r in &self.rows {
            t.add_row(r);
        }
        for i in &self.right {
            if let Some(c) = t.column_mut(*i) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        // Without borders comfy-table pads every line to the widest one; drop the padding.
        let text = t.to_string();
        text.lines().map(|l| line(l.trim_end())).collect()
    }

    /// Markdown rendering: title and notes as paragraphs, pipes in cells escaped.
    pub fn markdown(&self) -> String {
        let mut out = self
            .title
            .as_ref()
            .map_or(String::new(), |t| line(t) + "\n");
        out += &md_row(&self.headers);
        out += &format!("|{}\n", "---|".repeat(self.headers.len()));
        for r in &self.rows {
            out += &md_row(r);
        }
        if !self.notes.is_empty() {
            out += "\n";
            out += &self.notes.iter().map(|n| line(n)).collect::<String>();
        }
        out
    }

    /// CSV rendering: the headings and the rows.
    pub fn csv(&self) -> anyhow::Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.headers)?;
        for r in &self.rows {
            w.write_record(r)?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }

    /// The rows as JSON objects keyed by the headings, for a command without a structure
    /// of its own.
    pub fn json_rows(&self) -> serde_json::Value {
        let rows = self.rows.iter().map(|r| {
            let pairs = self.headers.iter().cloned().zip(r.iter().cloned());
            serde_json::Value::Object(pairs.map(|(k, v)| (k, v.into())).collect())
        });
        serde_json::Value::Array(rows.collect())
    }

    /// Rendering in `format`; JSON is [`Table::json_rows`].
    pub fn render(&self, format: Format) -> anyhow::Result<String> {
        Report::from(self.clone()).render(format, &self.json_rows())
    }
}

fn line(s: &str) -> String {
    format!("{s}\n")
}

fn md_row(cells: &[String]) -> String {
    let esc: Vec<String> = cells.iter().map(|s| s.replace('|', "\\|")).collect();
    format!("| {} |\n", esc.join(" | "))
}

/// One piece of a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Text printed as it is in the terminal and in Markdown (left out of CSV).
    Text(String),
    /// A table.
    Table(Table),
}

/// A command's whole output: text and tables, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The blocks, in order.
    pub blocks: Vec<Block>,
}

impl From<Table> for Report {
    fn from(t: Table) -> Report {
        Report {
            blocks: vec![Block::Table(t)],
        }
    }
}

impl Report {
    /// An empty report.
    pub fn new() -> Report {
        Report::default()
    }

    /// Appends text (in Markdown it is Markdown).
    pub fn text(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::Text(s.into()));
    }

    /// Appends a table.
    pub fn table(&mut self, t: Table) {
        self.blocks.push(Block::Table(t));
    }

    /// Appends tables separated by a blank line.
    pub fn tables(tables: impl IntoIterator<Item = Table>) -> Report {
        let mut r = Report::new();
        for (i, t) in tables.into_iter().enumerate() {
            if i > 0 {
                r.text("\n");
            }
            r.table(t);
        }
        r
    }

    /// The tables, in order.
    pub fn all_tables(&self) -> impl Iterator<Item = &Table> {
        self.blocks.iter().filter_map(|b| match b {
            Block::Table(t) => Some(t),
            Block::Text(_) => None,
        })
    }

    /// Terminal rendering.
    pub fn terminal(&self) -> String {
        self.concat(Table::terminal)
    }

    /// Markdown rendering.
    pub fn markdown(&self) -> String {
        self.concat(Table::markdown)
    }

    fn concat(&self, table: fn(&Table) -> String) -> String {
        let text = |b: &Block| match b {
            Block::Text(s) => s.clone(),
            Block::Table(t) => table(t),
        };
        self.blocks.iter().map(text).collect()
    }

    /// CSV rendering: every table, separated by a blank line.
    pub fn csv(&self) -> anyhow::Result<String> {
        let parts: anyhow::Result<Vec<String>> = self.all_tables().map(Table::csv).collect();
        Ok(parts?.join("\n"))
    }

    /// Rendering in `format`; `json` is what JSON shows (pretty-printed).
    pub fn render(&self, format: Format, json: &impl Serialize) -> anyhow::Result<String> {
        match format {
            Format::Table => Ok(self.terminal()),
            Format::Markdown => Ok(self.markdown()),
            Format::Csv => self.csv(),
            Format::Json => Ok(serde_json::to_string_pretty(json)? + "\n"),
        }
    }
}

/// The cells of every row of the Markdown tables in `md` as [`Table::markdown`] writes them
/// (header rows included, separator rows left out), trimmed: how a reader of a report, or a
/// test, gets the facts back out of it.
pub fn markdown_cells(md: &str) -> Vec<Vec<String>> {
    md.lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// Writes a rendering to stdout; a closed pipe (`bench size x | head`) is not an error.
pub fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
        Ok(()) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn sample() -> Table {
        let mut t = Table::new(["name", "t/s"]).titled("model m.gguf");
        t.push(vec!["a|b".into(), "1.5".into()]);
        t.push(vec!["c,d".into(), "22.0".into()]);
        t.note("note: two rows");
        t
    }

    #[test]
    fn terminal_grid_is_boxed_with_title_and_notes() {
        let expected = "model m.gguf\n\
            ┌──────┬──────┐\n\
            │ name ┆ t/s  │\n\
            ╞══════╪══════╡\n\
            │ a|b  ┆ 1.5  │\n\
            │ c,d  ┆ 22.0 │\n\
            └──────┴──────┘\n\
            note: two rows\n";
        assert_eq!(sample().terminal(), expected);
    }

    #[test]
    fn terminal_borders_right_aligned_and_plain() {
        let t = sample().right_aligned([1]).styled(Style::Borders);
        let text = t.terminal();
        let body: Vec<&str> = text.lines().skip(1).take(6).collect();
        let expected = [
            "┌─────────────┐",
            "│ name    t/s │",
            "╞═════════════╡",
            "│ a|b     1.5 │",
            "│ c,d    22.0 │",
            "└─────────────┘",
        ];
        assert_eq!(body, expected);
        let plain = Table {
            title: None,
            notes: vec![],
            ..sample().styled(Style::Plain)
        };
        assert_eq!(plain.terminal(), " a|b  1.5\n c,d  22.0\n");
    }

    #[test]
    fn markdown_escapes_pipes_and_keeps_title_and_notes() {
        let expected = "model m.gguf\n\n| name | t/s |\n|---|---|\n| a\\|b | 1.5 |\n\
            | c,d | 22.0 |\n\nnote: two rows\n";
        assert_eq!(sample().markdown(), expected);
        let bare = Table::new(["a", "b|c"]);
        assert_eq!(bare.markdown(), "| a | b\\|c |\n|---|---|\n");
    }

    #[test]
    fn csv_has_headings_and_rows_only() {
        assert_eq!(sample().csv().unwrap(), "name,t/s\na|b,1.5\n\"c,d\",22.0\n");
        let two = Report::tables([sample(), Table::new(["x"])]);
        assert_eq!(two.csv().unwrap(), "name,t/s\na|b,1.5\n\"c,d\",22.0\n\nx\n");
    }

    #[test]
    fn json_of_a_table_is_its_rows_as_objects() {
        let json = sample().render(Format::Json).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"name": "a|b", "t/s": "1.5"}, {"name": "c,d", "t/s": "22.0"}])
        );
    }

    #[test]
    fn a_report_interleaves_text_and_tables() {
        let mut r = Report::new();
        r.text("# Title\n\n");
        r.table(Table::new(["k"]));
        assert_eq!(r.markdown(), "# Title\n\n| k |\n|---|\n");
        assert!(r.terminal().starts_with("# Title\n\n┌"));
        assert_eq!(
            r.render(Format::Json, &[1, 2]).unwrap(),
            "[\n  1,\n  2\n]\n"
        );
    }

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        output: OutputArgs,
    }

    #[test]
    fn json_is_an_alias_of_format_json_and_md_of_markdown() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["x"], args].concat());
        assert_eq!(parse(&[]).unwrap().output.format(), Format::Table);
        assert_eq!(parse(&["--json"]).unwrap().output.format(), Format::Json);
        let md = parse(&["--format", "md"]).unwrap().output;
        assert_eq!(md.format(), Format::Markdown);
        assert_eq!(
            parse(&["--format", "csv"]).unwrap().output.format(),
            Format::Csv
        );
        assert!(parse(&["--json", "--format", "csv"]).is_err());
        assert_eq!(
            OutputArgs::default().format_or(Format::Markdown),
            Format::Markdown
        );
    }
}
