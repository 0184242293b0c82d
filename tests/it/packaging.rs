//! The crates can be published, in order: `cargo package` builds beacon-wire from its .crate file;
//! install-beacon and beacon-collector are packaged without that build and without the lock file
//! (cargo cannot resolve beacon-wire from crates.io before it is published there). Each .crate
//! holds its sources and README, never the tests or their fixtures.

use std::path::Path;
use std::process::Command;

fn cargo_package(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["package", "--allow-dirty", "--target-dir"])
        // Its own target dir: the test run's is busy, and the .crate files are thrown away.
        .arg(root.join("target/package-test"))
        .args(args)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run cargo package");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo package {args:?} failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn each_crate_packages_with_its_sources_only() {
    cargo_package(&["-p", "beacon-wire"]);
    for crate_name in ["install-beacon", "beacon-collector"] {
        cargo_package(&["-p", crate_name, "--no-verify", "--exclude-lockfile"]);
    }
    for (crate_name, must_have) in [
        ("beacon-wire", &["src/lib.rs"][..]),
        (
            "install-beacon",
            &["src/main.rs", "build.rs", "README.md", "examples/manpage.rs"],
        ),
        ("beacon-collector", &["src/main.rs", "README.md"]),
    ] {
        let files = cargo_package(&["-p", crate_name, "--list", "--exclude-lockfile"]);
        for file in must_have {
            assert!(files.lines().any(|l| l == *file), "{crate_name} lacks {file}:\n{files}");
        }
        for line in files.lines() {
            let allowed = line.starts_with("src/")
                || ["Cargo.toml", "Cargo.toml.orig", ".cargo_vcs_info.json", "README.md"].contains(&line)
                || must_have.contains(&line);
            assert!(allowed, "{crate_name} would ship {line}");
        }
    }
}
