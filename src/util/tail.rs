//! The end of a log file: the last lines of a server's log for an error message, the
//! newest progress line of a build log. Reads at most the last `max_bytes`, so a large log
//! costs no more than a small one.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes read from the end of a file by [`tail_lines`].
pub const TAIL_BYTES: u64 = 64 * 1024;

/// The last `max_bytes` of the file, lossily decoded.
pub fn read_tail(path: &Path, max_bytes: u64) -> io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(max_bytes)))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The last `n_lines` lines of the file (within its last [`TAIL_BYTES`]).
pub fn tail_lines(path: &Path, n_lines: usize) -> io::Result<String> {
    read_tail(path, TAIL_BYTES).map(|text| last_lines(&text, n_lines).to_string())
}

/// The last `n_lines` lines of `text`, without the final newline.
pub fn last_lines(text: &str, n_lines: usize) -> &str {
    if n_lines == 0 {
        return "";
    }
    let trimmed = text.trim_end_matches('\n');
    let start = trimmed
        .rmatch_indices('\n')
        .nth(n_lines - 1)
        .map_or(0, |(i, _)| i + 1);
    &trimmed[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\nb\nc", 5), "a\nb\nc");
        assert_eq!(last_lines("a\nb\n", 0), "");
    }

    #[test]
    fn reads_only_the_end_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        assert_eq!(read_tail(&path, 9).unwrap(), "line 999\n");
        assert_eq!(tail_lines(&path, 2).unwrap(), "line 998\nline 999");
        assert!(tail_lines(&dir.path().join("absent"), 2).is_err());
    }
}
