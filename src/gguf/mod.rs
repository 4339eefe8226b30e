//! GGUF reader and writer: parses headers, metadata and tensor infos of GGUF v2/v3 files
//! (reading only the header region) and derives exact sizes from the tensor types.


