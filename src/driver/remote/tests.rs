//! `--server-url` without a server of llama.cpp: what a running server serves (its model,
//! slots and speculation, as `/props` and `/slots` describe it), its default modes, the
//! rows' engine columns, and answers from a one-shot local listener.

use super::*;
use crate::engine::backend::{Backend, ServerHandle};
use crate::engine::LaunchSpec;
use crate::engine::SpeculativeArgs;
use crate::llamacpp::server::remote::SlotState;
use crate::mode::Mode;
use crate::profile::DEFAULT_SPEC_K;

/// A two-slot server of `/models/target.gguf`; `speculation` is what its slots say (`None`:
/// no `/slots`).
fn info(speculation: Option<(bool, &[&str])>) -> RemoteServerInfo {
    let slot = |id| {
        let (speculative, types) = speculation.unwrap_or((false, &[]));
        SlotState {
            id,
            n_ctx: 4096,
            is_processing: false,
            speculative,
            spec_types: types.iter().map(|t| t.to_string()).collect(),
        }
    };
    RemoteServerInfo {
        url: ServerUrl::parse("http://127.0.0.1:8080", false).unwrap(),
        props: ServerProps {
            build_info: "b0-unknown".into(),
            model_path: "/models/target.gguf".into(),
            model_ftype: "F16".into(),
            total_slots: 2,
            slot_ctx: 4096,
        },
        slots: speculation.map(|_| vec![slot(0), slot(1)]),
    }
}

fn plain() -> RemoteServerInfo {
    info(Some((false, &[])))
}

fn drafting() -> RemoteServerInfo {
    info(Some((true, &["draft-simple"])))
}

fn spec(parallel: u32) -> LaunchSpec {
    let mut spec = LaunchSpec::new("/local/target.gguf");
    spec.parallel = parallel;
    spec.ctx = 4096 * parallel;
    spec
}

fn speculative(types: &[&str], k: Option<u32>) -> LaunchSpec {
    let mut s = spec(1);
    s.spec = Some(SpeculativeArgs {
        types: types.iter().map(|t| t.to_string()).collect(),
        draft_n_max: k,
    });
    s
}

const SERVED: &str = "/local/target.gguf";

#[test]
fn a_plain_server_serves_baselines_of_its_model_within_its_slots() {
    let i = plain();
    let served = Path::new(SERVED);
    assert_eq!(serves(&i, served, &spec(1)), Ok(()));
    assert_eq!(serves(&i, served, &spec(2)), Ok(()));
    assert_eq!(
        serves(&i, served, &spec(4)).unwrap_err(),
        "4 concurrent requests need 4 slots; the server at http://127.0.0.1:8080 has 2 (its -np)"
    );
    let mut bigger = spec(1);
    bigger.ctx = 8192;
    assert!(serves(&i, served, &bigger)
        .unwrap_err()
        .contains("more than the 4096"));
    let mut other = spec(1);
    other.model = "/local/draft.gguf".into();
    assert_eq!(
        serves(&i, served, &other).unwrap_err(),
        "the server at http://127.0.0.1:8080 serves target.gguf, not draft.gguf: only its own model \
         is measured"
    );
    let mut moe = spec(1);
    moe.moe_experts_used = Some(("qwen3moe".into(), 4));
    assert!(serves(&i, served, &moe)
        .unwrap_err()
        .contains("not measurable on a running server"));
    assert_eq!(
        serves(&i, served, &speculative(&["draft-simple"], Some(8))).unwrap_err(),
        "speculation is a launch option (--spec-type draft-simple), and the server at \
         http://127.0.0.1:8080 was started without it"
    );
}

#[test]
fn a_speculating_server_serves_only_its_own_speculation() {
    let i = drafting();
    let served = Path::new(SERVED);
    // No endpoint tells the draft length: K is the caller's.
    for k in [8, 16] {
        assert_eq!(
            serves(&i, served, &speculative(&["draft-simple"], Some(k))),
            Ok(())
        );
    }
    assert_eq!(
        serves(&i, served, &speculative(&["ngram-simple"], None)).unwrap_err(),
        "the server at http://127.0.0.1:8080 speculates with draft-simple, not ngram-simple"
    );
    assert!(serves(&i, served, &spec(1)).unwrap_err().contains(
        "speculates on every request (draft-simple), so a baseline needs another server"
    ));
}

