//! What a running llama-server is and what it can serve: read once, before the first cell,
//! from `/health`, `/props` and `/slots` ([`connect`]); [`serves`] decides, for each launch
//! configuration the run loop would start, whether the running server already is it.

use crate::engine::request::CompletionRequest;
use crate::engine::LaunchSpec;
use crate::llamacpp::client::Client;
use crate::llamacpp::server::remote::{self, ServerProps, ServerUrl, SlotState, Speculation};
use crate::mode::Mode;
use crate::profile::DEFAULT_SPEC_K;
use anyhow::Context;
use std::path::Path;
use std::time::Duration;

/// Longest wait for `/health`, `/props` and `/slots`.
pub(super) const INFO_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server as read before the run.
#[derive(Debug, Clone)]
pub struct RemoteServerInfo {
    /// Its checked URL.
    pub url: ServerUrl,
    /// What `/props` says.
    pub props: ServerProps,
    /// What `/slots` says (`None` when the server was started with `--no-slots`).
    pub slots: Option<Vec<SlotState>>,
}

impl RemoteServerInfo {
    /// How it speculates (`None`: not known, without `/slots`).
    pub fn speculation(&self) -> Option<Speculation> {
        self.slots.as_deref().map(Speculation::of)
    }
}

/// Checks `/health`, then reads `/props` and `/slots`. Errors name the URL.
pub async fn connect(client: &Client, url: &ServerUrl) -> anyhow::Result<RemoteServerInfo> {
    let at = &url.base;
    let health = client.get_json("/health", INFO_TIMEOUT).await;
    match health {
        Ok(_) => {}
        Err(crate::llamacpp::client::ClientError::Status { status: 503, .. }) => anyhow::bail!(
            "the server at {at} is still loading its model (/health answered 503); try again when it is ready"
        ),
        Err(e) => {
            let cause = anyhow::Error::new(e).root_cause().to_string();
            anyhow::bail!("no llama-server answers at {at} (GET /health: {cause}); is it running?")
        }
    }
    let props = client
        .get_json("/props", INFO_TIMEOUT)
        .await
        .with_context(|| format!("reading {at}/props"))?;
    let props = remote::parse_props(&props).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
    let mut slots = read_slots(client, at).await?;
    let speculation = slots.as_deref().map(Speculation::of);
    if speculation.is_some_and(|s| s.configured && s.types.is_empty()) {
        // A slot lists the server's speculative types only once it has served a request.
        let one = CompletionRequest::new(crate::engine::request::Prompt::Text("Hello".into()), 1);
        client
            .complete(&one)
            .await
            .with_context(|| format!("a one-token request to {at}"))?;
        slots = read_slots(client, at).await?;
    }
    Ok(RemoteServerInfo {
        url: url.clone(),
        props,
        slots,
    })
}

/// `/slots`, or `None` when the server was started with `--no-slots` (it answers 501).
async fn read_slots(client: &Client, at: &str) -> anyhow::Result<Option<Vec<SlotState>>> {
    match client.get_json("/slots", INFO_TIMEOUT).await {
        Ok(v) => Ok(Some(
            remote::parse_slots(&v).map_err(|e| anyhow::anyhow!("{at}: {e}"))?,
        )),
        Err(crate::llamacpp::client::ClientError::Status { .. }) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {at}/slots")),
    }
}

impl RemoteServerInfo {
    /// One paragraph for stderr before the run: what the server is and what the run will do.
    pub fn describe(&self) -> String {
        let p = &self.props;
        let mut text = format!(
            "server at {}: {}, model {}, {} slot(s) of {} tokens, speculation: {}\n\
             nothing is launched and the server is never stopped; memory guard: off (the server \
             already holds its memory)",
            self.url.base,
            p.engine_version(),
            if p.model_path.is_empty() {
                "(not named in /props)"
            } else {
                &p.model_path
            },
            p.total_slots,
            p.slot_ctx,
            self.speculation()
                .map_or_else(|| "not known".to_string(), |s| s.describe())
        );
        if let Some(busy) = self.busy_slots() {
            text.push_str(&format!(
                "\nwarning: slot(s) {busy} of the server are working on another client's request; \
                 that work shares the machine with every measurement"
            ));
        }
        if self.slots.is_none() {
            text.push_str(
                "\nwarning: the server has no /slots endpoint (--no-slots), so whether it speculates \
                 is not known: a baseline on a speculating server would be measured as one",
            );
        }
        text
    }

