//! The serving certificate: loaded from PEM files, or generated in memory
//! (self-signed, for local use), and turned into a rustls configuration that
//! speaks TLS 1.2+ with HTTP/2 and HTTP/1.1.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Identity {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
    /// The leaf certificate in PEM form (for clients that need to trust it).
    pub cert_pem: String,
}

/// Reads a PEM certificate chain and key.
pub fn load(cert: &Path, key: &Path) -> Result<Identity, String> {
    let cert_pem = std::fs::read_to_string(cert)
        .map_err(|e| format!("--tls-cert-file {}: {e}", cert.display()))?;
    let chain = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--tls-cert-file {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert-file {}: no PEM certificate found",
            cert.display()
        ));
    }
    let key_pem =
        std::fs::read(key).map_err(|e| format!("--tls-private-key-file {}: {e}", key.display()))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("--tls-private-key-file {}: {e}", key.display()))?
        .ok_or_else(|| {
            format!(
                "--tls-private-key-file {}: no PEM private key found",
                key.display()
            )
        })?;
    Ok(Identity {
        chain,
        key,
        cert_pem,
    })
}

/// Generates a self-signed certificate for `localhost`, `127.0.0.1` and `::1`.
pub fn self_signed() -> Result<Identity, String> {
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("generating a certificate: {e}"))?;
    let cert_pem = ck.cert.pem();
    let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
        .map_err(|e| format!("generated key: {e}"))?;
    Ok(Identity {
        chain: vec![ck.cert.der().clone()],
        key,
        cert_pem,
    })
}

/// A rustls server configuration for `id`: TLS 1.2 and 1.3, ALPN h2 and http/1.1.
pub fn server_config(id: Identity) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_single_cert(id.chain, id.key)
        .map_err(|e| format!("serving certificate does not match its key: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_round_trips_through_files() {
        let id = self_signed().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&c, &id.cert_pem).unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
        std::fs::write(&k, ck.signing_key.serialize_pem()).unwrap();
        // a certificate with somebody else's key is refused with a clear message
        let err = server_config(load(&c, &k).unwrap()).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
        assert!(server_config(id).is_ok());
    }

    #[test]
    fn missing_files_are_named() {
        let err = load(Path::new("/nonexistent.crt"), Path::new("/nonexistent.key")).unwrap_err();
        assert!(err.contains("/nonexistent.crt"), "{err}");
    }
}
