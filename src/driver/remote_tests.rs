use super::*;
use crate::engine::SpeculativeArgs;

fn info(props: ServerProps) -> RemoteServerInfo {
    RemoteServerInfo {
        url: ServerUrl::parse("http://127.0.0.1:8080", false).unwrap(),
        props,
        slots: None,
    }
}

fn plain() -> ServerProps {
    ServerProps {
        build_info: "b0-unknown".into(),
        model_path: "/models/target.gguf".into(),
        total_slots: 2,
        slot_ctx: 4096,
        speculative: false,
        draft_n_max: None,
        spec_types: Vec::new(),
    }
}

fn drafting(n_max: u32) -> ServerProps {
    ServerProps {
        speculative: true,
        draft_n_max: Some(n_max),
        spec_types: vec!["draft-simple".into()],
        ..plain()
    }
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
    let i = info(plain());
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
        "draft-simple is a launch option (--spec-type draft-simple); the server at \
         http://127.0.0.1:8080 was started without speculation"
    );
}

#[test]
fn a_speculating_server_serves_only_its_own_speculation() {
    let i = info(drafting(8));
    let served = Path::new(SERVED);
    assert_eq!(
        serves(&i, served, &speculative(&["draft-simple"], Some(8))),
        Ok(())
    );
    assert_eq!(
        serves(&i, served, &speculative(&["draft-simple"], Some(16))).unwrap_err(),
        "the server at http://127.0.0.1:8080 drafts up to 8 tokens per step (its \
         --spec-draft-n-max), not 16: measure spec:8"
    );
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
    assert_eq!(info(plain()).default_modes(), [Mode::Baseline]);
    assert_eq!(
        info(drafting(8)).default_modes(),
        [Mode::Baseline, Mode::Spec { k: 8 }]
    );
    let lookup = ServerProps {
        speculative: true,
        spec_types: vec!["ngram-simple".into()],
        ..plain()
    };
    assert_eq!(
        server_mode(&lookup),
        Some(Mode::Lookup {
            spec_type: Some("ngram-simple".into())
        })
    );
    let unknown = ServerProps {
        speculative: true,
        ..plain()
    };
    assert_eq!(server_mode(&unknown), None);
    assert_eq!(info(unknown).default_modes(), [Mode::Baseline]);
}

#[test]
fn rows_say_the_engine_is_remote_and_name_the_url() {
    let mut row = ResultRow::default();
    stamp_engine(&mut row, &info(plain()));
    assert_eq!(row.server_url, "http://127.0.0.1:8080");
    assert_eq!(row.engine_version, "llama-server build b0-unknown (remote)");
    assert_eq!(row.engine_sha256, "unknown");
    assert_eq!(row.engine_server_sha256, "unknown");
    assert_eq!(row.engine_variant, "remote");
}