    /// The slots busy now, `0, 2`, when any is.
    fn busy_slots(&self) -> Option<String> {
        let busy: Vec<String> = self
            .slots
            .as_deref()?
            .iter()
            .filter(|s| s.is_processing)
            .map(|s| s.id.to_string())
            .collect();
        (!busy.is_empty()).then(|| busy.join(", "))
    }

    /// The modes measured when `--modes` is not given: `baseline` and the server's own
    /// acceleration, when `/props` says which it is.
    pub fn default_modes(&self) -> Vec<Mode> {
        let own = self
            .speculation()
            .and_then(|s| server_mode(&s))
            .filter(|m| !m.is_baseline());
        std::iter::once(Mode::Baseline).chain(own).collect()
    }
}

/// The mode the server runs every request with, as far as its slots tell: `baseline`
/// without speculation; else its speculative types read back through the mode table:
/// `spec:K` for `draft-simple` (K = [`DEFAULT_SPEC_K`], since no endpoint tells the server's
/// draft length), `lookup:TYPE` for an n-gram type. `None` when it speculates and the type
/// is not known yet, or is one tpsbench does not launch (`draft-eagle3`): measured as a
/// mode of ours, it would be labelled as something it is not.
pub fn server_mode(speculation: &Speculation) -> Option<Mode> {
    if !speculation.configured {
        return Some(Mode::Baseline);
    }
    Mode::of_spec_types(&speculation.types, DEFAULT_SPEC_K).ok()
}

/// Whether the running server can serve `spec`: the launch configuration the run loop
/// would have started. `served` is the local file that stands for the server's model.
pub fn serves(info: &RemoteServerInfo, served: &Path, spec: &LaunchSpec) -> Result<(), String> {
    let (p, at) = (&info.props, &info.url.base);
    if !same_file(&spec.model, served) {
        return Err(format!(
            "the server at {at} serves {}, not {}: only its own model is measured",
            file_name(served),
            file_name(&spec.model)
        ));
    }
    if spec.parallel > p.total_slots {
        return Err(format!(
            "{} concurrent requests need {} slots; the server at {at} has {} (its -np)",
            spec.parallel, spec.parallel, p.total_slots
        ));
    }
    let slot_ctx = spec.ctx / spec.parallel.max(1);
    if slot_ctx > p.slot_ctx {
        return Err(format!(
            "a context of {slot_ctx} tokens per slot is more than the {} of the server at {at}",
            p.slot_ctx
        ));
    }
    if spec.moe_experts_used.is_some() {
        return Err(format!(
            "expert reduction is a launch option (--override-kv ...expert_used_count), and /props of \
             the server at {at} does not say whether it was given: not measurable on a running server"
        ));
    }
    match info.speculation() {
        Some(s) => speculation_served(&s, at, spec),
        None => Ok(()),
    }
}

/// A speculative launch needs a server that speculates the same way; a baseline one needs a
/// server that does not speculate at all (in the pinned build speculation cannot be turned
/// off per request).
fn speculation_served(s: &Speculation, at: &str, spec: &LaunchSpec) -> Result<(), String> {
    let Some(wanted) = &spec.spec else {
        return match s.configured {
            false => Ok(()),
            true => Err(format!(
                "the server at {at} speculates on every request ({}), so a baseline needs another \
                 server, started without speculation",
                s.describe()
            )),
        };
    };
    if !s.configured {
        return Err(format!(
            "speculation is a launch option (--spec-type {}{}), and the server at {at} was started \
             without it",
            wanted.types.join(","),
            if spec.draft.is_some() { " -md DRAFT" } else { "" }
        ));
    }
    let mut want = wanted.types.clone();
    let mut have = s.types.clone();
    want.sort();
    have.sort();
    if !have.is_empty() && want != have {
        return Err(format!(
            "the server at {at} speculates with {}, not {}",
            have.join(","),
            want.join(",")
        ));
    }
    Ok(())
}

/// The same file: the same canonical path when both exist here, else the same name.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.file_name() == b.file_name(),
    }
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
