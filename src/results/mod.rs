//! Result files: the versioned CSV schema, raw repetitions as JSON Lines, durable writes.


