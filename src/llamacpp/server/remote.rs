//! A llama-server that tpsbench did not launch (`bench run --server-url URL`): which URLs
//! are accepted, and what the server says about itself in `/props` and `/slots` (its build,
//! its model, its slots and their context, whether it speculates). Pure: parsing and
//! policy only; the requests are made by the driver through [`crate::llamacpp::client::Client`].
//!
//! Only loopback hosts are accepted unless the user names another host explicitly
//! (`--allow-remote-host`): a measurement across a network measures the network too, and a
//! benchmark fires hundreds of requests at whatever answers.

use std::net::IpAddr;

/// Why a `--server-url` was refused; bad input (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("--server-url {url}: not a URL ({reason}); give http://127.0.0.1:PORT")]
    Unparsable { url: String, reason: String },
    #[error("--server-url {url}: the scheme must be http (llama-server serves plain HTTP), not {scheme}")]
    Scheme { url: String, scheme: String },
    #[error("--server-url {url}: give the server's root, without {what}")]
    Extra { url: String, what: &'static str },
    #[error(
        "--server-url {url}: {host} is not a loopback address; measuring a server across a network \
         measures the network too. Run bench on the server's machine with http://127.0.0.1:PORT, or \
         pass --allow-remote-host to measure it from here anyway"
    )]
    NotLoopback { url: String, host: String },
}

/// A checked `--server-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// `http://host:port` (with the API prefix, if any), no trailing slash: what the rows
    /// record and the client prefixes.
    pub base: String,
    /// The host as written (`127.0.0.1`, `[::1]`, `localhost`, `box1`).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The API prefix (`--api-prefix` of the server), empty or `/prefix`.
    pub prefix: String,
    /// A loopback host: the server runs on this machine.
    pub loopback: bool,
}

impl ServerUrl {
    /// Parses `text` and applies the host policy: loopback hosts (`127.0.0.0/8`, `::1`,
    /// `localhost`) always; any other host only with `allow_remote_host`.
    pub fn parse(text: &str, allow_remote_host: bool) -> Result<ServerUrl, UrlError> {
        let url = reqwest::Url::parse(text.trim()).map_err(|e| UrlError::Unparsable {
            url: text.to_string(),
            reason: e.to_string(),
        })?;
        let extra = |what| UrlError::Extra {
            url: text.to_string(),
            what,
        };
        if url.scheme() != "http" {
            return Err(UrlError::Scheme {
                url: text.to_string(),
                scheme: url.scheme().to_string(),
            });
        }
        if url.query().is_some() {
            return Err(extra("a query"));
        }
        if url.fragment().is_some() {
            return Err(extra("a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(extra("credentials"));
        }
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err(UrlError::Unparsable {
                url: text.to_string(),
                reason: "no host".into(),
            });
        };
        let loopback = is_loopback(host);
        if !loopback && !allow_remote_host {
            return Err(UrlError::NotLoopback {
                url: text.to_string(),
                host: host.to_string(),
            });
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let prefix = url.path().trim_end_matches('/');
        Ok(ServerUrl {
            base: format!("http://{host}:{port}{prefix}"),
            host: host.to_string(),
            port,
            prefix: prefix.to_string(),
            loopback,
        })
    }
}

/// `localhost`, or an IP address of the loopback interface (`127.0.0.0/8`, `::1`). Names
/// are not resolved: a name that happens to point at 127.0.0.1 still needs
/// `--allow-remote-host`, so that what is accepted is decided by what was typed.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// What `/props` says about a running server. In the pinned build it does not say whether
/// the server speculates (its generation settings are built from the sampling parameters
/// only): that is in `/slots` ([`SlotState`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerProps {
    /// `build_info` (`b6400-1a2b3c4d`; the pinned package says `b0-unknown`).
    pub build_info: String,
    /// The model file the server loaded, as the server names it (its path on its machine).
    pub model_path: String,
    /// The model's type as llama.cpp names it (`model_ftype`: `F16`, `Q4_K - Medium`).
    pub model_ftype: String,
    /// Slots (`-np` at its launch).
    pub total_slots: u32,
    /// Context of one slot, tokens (`default_generation_settings.n_ctx`).
    pub slot_ctx: u32,
}

/// What `/slots` says about one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotState {
    /// Slot number.
    pub id: u32,
    /// Its context, tokens.
    pub n_ctx: u32,
    /// It is working on a request now (another client's, when tpsbench sent none).
    pub is_processing: bool,
    /// It speculates (a draft model or an n-gram drafter was configured at launch).
    pub speculative: bool,
    /// The speculative types of the last request it served (`params["speculative.types"]`,
    /// the server's own: requests cannot change them in the pinned build); empty before its
    /// first request, and `none` left out.
    pub spec_types: Vec<String>,
}

