//! TLS for `https://` targets (rustls): the server's certificate is checked against the system's
//! CA certificates and Mozilla's (webpki) roots — the latter so that a minimal container without
//! a CA bundle still verifies a public certificate — plus, with `--ca-cert FILE`, the PEM
//! certificates of a private CA. There is no switch that skips verification: a load test sends
//! the API key, and sending it to an impostor is never what was meant.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// What an `https://` target's connections need: the connector and the name the certificate
/// must carry.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

/// The PEM certificates of `path`, with an error that names the file and what is wrong.
pub fn read_ca_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path).map_err(|e| format!("--ca-cert {}: {e}", path.display()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--ca-cert {}: not PEM certificates ({e:?})", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "--ca-cert {}: holds no certificate (expected -----BEGIN CERTIFICATE----- blocks)",
            path.display()
        ));
    }
    Ok(certs)
}

impl Tls {
    /// A connector for `host` that trusts the system's roots, webpki's and `extra` (a private CA).
    pub fn new(host: &str, extra: &[CertificateDer<'static>]) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        // A machine without a CA bundle, or with unreadable entries, still has webpki's roots.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        for cert in extra {
            roots
                .add(cert.clone())
                .map_err(|e| format!("--ca-cert: a certificate rustls cannot use as a root: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("{host} cannot be checked against a certificate: {e}"))?;
        Ok(Self { connector: TlsConnector::from(Arc::new(config)), server_name })
    }

    /// The TLS handshake over `tcp`.
    pub async fn handshake(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        self.connector.connect(self.server_name.clone(), tcp).await
    }
}

/// A handshake failure in words, with the fix when the certificate is not trusted.
pub fn explain(host: &str, e: &std::io::Error) -> String {
    let text = e.to_string();
    let hint = if text.contains("UnknownIssuer") || text.contains("unknown issuer") {
        ": the server's certificate is not signed by a CA this machine trusts (for a private CA, pass --ca-cert FILE)"
    } else if text.contains("NotValidForName") || text.contains("not valid for name") {
        ": the certificate does not name this host (use the URL the certificate was issued for)"
    } else if text.contains("Expired") || text.contains("expired") {
        ": the certificate has expired"
    } else {
        ""
    };
    format!("TLS handshake with {host} failed: {text}{hint}")
}
