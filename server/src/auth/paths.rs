//! `--authorization-always-allow-paths`: non-resource paths served without
//! authentication or authorization. Like k8s.io/apiserver's path authorizer, a
//! leading `/` is optional, a trailing `*` matches any suffix, and resource
//! requests are never matched.

use super::request_info::Attributes;

/// The always-allowed paths.
#[derive(Debug, Clone, Default)]
pub struct AlwaysAllowPaths {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl AlwaysAllowPaths {
    /// Compiles the patterns (validated by the configuration: `*` only at the end).
    pub fn new(patterns: &[String]) -> AlwaysAllowPaths {
        let mut paths = AlwaysAllowPaths::default();
        for p in patterns {
            let p = p.trim_start_matches('/');
            match p.strip_suffix('*') {
                Some(prefix) => paths.prefixes.push(prefix.to_string()),
                None => paths.exact.push(p.to_string()),
            }
        }
        paths
    }

    /// Whether `attrs` is a non-resource request for an always-allowed path.
    pub fn allows(&self, attrs: &Attributes) -> bool {
        let Attributes::NonResource { path, .. } = attrs else {
            return false;
        };
        let path = path.trim_start_matches('/');
        self.exact.iter().any(|p| p == path)
            || self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::request_info::attributes;
    use http::Method;

    fn allowed(paths: &AlwaysAllowPaths, path: &str) -> bool {
        paths.allows(&attributes(&Method::GET, path, None).unwrap())
    }

    #[test]
    fn exact_and_prefix_patterns() {
        let p = AlwaysAllowPaths::new(&["/healthz".into(), "openapi/*".into(), "/".into()]);
        assert!(allowed(&p, "/healthz"));
        assert!(!allowed(&p, "/healthz/ping"));
        assert!(allowed(&p, "/openapi/v2"));
        assert!(allowed(&p, "/openapi/"));
        assert!(!allowed(&p, "/openapi"));
        assert!(allowed(&p, "/"));
        assert!(!allowed(&p, "/apis"));
        let all = AlwaysAllowPaths::new(&["/*".into()]);
        assert!(allowed(&all, "/apis/metrics.smi-spec.io"));
        assert!(
            !allowed(&all, "/apis/metrics.smi-spec.io/v1alpha1/namespaces"),
            "resource requests are never always-allowed"
        );
    }
}
