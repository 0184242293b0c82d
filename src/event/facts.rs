//! Anonymous facts about the machine, read from files and the process environment only: no
//! command is ever run (os_info would run `lsb_release` on Linux).

use std::fs;
use std::path::Path;

/// What every event says about the machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Distribution or OS id: `ubuntu`, `debian`, `alpine`, `macos`, ...
    pub os: String,
    /// OS version, e.g. `22.04`; `unknown` when it cannot be read.
    pub os_version: String,
    /// CPU architecture, e.g. `x86_64`, `aarch64`.
    pub arch: &'static str,
    /// Logical CPUs available to the process.
    pub cpu_count: usize,
    /// Total memory in MiB, when known.
    pub memory_mb: Option<u64>,
    /// `docker`, `podman`, `kubernetes` or `none`.
    pub container: &'static str,
    /// Whether this runs in a CI system.
    pub ci: bool,
    /// `CI` and/or the value of `INSTALL_BEACON_CONTEXT`, space-separated.
    pub context: Option<String>,
}

/// Environment variables the facts depend on, taken from the start-up snapshot (`settings`).
#[derive(Debug, Default)]
pub struct FactsEnv {
    /// Whether a CI system was detected from its variables.
    pub ci: bool,
    /// `INSTALL_BEACON_CONTEXT`.
    pub context: Option<String>,
    /// Whether `KUBERNETES_SERVICE_HOST` is set (its value is never read into events).
    pub kubernetes: bool,
    /// The `container` variable that podman, systemd-nspawn and others set.
    pub container: Option<String>,
}

/// Longest `INSTALL_BEACON_CONTEXT` value sent.
const MAX_CONTEXT: usize = 64;

impl Facts {
    /// Reads the facts of this machine.
    pub fn collect(env: &FactsEnv) -> Facts {
        let (os, os_version) = os_release();
        let container = detect_container(
            env,
            Path::new("/.dockerenv").exists(),
            Path::new("/run/.containerenv").exists(),
            &fs::read_to_string("/proc/1/cgroup").unwrap_or_default(),
        );
        Facts {
            os,
            os_version,
            arch: std::env::consts::ARCH,
            cpu_count: cpu_count(),
            memory_mb: fs::read_to_string("/proc/meminfo").ok().and_then(|s| parse_meminfo(&s)),
            container,
            ci: env.ci,
            context: context(env),
        }
    }
}

/// CPUs the process may run on, from the scheduler's affinity mask: one syscall and no file, where
/// `available_parallelism` would also read three cgroup files.
#[cfg(target_os = "linux")]
fn cpu_count() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, and the kernel writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let n = libc::CPU_COUNT(&set);
            if n > 0 {
                return usize::try_from(n).unwrap_or(1);
            }
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(not(target_os = "linux"))]
fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn context(env: &FactsEnv) -> Option<String> {
    let own = env
        .context
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| c.chars().take(MAX_CONTEXT).collect::<String>());
    match (env.ci, own) {
        (true, Some(own)) => Some(format!("CI {own}")),
        (true, None) => Some("CI".into()),
        (false, own) => own,
    }
}

#[cfg(target_os = "linux")]
fn os_release() -> (String, String) {
    let text = fs::read_to_string("/etc/os-release")
        .or_else(|_| fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    parse_os_release(&text)
}

#[cfg(target_os = "macos")]
fn os_release() -> (String, String) {
    let plist = fs::read_to_string("/System/Library/CoreServices/SystemVersion.plist").unwrap_or_default();
    let version = plist
        .split("<key>ProductVersion</key>")
        .nth(1)
        .and_then(|rest| rest.split("<string>").nth(1))
        .and_then(|rest| rest.split("</string>").next())
        .unwrap_or("unknown");
    ("macos".into(), version.trim().to_owned())
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn os_release() -> (String, String) {
    (std::env::consts::OS.into(), "unknown".into())
}

/// `ID` and `VERSION_ID` of an os-release file; `linux`/`unknown` when absent.
pub fn parse_os_release(text: &str) -> (String, String) {
    let field = |key: &str| {
        text.lines()
            .filter_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
            .find(|v| !v.is_empty())
    };
    (
        field("ID").unwrap_or_else(|| "linux".into()),
        field("VERSION_ID").unwrap_or_else(|| "unknown".into()),
    )
}

/// `MemTotal` of /proc/meminfo, in MiB.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Container runtime, from marker files, PID 1's cgroups and the variables runtimes set.
pub fn detect_container(env: &FactsEnv, dockerenv: bool, containerenv: bool, cgroup: &str) -> &'static str {
    if env.kubernetes || cgroup.contains("kubepods") {
        "kubernetes"
    } else if containerenv || cgroup.contains("libpod") || env.container.as_deref() == Some("podman") {
        "podman"
    } else if dockerenv || cgroup.contains("docker") {
        "docker"
    } else {
        "none"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_files() {
        let ubuntu = "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\nID_LIKE=debian\n";
        assert_eq!(parse_os_release(ubuntu), ("ubuntu".into(), "22.04".into()));
        let alpine = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n";
        assert_eq!(parse_os_release(alpine), ("alpine".into(), "3.19.1".into()));
        let sid = "PRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\nID=debian\n";
        assert_eq!(parse_os_release(sid), ("debian".into(), "unknown".into()));
        assert_eq!(parse_os_release(""), ("linux".into(), "unknown".into()));
        assert_eq!(
            parse_os_release("\u{0}\u{fffd}=\n=="),
            ("linux".into(), "unknown".into())
        );
    }

    #[test]
    fn meminfo() {
        assert_eq!(
            parse_meminfo("MemTotal:       16303428 kB\nMemFree: 1 kB\n"),
            Some(15921)
        );
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn containers() {
        let none = FactsEnv::default();
        assert_eq!(detect_container(&none, false, false, "0::/init.scope\n"), "none");
        assert_eq!(detect_container(&none, true, false, ""), "docker");
        assert_eq!(
            detect_container(&none, false, false, "0::/system.slice/docker-ab12.scope"),
            "docker"
        );
        assert_eq!(detect_container(&none, false, true, ""), "podman");
        assert_eq!(
            detect_container(&none, false, false, "0::/kubepods/besteffort/pod1"),
            "kubernetes"
        );
        let k8s = FactsEnv {
            kubernetes: true,
            ..FactsEnv::default()
        };
        assert_eq!(detect_container(&k8s, true, false, ""), "kubernetes");
        let podman = FactsEnv {
            container: Some("podman".into()),
            ..FactsEnv::default()
        };
        assert_eq!(detect_container(&podman, false, false, ""), "podman");
    }

    #[test]
    fn contexts() {
        let env = |ci, context: Option<&str>| FactsEnv {
            ci,
            context: context.map(Into::into),
            ..FactsEnv::default()
        };
        assert_eq!(context(&env(false, None)), None);
        assert_eq!(context(&env(true, None)).as_deref(), Some("CI"));
        assert_eq!(context(&env(true, Some("gitpod"))).as_deref(), Some("CI gitpod"));
        assert_eq!(context(&env(false, Some("  replit "))).as_deref(), Some("replit"));
        assert_eq!(
            context(&env(false, Some(&"x".repeat(200)))).map(|c| c.len()),
            Some(MAX_CONTEXT)
        );
    }
}
