//! HTTPS for the HTTP client: rustls trusting the roots of `roots`, read stage by stage: the
//! bundled roots and `SSL_CERT_FILE` first, the system's sources and then `SSL_CERT_DIR` only when
//! the server's chain did not verify against the stages before. Nothing is read before the first
//! HTTPS handshake of the process, so a plain-HTTP endpoint never reads a CA bundle.

use std::fmt;
use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use ureq::Error;
use ureq::unversioned::transport::time::{Duration, Instant};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport, TransportAdapter,
};

use super::roots::{self, Sources, Stage};

/// Wraps connections to `https://` URLs in TLS.
pub struct TlsConnector {
    sources: Sources,
    config: OnceLock<Arc<ClientConfig>>,
}

impl TlsConnector {
    /// A connector trusting the bundled roots, the system's and those of `sources`.
    pub fn new(sources: Sources) -> TlsConnector {
        TlsConnector {
            sources,
            config: OnceLock::new(),
        }
    }

    fn config(&self) -> Arc<ClientConfig> {
        self.config
            .get_or_init(|| {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let verifier = StagedRoots::new(self.sources.clone(), provider.clone());
                // "dangerous" is rustls's word for any verifier of one's own: this one verifies
                // with rustls's own WebPkiServerVerifier, against more roots only when needed.
                let config = ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("ring supports the default TLS versions")
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
                    .with_no_client_auth();
                Arc::new(config)
            })
            .clone()
    }
}

/// Verifies a server's chain against one stage of roots after the other, each built on first use:
/// a chain accepted by any stage is accepted, and a refused one gets the last stage's error. So it
/// accepts exactly what a verifier of all the roots at once would.
#[derive(Debug)]
struct StagedRoots {
    sources: Sources,
    provider: Arc<CryptoProvider>,
    /// One verifier per `Stage::ALL`, `None` for a stage without a root.
    stages: [OnceLock<Option<Arc<WebPkiServerVerifier>>>; 3],
}

impl StagedRoots {
    fn new(sources: Sources, provider: Arc<CryptoProvider>) -> StagedRoots {
        StagedRoots {
            sources,
            provider,
            stages: Default::default(),
        }
    }

    /// The verifier of `Stage::ALL[index]`, built (its files read) on first use.
    fn stage(&self, index: usize) -> Option<&Arc<WebPkiServerVerifier>> {
        self.stages[index]
            .get_or_init(|| {
                let store = roots::store(&self.sources, Stage::ALL[index]);
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), self.provider.clone())
                    .build()
                    .ok()
            })
            .as_ref()
    }

    /// The first stage: the bundled roots are never empty, so it always exists.
    fn first(&self) -> Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
        self.stage(0)
            .ok_or_else(|| rustls::Error::General("no trusted roots".into()))
    }
}

impl ServerCertVerifier for StagedRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut result = Err(rustls::Error::General("no trusted roots".into()));
        for index in 0..Stage::ALL.len() {
            let Some(verifier) = self.stage(index) else { continue };
            result = verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
            if result.is_ok() {
                break;
            }
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.first()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.first()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").field("sources", &self.sources).finish()
    }
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host)
            .map_err(|_| Error::Tls("invalid DNS name for TLS"))?
            .to_owned();
        let mut conn = ClientConnection::new(self.config(), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        // The handshake gets what is left of the connection's budget, not a fresh one.
        let mut timeout = details.timeout;
        if let (Duration::Exact(left), Instant::Exact(now), Instant::Exact(start)) =
            (timeout.after, (details.current_time)(), details.now)
        {
            timeout.after = Duration::Exact(left.saturating_sub(now.saturating_duration_since(start)));
        }
        sock.set_timeout(timeout);
        conn.complete_io(&mut sock)?;
        Ok(Some(Either::B(TlsTransport {
            buffers: LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size()),
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// An established TLS connection.
pub struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

    /// A CA's PEM and a certificate for `localhost` it signed.
    fn chain(name: &str) -> (String, CertificateDer<'static>) {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&KeyPair::generate().unwrap(), &ca, &ca_key)
            .unwrap();
        (ca.pem(), leaf.der().clone())
    }

    fn verify(verifier: &StagedRoots, leaf: &CertificateDer<'_>) -> Result<ServerCertVerified, rustls::Error> {
        let name = ServerName::try_from("localhost").unwrap();
        verifier.verify_server_cert(leaf, &[], &name, &[], UnixTime::now())
    }

    /// Which stages were built (their sources read).
    fn built(verifier: &StagedRoots) -> Vec<bool> {
        verifier.stages.iter().map(|stage| stage.get().is_some()).collect()
    }

    #[test]
    fn later_stages_are_read_only_when_the_chain_needs_them() {
        let provider = || Arc::new(rustls::crypto::ring::default_provider());
        let (ca, leaf) = chain("staged roots test CA");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, &ca).unwrap();
        let certs = tempfile::tempdir().unwrap();
        std::fs::write(certs.path().join("ca.pem"), &ca).unwrap();

        // Trusted through SSL_CERT_FILE: neither the system's sources nor SSL_CERT_DIR are read.
        let sources = Sources {
            cert_file: Some(file),
            cert_dirs: vec![certs.path().to_owned()],
        };
        let verifier = StagedRoots::new(sources, provider());
        assert!(verify(&verifier, &leaf).is_ok());
        assert_eq!(built(&verifier), [true, false, false]);

        // Trusted through SSL_CERT_DIR only: every stage is read, in order.
        let sources = Sources {
            cert_file: None,
            cert_dirs: vec![certs.path().to_owned()],
        };
        let verifier = StagedRoots::new(sources, provider());
        assert!(verify(&verifier, &leaf).is_ok());
        assert_eq!(built(&verifier), [true, true, true]);

        // Trusted nowhere: the error of the last stage.
        let (_, stranger) = chain("unknown CA");
        let error = verify(&verifier, &stranger).unwrap_err();
        assert_eq!(
            error,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        );
    }
}
