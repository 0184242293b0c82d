//! The macOS binaries, checked where they cannot run: `scripts/check-macho.py` passes the release
//! builds of `scripts/release.sh` (CI builds them first) and fails each kind of bad binary, made
//! by changing one thing in a good one: a page after signing, a library path, the minimum macOS.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{stderr, stdout, tools};

/// The release build for `triple`, or `None` (reported through `tools::cannot_run`).
fn release_binary(triple: &str) -> Option<PathBuf> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = target_dir.join(triple).join("release/install-beacon");
    if bin.is_file() {
        Some(bin)
    } else {
        tools::cannot_run(&format!("{} is missing (scripts/release.sh builds it)", bin.display()));
        None
    }
}

fn check(bin: &Path) -> Output {
    Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-macho.py"))
        .arg(bin)
        .output()
        .expect("run python3")
}

/// A copy of `bin` with `edit` applied, checked.
fn check_edited(bin: &Path, edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("install-beacon");
    let mut bytes = std::fs::read(bin).unwrap();
    edit(&mut bytes);
    std::fs::write(&copy, bytes).unwrap();
    let out = check(&copy);
    assert_eq!(out.status.code(), Some(1), "the edited binary passed: {}", stdout(&out));
    stderr(&out)
}

fn find(bytes: &[u8], needle: &[u8]) -> usize {
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not in the binary", String::from_utf8_lossy(needle)))
}

/// Offset of the first load command `cmd` (64-bit little-endian Mach-O).
fn load_command(bytes: &[u8], cmd: u32) -> usize {
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut at = 32;
    for _ in 0..word(16) {
        if word(at) == cmd {
            return at;
        }
        at += word(at + 4) as usize;
    }
    panic!("no load command {cmd:#x}");
}

#[test]
fn the_release_macos_binaries_pass() {
    if !tools::have("python3", &["--version"], "python3") {
        return;
    }
    for (triple, expected) in [
        ("x86_64-apple-darwin", "x86_64: macOS 10.12+"),
        ("aarch64-apple-darwin", "arm64: macOS 11.0+"),
    ] {
        let Some(bin) = release_binary(triple) else { continue };
        let out = check(&bin);
        assert!(out.status.success(), "{triple}: {}", stderr(&out));
        assert!(stdout(&out).contains(expected), "{triple}: {}", stdout(&out));
        if triple.starts_with("aarch64") {
            assert!(stdout(&out).contains("ad-hoc signed"), "{}", stdout(&out));
        }
    }
}

#[test]
fn a_changed_page_a_foreign_library_or_a_newer_macos_fails() {
    if !tools::have("python3", &["--version"], "python3") {
        return;
    }
    let Some(arm64) = release_binary("aarch64-apple-darwin") else {
        return;
    };
    let why = check_edited(&arm64, |b| b[0x4000 + 100] ^= 1);
    assert!(
        why.contains("arm64: page 4 (bytes 16384..) does not match its signed hash"),
        "{why}"
    );

    let why = check_edited(&arm64, |b| {
        let at = find(b, b"/usr/lib/libSystem.B.dylib");
        b[at..at + 8].copy_from_slice(b"/opt/lib");
    });
    assert!(why.contains("links /opt/lib/libSystem.B.dylib, outside"), "{why}");

    // LC_BUILD_VERSION's minos (at +12) set to 12.0.
    let why = check_edited(&arm64, |b| {
        let at = load_command(b, 0x32) + 12;
        b[at..at + 4].copy_from_slice(&(12u32 << 16).to_le_bytes());
    });
    assert!(why.contains("needs macOS 12.0, newer than 11.0"), "{why}");

    // The signature's flags without CS_ADHOC (at +12 of the CodeDirectory).
    let why = check_edited(&arm64, |b| {
        let signature = load_command(b, 0x1d) + 8;
        let start = u32::from_le_bytes(b[signature..signature + 4].try_into().unwrap()) as usize;
        let at = start + find(&b[start..], &[0xfa, 0xde, 0x0c, 0x02]) + 12;
        b[at + 3] &= !0x2;
    });
    assert!(why.contains("the signature is not ad-hoc"), "{why}");
}