/// How a server speculates, from its slots.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Speculation {
    /// Some slot speculates.
    pub configured: bool,
    /// The types, when a slot has served a request (else empty: not known yet).
    pub types: Vec<String>,
}

impl Speculation {
    /// From the slots: configured when any slot speculates; the first types any slot lists.
    pub fn of(slots: &[SlotState]) -> Speculation {
        Speculation {
            configured: slots.iter().any(|s| s.speculative),
            types: slots
                .iter()
                .map(|s| s.spec_types.clone())
                .find(|t| !t.is_empty())
                .unwrap_or_default(),
        }
    }

    /// For messages: `none`, `draft-simple`, `yes (type not known yet)`.
    pub fn describe(&self) -> String {
        match (self.configured, self.types.is_empty()) {
            (false, _) => "none".into(),
            (true, false) => self.types.join(","),
            (true, true) => "yes (type not known yet)".into(),
        }
    }
}

/// Parses a `/props` answer; the error says which field is missing.
pub fn parse_props(props: &serde_json::Value) -> Result<ServerProps, String> {
    let uint = |v: &serde_json::Value, name: &str| -> Result<u32, String> {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("/props has no {name} (is this a llama-server?)"))
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    Ok(ServerProps {
        build_info: text(&props["build_info"]),
        model_path: text(&props["model_path"]),
        model_ftype: text(&props["model_ftype"]),
        total_slots: uint(&props["total_slots"], "total_slots")?,
        slot_ctx: uint(
            &props["default_generation_settings"]["n_ctx"],
            "default_generation_settings.n_ctx",
        )?,
    })
}

/// Parses a `/slots` answer (an array of slots).
pub fn parse_slots(slots: &serde_json::Value) -> Result<Vec<SlotState>, String> {
    let list = slots
        .as_array()
        .ok_or("/slots is not a list of slots (is this a llama-server?)")?;
    list.iter()
        .map(|s| {
            let id = s["id"].as_u64().ok_or("a slot of /slots has no id")?;
            let types = s["params"]["speculative.types"]
                .as_str()
                .unwrap_or_default();
            Ok(SlotState {
                id: id as u32,
                n_ctx: s["n_ctx"].as_u64().unwrap_or(0) as u32,
                is_processing: s["is_processing"].as_bool().unwrap_or(false),
                speculative: s["speculative"].as_bool().unwrap_or(false),
                spec_types: types
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty() && *t != "none")
                    .map(String::from)
                    .collect(),
            })
        })
        .collect()
}

impl ServerProps {
    /// The file name of the server's model (`model_path` without directories).
    pub fn model_file_name(&self) -> String {
        let path = self.model_path.replace('\\', "/");
        path.rsplit('/').next().unwrap_or_default().to_string()
    }

    /// `llama-server build b0-unknown (remote)`: the engine identity the rows record.
    pub fn engine_version(&self) -> String {
        match self.build_info.as_str() {
            "" => "llama-server (remote; no build_info in /props)".into(),
            b => format!("llama-server build {b} (remote)"),
        }
    }
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
