//! Result files: the versioned CSV schema, raw repetitions as JSON Lines, durable writes.
//!
//! A run writes one CSV row per cell ([`ResultRow`]) and, beside it with the same stem and a
//! `.jsonl` extension, one JSON line per request ([`RawRepetition`]). Each row and line is
//! flushed and fsynced the moment it is pushed, so a crash loses at most the cell in flight;
//! `--resume` reopens the pair with [`ResultWriter::append_to`], drops a torn last line and
//! the rows of interrupted cells, and [`finished_cells`] tells the driver what to skip.

mod columns;
pub mod db;
mod describe;
mod error;
mod fill;
pub mod load;
mod path;
mod raw;
mod reader;
mod row;
mod writer;

pub use columns::{column_docs, columns_markdown, ColumnDoc};
pub use error::ResultsError;
pub use path::{compact_utc, default_dir, default_path, utc_timestamp};
pub use raw::RawRepetition;
pub use reader::{decode_tps_by_cell, finished_cells, header, read_raw, read_results};
pub use row::{
    CellKey, Difference, ResultRow, Source, Status, NOISY_NOTE, OLDEST_READABLE, SCHEMA_VERSION,
};
pub use writer::{jsonl_path_for, ResultWriter};
