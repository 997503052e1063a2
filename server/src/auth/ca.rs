//! CA bundles that client certificates are verified against: the cluster's
//! client CA and the front-proxy (requestheader) CA. A bundle verifies a chain
//! the way the TLS handshake does (signatures, validity period, client-auth
//! usage), so the authenticators can tell per request which CA signed it.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

/// A parsed PEM bundle of CA certificates.
#[derive(Debug)]
pub struct CaBundle {
    pem: Vec<u8>,
    verifier: Arc<dyn ClientCertVerifier>,
}

impl CaBundle {
    /// Parses a PEM bundle; `what` names its origin in errors.
    pub fn from_pem(pem: &[u8], what: &str) -> Result<CaBundle, String> {
        let certs = rustls_pemfile::certs(&mut &pem[..])
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{what}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("{what}: no PEM certificate found"));
        }
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("{what}: unusable CA certificate: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("{what}: {e}"))?;
        Ok(CaBundle {
            pem: pem.to_vec(),
            verifier,
        })
    }

    /// The PEM text it was parsed from.
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }

    /// Verifies a client chain (leaf first, then intermediates) at `now`.
    pub fn verify_at(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        self.verifier
            .verify_client_cert(end_entity, intermediates, now)
            .map(|_| ())
    }

    /// Verifies a client chain now; the error says why it does not chain to this CA.
    pub fn verify(&self, chain: &[CertificateDer<'_>]) -> Result<(), String> {
        let (leaf, intermediates) = chain.split_first().ok_or("no client certificate")?;
        self.verify_at(leaf, intermediates, UnixTime::now())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair,
    };

    /// A CA that signs client certificates, for tests.
    pub struct TestCa {
        pub pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    impl TestCa {
        pub fn new(name: &str) -> TestCa {
            let mut p = CertificateParams::default();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name = DistinguishedName::new();
            p.distinguished_name.push(DnType::CommonName, name);
            let key = KeyPair::generate().unwrap();
            let cert = p.self_signed(&key).unwrap();
            TestCa {
                pem: cert.pem(),
                issuer: Issuer::new(p, key),
            }
        }

        pub fn client(&self, cn: &str, orgs: &[&str]) -> Vec<CertificateDer<'static>> {
            let mut p = CertificateParams::default();
            p.distinguished_name = DistinguishedName::new();
            p.distinguished_name.push(DnType::CommonName, cn);
            // rcgen keeps one value per attribute type: a second O goes in under its OID
            let types = [
                DnType::OrganizationName,
                DnType::CustomDnType(vec![2, 5, 4, 10]),
            ];
            for (t, o) in types.into_iter().zip(orgs) {
                p.distinguished_name.push(t, *o);
            }
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let key = KeyPair::generate().unwrap();
            vec![p.signed_by(&key, &self.issuer).unwrap().der().clone()]
        }

        pub fn bundle(&self) -> CaBundle {
            CaBundle::from_pem(self.pem.as_bytes(), "test CA").unwrap()
        }
    }

    #[test]
    fn verifies_only_chains_it_signed() {
        let (a, b) = (TestCa::new("a"), TestCa::new("b"));
        let bundle = a.bundle();
        assert!(bundle.verify(&a.client("alice", &[])).is_ok());
        let err = bundle.verify(&b.client("mallory", &[])).unwrap_err();
        assert!(err.contains("UnknownIssuer"), "{err}");
        assert!(bundle.verify(&[]).is_err());
        assert_eq!(bundle.pem(), a.pem.as_bytes());
        let two = format!("{}{}", a.pem, b.pem);
        assert!(CaBundle::from_pem(two.as_bytes(), "x")
            .unwrap()
            .verify(&b.client("bob", &[]))
            .is_ok());
    }

    #[test]
    fn bad_bundles_are_named() {
        let err = CaBundle::from_pem(b"not pem", "--client-ca-file /x").unwrap_err();
        assert!(
            err.contains("--client-ca-file /x") && err.contains("no PEM"),
            "{err}"
        );
        let junk = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(CaBundle::from_pem(junk, "x").is_err());
    }
}
