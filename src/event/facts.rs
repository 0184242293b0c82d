//! Anonymous facts about the machine. No command is ever run: on Linux they are read from files
//! (os_info would run `lsb_release` and `getconf` there), on macOS from the system version file and
//! sysctl (os_info 3.15 runs `uname -m` there, and `sw_vers` when Foundation cannot read the file), on
//! Windows from os_info (RtlGetVersion and the registry: no program) and GlobalMemoryStatusEx.

#[cfg(any(target_os = "linux", target_os = "macos"))]
use std::fs;
#[cfg(target_os = "linux")]
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
    /// The AI agent running the installer, when one is detected.
    pub agent: Option<String>,
    /// How the product is being installed (`--install-method`).
    pub install_method: Option<String>,
    /// `CI` and/or the value of `INSTALL_BEACON_CONTEXT`, space-separated.
    pub context: Option<String>,
}

/// Environment variables the facts depend on, taken from the start-up snapshot (`settings`).
#[derive(Debug, Default)]
pub struct FactsEnv {
    /// Whether a CI system was detected from its variables.
    pub ci: bool,
    /// The AI agent detected from its variables.
    pub agent: Option<String>,
    /// `--install-method`.
    pub install_method: Option<String>,
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
        Facts {
            os,
            os_version,
            arch: std::env::consts::ARCH,
            cpu_count: cpu_count(),
            memory_mb: memory_mb(),
            container: container(env),
            ci: env.ci,
            agent: env.agent.clone(),
            install_method: env.install_method.clone(),
            context: context(env),
        }
    }
}

#[cfg(target_os = "linux")]
fn container(env: &FactsEnv) -> &'static str {
    detect_container(
        env,
        Path::new("/.dockerenv").exists(),
        Path::new("/run/.containerenv").exists(),
        &fs::read_to_string("/proc/1/cgroup").unwrap_or_default(),
    )
}

/// Containers elsewhere are Linux VMs the process does not run in; only the variables count.
#[cfg(not(target_os = "linux"))]
fn container(env: &FactsEnv) -> &'static str {
    detect_container(env, false, false, "")
}

#[cfg(target_os = "linux")]
fn memory_mb() -> Option<u64> {
    fs::read_to_string("/proc/meminfo").ok().and_then(|s| parse_meminfo(&s))
}

/// `hw.memsize`, the physical memory in bytes.
#[cfg(target_os = "macos")]
fn memory_mb() -> Option<u64> {
    let mut bytes: u64 = 0;
    let mut len = std::mem::size_of::<u64>();
    // SAFETY: a NUL-terminated name, and an out-pointer with its exact size.
    let ok = unsafe {
        libc::sysctlbyname(
            c"hw.memsize".as_ptr(),
            (&raw mut bytes).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    } == 0;
    (ok && len == std::mem::size_of::<u64>()).then(|| mib(bytes))
}

#[cfg(windows)]
fn memory_mb() -> Option<u64> {
    use windows_sys::Win32::System::SystemInformation::{GlobalMemoryStatusEx, MEMORYSTATUSEX};
    // SAFETY: a zeroed MEMORYSTATUSEX with its length set, as the call requires.
    unsafe {
        let mut status: MEMORYSTATUSEX = std::mem::zeroed();
        status.dwLength = u32::try_from(std::mem::size_of::<MEMORYSTATUSEX>()).unwrap_or(0);
        (GlobalMemoryStatusEx(&mut status) != 0).then(|| mib(status.ullTotalPhys))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn memory_mb() -> Option<u64> {
    None
}

/// Bytes in whole MiB.
#[cfg(any(target_os = "macos", windows, test))]
pub fn mib(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
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
    let version = parse_system_version(&plist).unwrap_or_else(|| "unknown".into());
    ("macos".into(), version)
}

/// `windows` and the version as `major.minor.build` (`10.0.22631` is Windows 11 23H2).
#[cfg(windows)]
fn os_release() -> (String, String) {
    let version = match os_info::get().version() {
        os_info::Version::Unknown => "unknown".to_owned(),
        known => known.to_string(),
    };
    ("windows".into(), version)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn os_release() -> (String, String) {
    (std::env::consts::OS.into(), "unknown".into())
}

#[cfg(any(target_os = "macos", test))]
/// `ProductVersion` of macOS's `SystemVersion.plist` (an XML property list), e.g. `14.3.1`.
pub fn parse_system_version(plist: &str) -> Option<String> {
    let version = plist
        .split("<key>ProductVersion</key>")
        .nth(1)?
        .trim_start()
        .strip_prefix("<string>")?
        .split("</string>")
        .next()?
        .trim();
    let plausible = !version.is_empty() && version.chars().all(|c| c.is_ascii_digit() || c == '.');
    plausible.then(|| version.to_owned())
}

#[cfg(any(target_os = "linux", test))]
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

#[cfg(any(target_os = "linux", test))]
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
    fn macos_system_version_files() {
        let fixture = |name| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/macos")
                .join(name);
            std::fs::read_to_string(path).unwrap()
        };
        let sonoma = fixture("SystemVersion-14.plist");
        assert_eq!(parse_system_version(&sonoma).as_deref(), Some("14.3.1"));
        assert_eq!(
            parse_system_version(&fixture("SystemVersion-10.15.plist")).as_deref(),
            Some("10.15.7")
        );
        // ProductUserVisibleVersion alone is not the version key.
        let only_visible = sonoma.replace("<key>ProductVersion</key>", "<key>Other</key>");
        assert_eq!(parse_system_version(&only_visible), None);
        assert_eq!(parse_system_version(&sonoma.replace(">14.3.1<", "><")), None);
        assert_eq!(parse_system_version(&sonoma.replace(">14.3.1<", ">14.3 <b>x<")), None);
        assert_eq!(parse_system_version(""), None);
    }

    #[test]
    fn memory_sizes_from_bytes() {
        // hw.memsize of a 16 GiB Mac, ullTotalPhys of a Windows VM with 4095 MiB usable.
        assert_eq!(mib(17_179_869_184), 16_384);
        assert_eq!(mib(4_293_918_720), 4_095);
        assert_eq!(mib(0), 0);
    }

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
