//! Errors located in the text they come from: `file:line:column: message` and the source
//! line with a caret, for every text format the harness reads (profiles, expectation and
//! calibration files). One type, so that every such error looks the same.

/// An error located in its source text: file, line, column, message, source line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}:{column}: {message}\n{snippet}")]
pub struct LocatedError {
    /// File path or `<embedded ...>`.
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    /// What is wrong and what is allowed.
    pub message: String,
    /// The source line with a caret under the column.
    pub snippet: String,
}

impl LocatedError {
    /// An error at byte offset `at` of `text`.
    pub fn at(origin: &str, text: &str, at: usize, message: impl Into<String>) -> Self {
        let at = at.min(text.len());
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        let line = text[..at].matches('\n').count() + 1;
        let column = text[line_start..at].chars().count() + 1;
        let source_line = &text[line_start..line_end];
        let gutter = line.to_string();
        let pad = " ".repeat(gutter.len());
        let snippet = format!(
            "{pad} |\n{gutter} | {source_line}\n{pad} | {}^",
            " ".repeat(column - 1)
        );
        LocatedError {
            origin: origin.to_string(),
            line,
            column,
            message: message.into(),
            snippet,
        }
    }

    /// A TOML parse error as `file:line:column: message` (the file's start when toml gives
    /// no span).
    pub fn from_toml(origin: &str, text: &str, err: &toml::de::Error) -> Self {
        let at = err.span().map_or(0, |s| s.start);
        LocatedError::at(origin, text, at, err.message().trim_end().to_string())
    }
}
