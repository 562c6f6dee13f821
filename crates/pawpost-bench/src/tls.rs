//! `--tls`: the certificate the bench makes for the server it measures (`--tls-cert`,
//! `--tls-key`) and for its own Mosquitto TLS listener, and the client side that trusts
//! it. Set once at start; every scenario then speaks TLS to the server.
use eyre::{eyre, Result, WrapErr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// A throwaway self-signed certificate for 127.0.0.1 and the client configuration
/// that trusts it.
pub struct BenchTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub cert_pem: String,
    connector: TlsConnector,
}

static TLS: OnceLock<BenchTls> = OnceLock::new();

/// Makes the certificate in `dir` (a fresh folder outside the work tree, readable by the
/// user Mosquitto drops to) and turns TLS on for every scenario.
pub fn enable(dir: &Path) -> Result<&'static BenchTls> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])
            .wrap_err("making the bench's certificate")?;
    let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_path, cert.pem())?;
    std::fs::write(&key_path, key_pair.serialize_pem())?;
    // A throwaway key: Mosquitto reads it after dropping to its own user.
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644))?;
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(cert.pem().as_bytes())?)?;
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tls = BenchTls {
        cert: cert_path,
        key: key_path,
        cert_pem: cert.pem(),
        connector: TlsConnector::from(Arc::new(config)),
    };
    TLS.set(tls).map_err(|_| eyre!("TLS is turned on once"))?;
    Ok(current().expect("just set"))
}

/// The bench's TLS, when `--tls` was given.
pub fn current() -> Option<&'static BenchTls> {
    TLS.get()
}

/// A byte stream to a server, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl BenchTls {
    /// The server's arguments that serve this certificate.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }

    /// A TLS client on `stream`, once its handshake is done.
    pub async fn connect(&self, stream: TcpStream) -> Result<Box<dyn Io>> {
        let name = ServerName::try_from("127.0.0.1")?;
        Ok(Box::new(self.connector.connect(name, stream).await?))
    }

    /// An HTTP client that trusts the certificate.
    pub fn http(&self, builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder> {
        Ok(builder
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(self.cert_pem.as_bytes())?))
    }
}

/// `stream` as is, or inside TLS when `--tls` was given.
pub async fn wrap(stream: TcpStream) -> Result<Box<dyn Io>> {
    match current() {
        Some(tls) => tls.connect(stream).await,
        None => Ok(Box::new(stream)),
    }
}

/// `http` or `https`, as the server speaks.
pub fn scheme() -> &'static str {
    if current().is_some() {
        "https"
    } else {
        "http"
    }
}

/// An HTTP client for the server: trusting the bench's certificate under `--tls`.
pub fn http_client(builder: reqwest::ClientBuilder) -> Result<reqwest::Client> {
    let builder = match current() {
        Some(tls) => tls.http(builder)?,
        None => builder,
    };
    Ok(builder.build()?)
}
