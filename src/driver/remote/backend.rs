//! [`RemoteBackend`]: the run loop's [`Backend`] for a server that is already running. Its
//! "launch" is a handle to the URL once `/health` answers 200; it refuses what the server
//! cannot serve ([`super::server::serves`]), has no memory guard, and its `stop` leaves the
//! server running.

use super::server::{serves, RemoteServerInfo, INFO_TIMEOUT};
use crate::engine::backend::{Backend, CpuTimes, ServerHandle};
use crate::engine::request::{CompletionRecord, CompletionRequest};
use crate::engine::LaunchSpec;
use crate::llamacpp::client::Client;
use crate::util::error::error_chain;
use std::path::PathBuf;

/// The backend of `--server-url`: one running server, never launched, never stopped.
pub struct RemoteBackend {
    /// The server as read before the run.
    pub info: RemoteServerInfo,
    /// The local file standing for its model (`-m`, else its `model_path`).
    pub served: PathBuf,
}

impl Backend for RemoteBackend {
    type Server = RemoteServer;

    fn memory(&self) -> Result<(u64, u64), String> {
        Err("the memory guard does not apply to a running server".into())
    }

    fn guards_memory(&self) -> bool {
        false
    }

    fn refuses(&self, spec: &LaunchSpec) -> Option<String> {
        serves(&self.info, &self.served, spec).err()
    }

    /// A handle to the running server, once `/health` answers 200 (it may have stopped
    /// since the run began).
    fn launch(&mut self, _: &LaunchSpec, _: &str, _: u64) -> Result<RemoteServer, String> {
        let url = &self.info.url;
        let name = url.host.trim_start_matches('[').trim_end_matches(']');
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(name, url.port))
            .ok()
            .and_then(|mut a| a.next());
        let healthy = addr.and_then(|a| {
            crate::llamacpp::server::net::health_status_at(a, &url.host, &url.prefix, INFO_TIMEOUT)
        });
        if healthy != Some(200) {
            return Err(format!(
                "the server at {} does not answer /health with 200 (got {})",
                url.base,
                healthy.map_or_else(|| "no answer".to_string(), |s| s.to_string())
            ));
        }
        let client = Client::new(&url.base).map_err(|e| e.to_string())?;
        Ok(RemoteServer {
            client,
            url: url.base.clone(),
        })
    }
}

/// A handle to the running server: requests only.
pub struct RemoteServer {
    client: Client,
    url: String,
}

impl ServerHandle for RemoteServer {
    fn startup_ms(&self) -> (Option<f64>, Option<f64>) {
        (None, None)
    }

    async fn batch(
        &self,
        req: &CompletionRequest,
        parallel: u32,
    ) -> Result<Vec<CompletionRecord>, String> {
        let all = futures_util::future::join_all((0..parallel).map(|_| self.client.complete(req)));
        all.await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                format!(
                    "request to the server at {} failed: {}",
                    self.url,
                    error_chain(&e)
                )
            })
    }

    async fn request(&self, req: &CompletionRequest) -> Result<CompletionRecord, String> {
        // Nothing to race: the server is not ours, its exit shows as a refused request.
        self.client.complete(req).await.map_err(|e| e.reason())
    }

    /// Its log is on its own machine, not here.
    fn log_text(&self) -> String {
        String::new()
    }

    fn cpu_times(&self) -> CpuTimes {
        None
    }

    /// Leaves the server running: tpsbench did not start it.
    fn stop(self) {}
}
