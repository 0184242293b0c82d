//! The install-beacon under test. By default the debug build of this machine; with
//! `BEACON_TARGET=<triple>` the release binary `scripts/release.sh` built for that target, run
//! through Debian's qemu-user when it is another architecture, so the same test bodies run on
//! every Linux target:
//!
//! ```text
//! BEACON_TARGET=armv7-unknown-linux-musleabihf cargo test --test it -- core:: shell::
//! ```
//!
//! No binfmt_misc: `beacon()` is a wrapper script that starts the emulator itself and hands it its
//! own path as argv[0] (`qemu-arm -0`), so the commands the binary prints for later calls (the
//! hooks of `shell-init`) come back through the wrapper, and a renamed link to it keeps its name.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Release targets the suite can run: triple, `std::env::consts::ARCH` of the binary, and the
/// qemu-user emulator on an x86_64 machine (`None`: runs natively).
const TARGETS: [(&str, &str, Option<&str>); 4] = [
    ("x86_64-unknown-linux-musl", "x86_64", None),
    ("aarch64-unknown-linux-musl", "aarch64", Some("qemu-aarch64")),
    ("armv7-unknown-linux-musleabihf", "arm", Some("qemu-arm")),
    ("riscv64gc-unknown-linux-musl", "riscv64", Some("qemu-riscv64")),
];

struct UnderTest {
    exe: PathBuf,
    arch: &'static str,
}

fn under_test() -> &'static UnderTest {
    static UNDER_TEST: OnceLock<UnderTest> = OnceLock::new();
    UNDER_TEST.get_or_init(|| {
        let Some(triple) = std::env::var("BEACON_TARGET").ok().filter(|t| !t.is_empty()) else {
            return UnderTest {
                exe: PathBuf::from(env!("CARGO_BIN_EXE_install-beacon")),
                arch: std::env::consts::ARCH,
            };
        };
        let &(_, arch, emulator) = TARGETS.iter().find(|(t, ..)| *t == triple).unwrap_or_else(|| {
            let known: Vec<&str> = TARGETS.iter().map(|(t, ..)| *t).collect();
            panic!("BEACON_TARGET={triple} is not one of {known:?}")
        });
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
        let release = target_dir.join(&triple).join("release/install-beacon");
        assert!(
            release.is_file(),
            "BEACON_TARGET={triple}: {} is missing (scripts/release.sh builds it)",
            release.display()
        );
        let exe = match emulator.filter(|_| std::env::consts::ARCH != arch) {
            None => release,
            Some(qemu) => wrapper(&target_dir.join("emulated").join(&triple), qemu, &release),
        };
        UnderTest { exe, arch }
    })
}

/// Writes `dir/install-beacon`, which runs `binary` under `qemu`; panics when qemu cannot run it.
fn wrapper(dir: &Path, qemu: &str, binary: &Path) -> PathBuf {
    assert!(
        super::tools::have(qemu, &["--version"], "qemu-user"),
        "BEACON_TARGET needs {qemu} (apt-get install qemu-user)"
    );
    std::fs::create_dir_all(dir).unwrap();
    let exe = dir.join("install-beacon");
    let script = format!(
        "#!/bin/sh\nexec {qemu} -0 \"$0\" {} \"$@\"\n",
        super::tmux::sh_quote(&binary.display().to_string())
    );
    // Written aside and renamed: a running test never sees half a script.
    let part = dir.join(format!("install-beacon.{}", std::process::id()));
    std::fs::write(&part, script).unwrap();
    std::fs::set_permissions(&part, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::rename(&part, &exe).unwrap();
    exe
}

/// The executable to run as install-beacon: the debug build, or the `BEACON_TARGET` binary (behind
/// its emulator wrapper).
pub fn beacon() -> &'static Path {
    &under_test().exe
}

/// The architecture the binary under test reports (`properties.arch`).
pub fn arch() -> &'static str {
    under_test().arch
}