#[test]
fn the_default_modes_are_baseline_and_the_servers_own() {
    assert_eq!(plain().default_modes(), [Mode::Baseline]);
    assert_eq!(
        drafting().default_modes(),
        [Mode::Baseline, Mode::Spec { k: DEFAULT_SPEC_K }]
    );
    assert_eq!(
        info(Some((true, &["ngram-simple"]))).default_modes(),
        [
            Mode::Baseline,
            Mode::Lookup {
                spec_type: Some("ngram-simple".into())
            }
        ]
    );
    let unknown = info(Some((true, &[])));
    assert_eq!(server_mode(&unknown.speculation().unwrap()), None);
    assert_eq!(unknown.default_modes(), [Mode::Baseline]);
    // A draft type tpsbench does not launch is not read back as spec:K.
    let eagle = info(Some((true, &["draft-eagle3"])));
    assert_eq!(server_mode(&eagle.speculation().unwrap()), None);
    assert_eq!(eagle.default_modes(), [Mode::Baseline]);
    let combined = info(Some((true, &["draft-simple", "ngram-mod"])));
    assert_eq!(
        server_mode(&combined.speculation().unwrap()).map(|m| m.to_string()),
        Some(format!("spec:{DEFAULT_SPEC_K}+lookup:ngram-mod"))
    );
    // Without /slots nothing is known, and nothing is refused for speculation.
    let no_slots = info(None);
    assert_eq!(no_slots.default_modes(), [Mode::Baseline]);
    assert_eq!(serves(&no_slots, Path::new(SERVED), &spec(1)), Ok(()));
}

#[test]
fn rows_say_the_engine_is_remote_and_name_the_url() {
    let mut row = ResultRow::default();
    stamp_engine(&mut row, &plain());
    assert_eq!(row.server_url, "http://127.0.0.1:8080");
    assert_eq!(row.engine_version, "llama-server build b0-unknown (remote)");
    assert_eq!(row.engine_sha256, "unknown");
    assert_eq!(row.engine_server_sha256, "unknown");
    assert_eq!(row.engine_variant, "remote");
}

/// A listener on `addr` that answers one request with `status` and closes.
fn answer_once(addr: &str, status: u16) -> Option<u16> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind(addr).ok()?;
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let _ = write!(conn, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
        }
    });
    Some(port)
}

fn backend_at(url: &str) -> RemoteBackend {
    let mut i = plain();
    i.url = ServerUrl::parse(url, false).unwrap();
    RemoteBackend {
        info: i,
        served: SERVED.into(),
    }
}

#[test]
fn a_handle_is_given_only_while_the_server_is_healthy_and_stopping_it_does_nothing() {
    let port = answer_once("127.0.0.1:0", 200).unwrap();
    let mut b = backend_at(&format!("http://127.0.0.1:{port}"));
    let handle = b.launch(&spec(1), "unused.log", 0).unwrap();
    assert_eq!(handle.startup_ms(), (None, None));
    assert_eq!(handle.log_text(), "");
    handle.stop();
    assert!(!b.guards_memory());
    // Loading (503), and nothing listening.
    let port = answer_once("127.0.0.1:0", 503).unwrap();
    let err = backend_at(&format!("http://127.0.0.1:{port}"))
        .launch(&spec(1), "unused.log", 0)
        .err()
        .unwrap();
    assert_eq!(
        err,
        format!("the server at http://127.0.0.1:{port} does not answer /health with 200 (got 503)")
    );
    let free = crate::llamacpp::server::net::free_port().unwrap();
    let err = backend_at(&format!("http://127.0.0.1:{free}"))
        .launch(&spec(1), "unused.log", 0)
        .err()
        .unwrap();
    assert!(err.ends_with("(got no answer)"), "{err}");
    // IPv6 loopback, where this machine has it: the brackets are the URL's, not the address's.
    if let Some(port) = answer_once("[::1]:0", 200) {
        let mut b = backend_at(&format!("http://[::1]:{port}"));
        assert!(b.launch(&spec(1), "unused.log", 0).is_ok());
    }
}

#[test]
fn a_server_on_another_host_has_its_host_and_no_machine_columns() {
    let mut far = plain();
    far.url = ServerUrl::parse("http://gpu-box:8080", true).unwrap();
    let profile = crate::profile::parse(
        "name = \"p\"\n[[roles]]\nname = \"workers\"\nparams_b = 1.0\ntier = \"HOT\"\n",
        crate::profile::ProfileSource::Embedded("p".into()),
    )
    .unwrap();
    let row = stamp(&far, None, "thishost", &profile);
    assert_eq!(row.host, "gpu-box");
    assert_eq!((row.cpu_model.as_str(), row.bandwidth_gbps), ("", None));
    assert_eq!(row.server_url, "http://gpu-box:8080");
    assert_eq!(row.profile, "p");
}
