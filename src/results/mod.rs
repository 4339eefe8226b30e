//! Result files: the versioned CSV schema, raw repetitions as JSON Lines, durable writes.
//!
//! A run writes one CSV row per cell ([`ResultRow`]) and, beside it with the same stem and a
//! `.jsonl` extension, one JSON line per request ([`RawRepetition`]). Each row and line is
//! flushed and fsynced the moment it is pushed, so a crash loses at most the cell in flight;
//! `--resume` reopens the pair with [`ResultWriter::append_to`], drops a torn last line and
//! the rows of interrupted cells, and [`finished_cells`] tells the driver what to skip.

mod row;

pub use row::{CellKey, ResultRow, Status, SCHEMA_VERSION};
