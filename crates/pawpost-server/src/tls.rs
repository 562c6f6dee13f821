//! HTTPS (and the toy's WebSocket as wss) on pawpost's one port: the certificate chain and
//! private key come from PEM files, and [`Handshakes`] hands the accept loop
//! (`serve.rs`) only connections whose TLS handshake has finished. Each handshake runs in
//! its connection's own task with a deadline ([`TLS_HANDSHAKE_TIMEOUT`]), so a client
//! that connects and sends nothing, or speaks plain HTTP, holds up nobody else.
use crate::config::{
    ServerConfig, MAX_PENDING_TLS_HANDSHAKES, MAX_TLS_PEM_BYTES, TLS_HANDSHAKE_TIMEOUT,
};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, Error as RustlsError, InconsistentKeys};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

/// The only application protocol offered: pawpost speaks HTTP/1.1 only, which also
/// carries the WebSocket upgrade.
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// Why the certificate or key cannot be used. No message holds key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "TLS needs both --tls-cert (the certificate chain) and --tls-key (its private key), \
        but only {given} was given: give both to serve https, or neither to serve plain http"
    )]
    Incomplete { given: &'static str },
    #[error(
        "cannot read the TLS {what} {}: {error} (check the path, and that the user running \
        pawpost may read the file)",
        path.display()
    )]
    Read {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "the TLS {what} {} is larger than {MAX_TLS_PEM_BYTES} bytes: give the PEM file itself",
        path.display()
    )]
    TooLarge { what: &'static str, path: PathBuf },
    #[error(
        "{} holds no PEM certificate{detail}: --tls-cert takes the certificate chain in PEM \
        (-----BEGIN CERTIFICATE-----), the server's own certificate first",
        path.display()
    )]
    NoCertificate { path: PathBuf, detail: String },
    #[error(
        "{} holds no usable PEM private key: --tls-key takes the certificate's private key in \
        PEM, as PKCS#8 (BEGIN PRIVATE KEY), RSA (BEGIN RSA PRIVATE KEY) or EC (BEGIN EC \
        PRIVATE KEY)",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error(
        "the private key {} does not belong to the certificate {}: give the key the \
        certificate was issued for (and the server's own certificate first in the chain)",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error(
        "cannot serve https with the certificate {} and the key {}: {reason} (check that \
        both are PEM files of an RSA, ECDSA or Ed25519 certificate and its key)",
        cert.display(),
        key.display()
    )]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// The TLS handshakes for `config.tls_cert` and `config.tls_key`, or `None` for plain
/// HTTP when neither is set.
pub fn acceptor(config: &ServerConfig) -> Result<Option<Handshakes>, TlsError> {
    let (cert_path, key_path) = match (&config.tls_cert, &config.tls_key) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(TlsError::Incomplete {
                given: "--tls-cert",
            })
        }
        (None, Some(_)) => return Err(TlsError::Incomplete { given: "--tls-key" }),
        (Some(cert), Some(key)) => (cert, key),
    };
    let chain = certificates(cert_path)?;
    let key = private_key(key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let unusable = |e: RustlsError| match e {
        RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch) => TlsError::KeyMismatch {
            cert: cert_path.clone(),
            key: key_path.clone(),
        },
        other => TlsError::Unusable {
            cert: cert_path.clone(),
            key: key_path.clone(),
            reason: other.to_string(),
        },
    };
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(unusable)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(unusable)?;
    tls.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    // A toy's WebSocket takes its TLS 1.3 keys out of rustls once upgraded, so that an
    // idle toy keeps no TLS buffers (`tls_records.rs`); nothing else does.
    tls.enable_secret_extraction = true;
    warn_if_key_is_shared(key_path);
    Ok(Some(Handshakes::new(TlsAcceptor::from(Arc::new(tls)))))
}

/// Reads at most `MAX_TLS_PEM_BYTES` of `path`.
fn read_pem(what: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    let read_error = |error| TlsError::Read {
        what,
        path: path.to_owned(),
        error,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_TLS_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_TLS_PEM_BYTES {
        return Err(TlsError::TooLarge {
            what,
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_pem("certificate", path)?;
    let no_certificate = |detail: String| TlsError::NoCertificate {
        path: path.to_owned(),
        detail,
    };
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        // A certificate is public, so the parser's complaint may be shown.
        .map_err(|e| no_certificate(format!(" ({e})")))?;
    if chain.is_empty() {
        return Err(no_certificate(String::new()));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_pem("private key", path)?;
    // The parser's error could quote part of the file, so only the path is reported.
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| TlsError::NoKey {
        path: path.to_owned(),
    })
}

/// A private key that other users can read is worth a warning, not a refusal: the
/// operator may have reasons (a group shared with the proxy, say).
fn warn_if_key_is_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o004 != 0 {
            tracing::warn!(
                key = %path.display(),
                mode = format!("{mode:o}"),
                "the TLS private key is readable by every user of this machine; chmod 600 it"
            );
        }
    }
}

/// Runs the TLS handshakes of accepted connections: each within
/// [`TLS_HANDSHAKE_TIMEOUT`] of being accepted, and at most
/// [`MAX_PENDING_TLS_HANDSHAKES`] at once (the others wait, within their deadline).
#[derive(Clone)]
pub struct Handshakes {
    acceptor: TlsAcceptor,
    running: Arc<Semaphore>,
}

impl Handshakes {
    fn new(acceptor: TlsAcceptor) -> Self {
        Self {
            acceptor,
            running: Arc::new(Semaphore::new(MAX_PENDING_TLS_HANDSHAKES)),
        }
    }

    /// The connection once its handshake is done; `None` if it failed or took too long.
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        peer: SocketAddr,
    ) -> Option<TlsStream<S>> {
        let handshake = async {
            let _running = self.running.acquire().await.ok()?;
            Some(self.acceptor.accept(stream).await)
        };
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Some(Ok(tls))) => Some(tls),
            Ok(Some(Err(e))) => {
                // Plain http sent to the https port, a client that does not trust the
                // certificate, a scanner: worth a line when debugging, no more.
                tracing::debug!(%peer, error = %e, "TLS handshake failed; connection closed");
                None
            }
            Ok(None) => None,
            Err(_) => {
                tracing::debug!(%peer, timeout = ?TLS_HANDSHAKE_TIMEOUT, "TLS handshake not finished in time; connection closed");
                None
            }
        }
    }
}
