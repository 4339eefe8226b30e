//! The engine seam: what the run loop needs from an inference engine, apart from any one
//! engine. A typed launch ([`LaunchSpec`]), the request the loop sends and the raw record it
//! gets back ([`request`]), and the two traits the loop drives ([`Backend`] launches servers,
//! [`ServerHandle`] is one running server). llama.cpp is the engine tpsbench measures; its implementation
//! (discovery, build, identity, capabilities, the server process, the HTTP protocol) lives
//! in `crate::llamacpp`, below which nothing knows llama.cpp.

pub mod backend;
pub mod launch;
pub mod request;

pub use backend::{Backend, CpuTimes, ServerHandle};
pub use launch::{LaunchSpec, SpeculativeArgs};
