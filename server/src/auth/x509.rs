//! Client certificates signed by the cluster's client CA (`--client-ca-file`,
//! or `client-ca-file` in the ConfigMap): the user is the subject's common name
//! and the groups are its organizations, as kube-apiserver reads them.

use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::ca::CaBundle;
use super::user::UserInfo;

/// The parts of a certificate subject that identify a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The common name (the last one, if there are several, as Go reads it).
    pub common_name: String,
    /// The organizations, in order.
    pub organizations: Vec<String>,
}

/// Reads the subject of a DER certificate.
pub fn subject(cert: &CertificateDer<'_>) -> Result<Subject, String> {
    let (_, cert) = X509Certificate::from_der(cert.as_ref())
        .map_err(|e| format!("unparsable client certificate: {e}"))?;
    let subject = cert.subject();
    let text = |v: &x509_parser::x509::AttributeTypeAndValue<'_>| {
        v.as_str()
            .map(str::to_string)
            .map_err(|e| format!("client certificate subject: {e}"))
    };
    Ok(Subject {
        common_name: subject
            .iter_common_name()
            .last()
            .map(text)
            .transpose()?
            .unwrap_or_default(),
        organizations: subject
            .iter_organization()
            .map(text)
            .collect::<Result<_, _>>()?,
    })
}

/// Authenticates a client chain against the client CA: user CN, groups O.
pub fn authenticate(ca: &CaBundle, chain: &[CertificateDer<'_>]) -> Result<UserInfo, String> {
    ca.verify(chain)
        .map_err(|e| format!("client certificate not signed by the client CA: {e}"))?;
    let s = subject(&chain[0])?;
    if s.common_name.is_empty() {
        return Err("the common name of the client certificate is empty".into());
    }
    Ok(UserInfo {
        name: s.common_name,
        groups: s.organizations,
        ..UserInfo::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ca::tests::TestCa;

    #[test]
    fn user_is_cn_and_groups_are_o() {
        let ca = TestCa::new("cluster");
        let u = authenticate(&ca.bundle(), &ca.client("jane", &["dev", "ops"])).unwrap();
        assert_eq!(u.name, "jane");
        assert_eq!(u.groups, ["dev", "ops"]);
        let err = authenticate(&ca.bundle(), &ca.client("", &["dev"])).unwrap_err();
        assert!(err.contains("common name"), "{err}");
        let other = TestCa::new("other");
        let err = authenticate(&ca.bundle(), &other.client("jane", &[])).unwrap_err();
        assert!(err.contains("client CA"), "{err}");
    }
}
