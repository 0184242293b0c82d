//! The release as vendors get it: the GitHub Actions workflow that publishes it is valid
//! (check-jsonschema's schema of GitHub workflows), passes zizmor's audits offline and pins every
//! action by commit; the `provenance.json` that `scripts/release.sh` writes (CI points
//! `BEACON_DIST` at its `dist/`) is signed, names every archive with its SHA-256 and the commit and
//! Cargo.lock it was built from.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{release_dist, stderr, stdout, tools};
use serde_json::Value;

const WORKFLOW: &str = ".github/workflows/release.yml";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_release_workflow_is_valid_audited_and_pinned() {
    let tools_here = tools::have("check-jsonschema", &["--version"], "check-jsonschema (pip)")
        && tools::have("zizmor", &["--version"], "zizmor (pip)");
    if !tools_here {
        return;
    }
    let schema = Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.github-workflows", WORKFLOW])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(schema.status.success(), "{}{}", stdout(&schema), stderr(&schema));
    // The strictest persona: every finding fails, informational ones too.
    let audit = Command::new("zizmor")
        .args(["--offline", "--persona=pedantic", "--no-progress", WORKFLOW])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(audit.status.success(), "{}{}", stdout(&audit), stderr(&audit));

    let text = fs::read_to_string(root().join(WORKFLOW)).unwrap();
    let uses: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix("uses: "))
        .collect();
    assert!(!uses.is_empty());
    for action in uses {
        let (_, pin) = action.split_once('@').unwrap_or_else(|| panic!("{action}: no ref"));
        let sha = pin.split_whitespace().next().unwrap();
        assert!(
            sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()) && pin.contains("# v"),
            "{action}: pin a commit SHA and name its tag in a comment"
        );
    }
    assert!(text.contains("\npermissions: {}\n"), "no permission by default");
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum");
    stdout(&out).split_whitespace().next().unwrap().to_owned()
}

#[test]
fn provenance_is_signed_and_names_every_archive_the_commit_and_the_lock_file() {
    let Some(dist) = release_dist("provenance.json") else {
        return;
    };

    let statement: Value = serde_json::from_slice(&fs::read(dist.join("provenance.json")).unwrap()).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    let subjects = statement["subject"].as_array().unwrap();
    let sums = fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    assert_eq!(subjects.len(), sums.lines().count());
    let mut linux_targets = 0;
    for (subject, line) in subjects.iter().zip(sums.lines()) {
        let (digest, name) = line.split_once("  ").unwrap();
        assert_eq!(subject["name"], name);
        assert_eq!(subject["digest"]["sha256"], digest);
        assert_eq!(sha256(&dist.join(name)), digest, "{name}");
        linux_targets += usize::from(name.contains("-linux-"));
    }
    assert_eq!(linux_targets, 4, "x86_64, aarch64, armv7, riscv64: {sums}");

    let build = &statement["predicate"]["buildDefinition"];
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root())
        .output()
        .unwrap();
    let deps = build["resolvedDependencies"].as_array().unwrap();
    assert_eq!(deps[0]["digest"]["gitCommit"], stdout(&head).trim());
    assert_eq!(deps[1]["name"], "Cargo.lock");
    assert_eq!(deps[1]["digest"]["sha256"], sha256(&root().join("Cargo.lock")));
    let rustc = Command::new("rustc").arg("-V").output().unwrap();
    let builder = &statement["predicate"]["runDetails"]["builder"];
    assert_eq!(builder["version"]["rustc"], stdout(&rustc).trim());
    for tool in ["cargo", "zig", "cargo-zigbuild"] {
        assert!(builder["version"][tool].is_string(), "{tool}: {builder}");
    }
}
