//! The shipped profiles: every `profiles/*.toml` is embedded in the binary byte for byte,
//! parses, and follows the guide's configuration tables.

use std::collections::BTreeSet;
use tpsbench::profile::{self, Residency, RoleKind};

#[test]
fn every_profile_file_is_embedded_unchanged() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles");
    let mut on_disk = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            let embedded = profile::EMBEDDED.iter().find(|(n, _)| *n == name);
            let (_, text) = embedded
                .unwrap_or_else(|| panic!("{} is not in profile::EMBEDDED", path.display()));
            assert_eq!(std::fs::read_to_string(&path).unwrap(), *text, "{name}");
            on_disk.insert(name);
        }
    }
    let embedded: BTreeSet<String> = profile::EMBEDDED
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(on_disk, embedded);
}

#[test]
fn production_follows_the_guide_table() {
    let p = profile::load("production").unwrap();
    let tier = |kind: RoleKind| p.roles.iter().find(|r| r.kind == kind).unwrap().tier;
    // Recommended Configurations > Production: HOT frontdoor, coder_escalation, workers,
    // worker_vision; WARM architect_general, ingest; no architect_coding.
    for kind in [
        RoleKind::Frontdoor,
        RoleKind::CoderEscalation,
        RoleKind::Workers,
        RoleKind::WorkerVision,
    ] {
        assert_eq!(tier(kind), Residency::Hot, "{kind}");
    }
    assert_eq!(tier(RoleKind::ArchitectGeneral), Residency::Warm);
    assert_eq!(tier(RoleKind::Ingest), Residency::Warm);
    assert!(p.roles.iter().all(|r| r.kind != RoleKind::ArchitectCoding));
    assert_eq!(p.role("workers").unwrap().quant.as_deref(), Some("F16"));
}

#[test]
fn full_has_every_role_kind_and_minimal_has_one_model() {
    let full = profile::load("full").unwrap();
    for kind in RoleKind::ALL {
        assert!(
            full.roles.iter().any(|r| r.kind == kind),
            "full lacks {kind}"
        );
    }
    assert_eq!(profile::load("minimal").unwrap().roles.len(), 1);
}

#[test]
fn every_spec_role_names_an_existing_draft_and_moe_modes_sit_on_moe_roles() {
    for (name, _) in profile::EMBEDDED {
        let p = profile::load(name).unwrap();
        for role in &p.roles {
            for mode in role.expanded_modes() {
                if mode.spec_k().is_some() {
                    let draft = role.draft.as_deref().and_then(|d| p.role(d));
                    assert!(draft.is_some(), "{name}/{}: {mode}", role.name);
                }
                if mode.moe_n().is_some() {
                    assert!(role.is_moe(), "{name}/{}: {mode}", role.name);
                }
            }
        }
    }
}
