//! The llama-server process: spawn, readiness, crash detection, log capture, stop.


