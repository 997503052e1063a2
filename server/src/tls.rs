//! TLS: the serving certificate — loaded from PEM files and re-read when they
//! change (every [`POLL_INTERVAL`]), or generated in memory (self-signed, for
//! local use) — and, in Delegated mode, optional client certificates verified
//! against the CA bundles in force (the union of the client CA and the
//! requestheader CA; which one signed a chain is decided again per request).
//! TLS 1.2 and 1.3 only, ALPN h2 and http/1.1.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use tokio::sync::watch;

use crate::auth::trust::Trust;
use crate::reload::{self, POLL_INTERVAL};

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
    let cert_pem =
        std::fs::read(cert).map_err(|e| format!("--tls-cert-file {}: {e}", cert.display()))?;
    let key_pem =
        std::fs::read(key).map_err(|e| format!("--tls-private-key-file {}: {e}", key.display()))?;
    parse(&cert_pem, &key_pem, cert, key)
}

/// Parses PEM bytes read from `cert` and `key` (the paths name them in errors).
fn parse(cert_pem: &[u8], key_pem: &[u8], cert: &Path, key: &Path) -> Result<Identity, String> {
    let chain = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--tls-cert-file {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert-file {}: no PEM certificate found",
            cert.display()
        ));
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
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
        cert_pem: String::from_utf8_lossy(cert_pem).into_owned(),
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

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The serving certificate in force; replaced when its files change.
#[derive(Debug)]
pub struct ServingCert {
    current: RwLock<Arc<CertifiedKey>>,
}

fn certified(id: Identity) -> Result<Arc<CertifiedKey>, String> {
    CertifiedKey::from_der(id.chain, id.key, &provider())
        .map(Arc::new)
        .map_err(|e| format!("serving certificate does not match its key: {e}"))
}

impl ServingCert {
    /// Serves `id` (fails if its key does not match the certificate).
    pub fn new(id: Identity) -> Result<Arc<ServingCert>, String> {
        Ok(Arc::new(ServingCert {
            current: RwLock::new(certified(id)?),
        }))
    }

    /// Serves `id` from the next handshake on; keeps the current one on error.
    pub fn replace(&self, id: Identity) -> Result<(), String> {
        let next = certified(id)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    /// Re-reads `cert` and `key` every [`POLL_INTERVAL`] until `shutdown`, and
    /// serves them whenever both changed into a matching pair.
    pub fn reload_from(
        self: &Arc<Self>,
        cert: PathBuf,
        key: PathBuf,
        shutdown: watch::Receiver<bool>,
    ) {
        let paths = vec![cert.clone(), key.clone()];
        let initial = reload::read_all(&paths).unwrap_or_default();
        let me = self.clone();
        let what = format!("serving certificate {} / {}", cert.display(), key.display());
        reload::spawn(what, paths, initial, POLL_INTERVAL, shutdown, move |c| {
            me.replace(parse(&c[0], &c[1], &cert, &key)?)
        });
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// Optional client certificates, accepted when they chain to the client CA or
/// the requestheader CA in force at handshake time.
#[derive(Debug)]
struct ClientCerts {
    trust: Arc<Trust>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ClientCerts {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No CA hints: the CAs can change at any time, and clients holding one
    /// certificate (kube-apiserver's front proxy, kubectl) send it regardless.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let trust = self.trust.current();
        let cas = [
            trust.client_ca.as_deref(),
            trust.front_proxy.as_ref().map(|f| &f.ca),
        ];
        let mut failure = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        for ca in cas.into_iter().flatten() {
            match ca.verify_at(end_entity, intermediates, now) {
                Ok(()) => return Ok(ClientCertVerified::assertion()),
                Err(e) => failure = e,
            }
        }
        Err(failure)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A rustls configuration serving `cert`: TLS 1.2 and 1.3, ALPN h2 and
/// http/1.1, and with `clients` optional client certificates verified against it.
pub fn server_config(
    cert: Arc<ServingCert>,
    clients: Option<Arc<Trust>>,
) -> Result<Arc<ServerConfig>, String> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let builder = match clients {
        Some(trust) => {
            builder.with_client_cert_verifier(Arc::new(ClientCerts { trust, algorithms }))
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_cert_resolver(cert);
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
        let err = ServingCert::new(load(&c, &k).unwrap()).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
        let serving = ServingCert::new(id).unwrap();
        let before = serving.current.read().unwrap().clone();
        let err = serving.replace(load(&c, &k).unwrap()).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
        assert!(
            Arc::ptr_eq(&before, &serving.current.read().unwrap()),
            "a bad pair keeps the old one"
        );
        std::fs::write(&c, ck.cert.pem()).unwrap();
        serving.replace(load(&c, &k).unwrap()).unwrap();
        assert_eq!(serving.current.read().unwrap().cert[0], *ck.cert.der());
        assert!(server_config(serving.clone(), None).is_ok());
        assert!(server_config(serving, Some(Arc::new(Trust::default()))).is_ok());
    }

    #[test]
    fn missing_files_are_named() {
        let err = load(Path::new("/nonexistent.crt"), Path::new("/nonexistent.key")).unwrap_err();
        assert!(err.contains("/nonexistent.crt"), "{err}");
    }
}
