//! Front-proxy authentication: kube-apiserver's aggregator proxies each request
//! with its front-proxy client certificate and names the user in headers
//! (`X-Remote-User`, `X-Remote-Uid`, repeated `X-Remote-Group`,
//! `X-Remote-Extra-<key>`). The headers are believed only when the TLS client
//! certificate chains to the requestheader CA and its common name is allowed;
//! on any other request they are ignored.

use http::HeaderMap;
use rustls::pki_types::CertificateDer;

use super::ca::CaBundle;
use super::user::UserInfo;
use super::x509::subject;
use crate::config::RequestHeaderNames;

/// The front-proxy trust settings in force.
#[derive(Debug)]
pub struct FrontProxy {
    /// The CA that signs the front-proxy client certificate.
    pub ca: CaBundle,
    /// Allowed certificate common names; empty: any.
    pub allowed_names: Vec<String>,
    /// Which headers carry the identity.
    pub headers: RequestHeaderNames,
}

impl FrontProxy {
    /// `Err` when the chain is not a valid front-proxy certificate; `Ok(None)`
    /// when it is but no user header is set; else the user the headers name.
    pub fn authenticate(
        &self,
        chain: &[CertificateDer<'_>],
        headers: &HeaderMap,
    ) -> Result<Option<UserInfo>, String> {
        self.ca
            .verify(chain)
            .map_err(|e| format!("client certificate not signed by the requestheader CA: {e}"))?;
        if !self.allowed_names.is_empty() {
            let cn = subject(&chain[0])?.common_name;
            if !self.allowed_names.contains(&cn) {
                return Err(format!(
                    "front-proxy client certificate CN {cn:?} is not in the allowed names {:?}",
                    self.allowed_names
                ));
            }
        }
        Ok(user_from_headers(headers, &self.headers))
    }
}

/// The identity the headers carry; `None` without a non-empty user name.
pub fn user_from_headers(headers: &HeaderMap, names: &RequestHeaderNames) -> Option<UserInfo> {
    let name = first_value(headers, &names.username)?;
    let uid = first_value(headers, &names.uid).unwrap_or_default();
    let groups = names
        .group
        .iter()
        .flat_map(|n| values(headers, n))
        .filter(|v| !v.is_empty())
        .collect();
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for prefix in &names.extra_prefix {
        let prefix = prefix.to_ascii_lowercase();
        for (header, value) in headers {
            // header names are lower-case already
            if let Some(key) = header.as_str().strip_prefix(prefix.as_str()) {
                extra
                    .entry(unescape_key(key))
                    .or_default()
                    .push(text(value.as_bytes()));
            }
        }
    }
    Some(UserInfo {
        name,
        uid,
        groups,
        extra,
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name.to_ascii_lowercase().as_str())
        .iter()
        .map(|v| text(v.as_bytes()))
        .collect()
}

/// The first non-empty value of the first of `names` that has one.
fn first_value(headers: &HeaderMap, names: &[String]) -> Option<String> {
    names.iter().find_map(|n| {
        values(headers, n)
            .into_iter()
            .next()
            .filter(|v| !v.is_empty())
    })
}

/// %-decodes an extra key; a malformed escape leaves the key as sent.
fn unescape_key(key: &str) -> String {
    let b = key.as_bytes();
    let well_formed = b.iter().enumerate().all(|(i, c)| {
        *c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return key.to_string();
    }
    percent_encoding::percent_decode_str(key)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ca::tests::TestCa;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn identity_comes_from_the_configured_headers() {
        let h = headers(&[
            ("X-Remote-User", "alice"),
            ("X-Remote-Uid", "u-1"),
            ("X-Remote-Group", "dev"),
            ("X-Remote-Group", ""),
            ("X-Remote-Group", "system:authenticated"),
            (
                "X-Remote-Extra-Authentication.kubernetes.io%2fpod-Name",
                "web-0",
            ),
            ("X-Remote-Extra-Scopes", "a"),
            ("x-remote-extra-scopes", "b"),
            ("X-Remote-Extra-Bad%zzKey", "c"),
        ]);
        let u = user_from_headers(&h, &RequestHeaderNames::default()).unwrap();
        assert_eq!(u.name, "alice");
        assert_eq!(u.uid, "u-1");
        assert_eq!(u.groups, ["dev", "system:authenticated"]);
        assert_eq!(u.extra["authentication.kubernetes.io/pod-name"], ["web-0"]);
        assert_eq!(u.extra["scopes"], ["a", "b"]);
        assert_eq!(u.extra["bad%zzkey"], ["c"]);
        assert_eq!(u.extra.len(), 3);

        let names = RequestHeaderNames {
            username: vec!["X-Missing".into(), "X-User".into()],
            uid: vec![],
            group: vec!["X-Groups".into()],
            extra_prefix: vec![],
        };
        let h = headers(&[
            ("X-Missing", ""),
            ("X-User", "bob"),
            ("X-Remote-User", "eve"),
            ("X-Groups", "g"),
        ]);
        let u = user_from_headers(&h, &names).unwrap();
        assert_eq!((u.name.as_str(), u.uid.as_str()), ("bob", ""));
        assert_eq!(u.groups, ["g"]);
        assert!(u.extra.is_empty());
        assert!(user_from_headers(
            &headers(&[("X-Remote-Group", "g")]),
            &RequestHeaderNames::default()
        )
        .is_none());
    }

    #[test]
    fn only_an_allowed_front_proxy_certificate_is_believed() {
        let ca = TestCa::new("front-proxy-ca");
        let fp = FrontProxy {
            ca: ca.bundle(),
            allowed_names: vec!["front-proxy-client".into()],
            headers: RequestHeaderNames::default(),
        };
        let h = headers(&[("X-Remote-User", "alice")]);
        let u = fp
            .authenticate(&ca.client("front-proxy-client", &[]), &h)
            .unwrap();
        assert_eq!(u.unwrap().name, "alice");
        assert_eq!(
            fp.authenticate(&ca.client("front-proxy-client", &[]), &HeaderMap::new()),
            Ok(None)
        );
        let err = fp
            .authenticate(&ca.client("someone-else", &[]), &h)
            .unwrap_err();
        assert!(
            err.contains("someone-else") && err.contains("allowed names"),
            "{err}"
        );
        let other = TestCa::new("other");
        let err = fp
            .authenticate(&other.client("front-proxy-client", &[]), &h)
            .unwrap_err();
        assert!(err.contains("requestheader CA"), "{err}");
        let any = FrontProxy {
            allowed_names: vec![],
            ..fp
        };
        assert!(any
            .authenticate(&ca.client("whoever", &[]), &h)
            .unwrap()
            .is_some());
    }
}
