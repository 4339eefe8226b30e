//! The HTTP client of llama-server: streaming /completion requests with raw instants.


