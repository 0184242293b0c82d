//! HTTPS for the HTTP client: rustls trusting the roots of `roots`. The root store is built on the
//! first HTTPS connection of the process, so a plain-HTTP endpoint never reads a CA bundle.

use std::fmt;
use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use ureq::Error;
use ureq::unversioned::transport::time::{Duration, Instant};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport, TransportAdapter,
};

use super::roots::{self, Sources};

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
                let config = ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("ring supports the default TLS versions")
                    .with_root_certificates(roots::store(&self.sources))
                    .with_no_client_auth();
                Arc::new(config)
            })
            .clone()
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
