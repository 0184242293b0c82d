//! The certificate authorities HTTPS trusts: the Mozilla roots built into the binary, plus the
//! system's CA bundle (where corporate TLS-inspection roots are installed), plus `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` when set, plus the keychain on macOS and the certificate store on Windows. Every
//! source adds; none replaces another, and a source that cannot be read is skipped. There is no way
//! to turn verification off.
//!
//! The sources come in three `Stage`s, each read only when the chain did not verify against the
//! ones before (`tls`): reading and parsing the system bundle costs more than the handshake, and a
//! directory of a few hundred certificates ten times that.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Where distributions keep their PEM bundle of trusted CAs (the same list as Go's and
/// openssl-probe's). The first that exists is read: the others are usually links to it.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Arch, Gentoo
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // Fedora, RHEL 7+
    "/etc/pki/tls/certs/ca-bundle.crt",   // older Fedora and RHEL
    "/etc/ssl/ca-bundle.pem",             // openSUSE
    "/etc/pki/tls/cacert.pem",            // OpenELEC
    "/etc/ssl/cert.pem",                  // macOS, Alpine, BSDs
    "/usr/local/share/certs/ca-root-nss.crt", // FreeBSD
];

/// The extra sources, resolved once from the environment (`SSL_CERT_FILE`, `SSL_CERT_DIR`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// `SSL_CERT_FILE`: a PEM bundle.
    pub cert_file: Option<PathBuf>,
    /// `SSL_CERT_DIR`: directories (colon-separated) of PEM files, as OpenSSL reads them.
    pub cert_dirs: Vec<PathBuf>,
}

/// A group of CA sources, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The roots built into the binary and `SSL_CERT_FILE`: no file read but the one named.
    Bundled,
    /// The system's bundle, and the keychain or certificate store.
    System,
    /// Every file of the `SSL_CERT_DIR` directories (those already read by the stages before
    /// skipped: the system bundle is usually linked there).
    Dirs,
}

impl Stage {
    /// Every stage, in the order they are tried.
    pub const ALL: [Stage; 3] = [Stage::Bundled, Stage::System, Stage::Dirs];
}

/// The trusted roots of one stage (empty when it has none).
pub fn store(sources: &Sources, stage: Stage) -> RootCertStore {
    let system = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file());
    let mut files = PemFiles {
        store: RootCertStore::empty(),
        read: HashSet::new(),
    };
    match stage {
        Stage::Bundled => {
            files.store.roots = webpki_roots::TLS_SERVER_ROOTS.to_vec();
            if let Some(file) = &sources.cert_file {
                files.add(file);
            }
        }
        Stage::System => {
            if let Some(bundle) = system {
                files.add(bundle);
            }
            add_keychain(&mut files.store);
        }
        Stage::Dirs => {
            for done in system.iter().copied().chain(sources.cert_file.as_deref()) {
                files.skip(done);
            }
            for dir in &sources.cert_dirs {
                let Ok(entries) = fs::read_dir(dir) else { continue };
                for entry in entries.flatten() {
                    files.add(&entry.path());
                }
            }
        }
    }
    files.store
}

/// The store being filled, and the files already read.
struct PemFiles {
    store: RootCertStore,
    /// Every file read: a certificate directory is mostly links to the same files (hashed names,
    /// the system bundle itself), each read once.
    read: HashSet<FileId>,
}

/// Device and inode.
#[cfg(unix)]
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(_: &Path, meta: &fs::Metadata) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

/// The path with links resolved (Windows has file IDs too, but not on stable Rust).
#[cfg(windows)]
type FileId = PathBuf;

#[cfg(windows)]
fn file_id(path: &Path, _: &fs::Metadata) -> Option<FileId> {
    fs::canonicalize(path).ok()
}

impl PemFiles {
    /// Counts `path` as read (an earlier stage read it).
    fn skip(&mut self, path: &Path) {
        if let Some(id) = fs::metadata(path).ok().and_then(|meta| file_id(path, &meta)) {
            self.read.insert(id);
        }
    }

    /// Adds every certificate of a PEM file; other sections, bad certificates and unreadable
    /// files are skipped (a broken bundle must not cost the roots already trusted).
    fn add(&mut self, path: &Path) {
        let Ok(meta) = fs::metadata(path) else { return };
        if !meta.is_file() || !file_id(path, &meta).is_some_and(|id| self.read.insert(id)) {
            return;
        }
        let Ok(bytes) = fs::read(path) else { return };
        let certs = CertificateDer::pem_slice_iter(&bytes).filter_map(Result::ok);
        self.store.add_parsable_certificates(certs);
    }
}

/// The roots an administrator or MDM profile added to the macOS keychains, or group policy to the
/// Windows certificate store (where corporate TLS-inspection roots go there).
#[cfg(any(target_os = "macos", windows))]
fn add_keychain(store: &mut RootCertStore) {
    store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
}

#[cfg(not(any(target_os = "macos", windows)))]
fn add_keychain(_: &mut RootCertStore) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_roots_stay_when_extra_sources_are_missing_or_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let bundled = webpki_roots::TLS_SERVER_ROOTS.len();
        let sources = Sources {
            cert_file: Some(garbage),
            cert_dirs: vec![dir.path().join("missing"), dir.path().to_owned()],
        };
        assert_eq!(store(&sources, Stage::Bundled).len(), bundled);
        assert!(
            store(&sources, Stage::Dirs).is_empty(),
            "the garbage file was read in the first stage"
        );
    }
}
