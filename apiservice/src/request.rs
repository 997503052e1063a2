//! Turns a request path and query string into what is asked: a discovery document or
//! a metrics question (a model [`Target`] and a window). Names are validated here,
//! before anything reaches PromQL.

use std::time::Duration;

use adapters::duration;
use adapters::model::{Kind, ResourceRef, Target};

use crate::status::ApiError;
use crate::{BASE_PATH, GROUP};

/// Limits applied to the `?t=` window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimits {
    /// Used when `t` is absent.
    pub default: Duration,
    /// Smallest accepted window.
    pub min: Duration,
    /// Largest accepted window.
    pub max: Duration,
}

impl Default for WindowLimits {
    fn default() -> Self {
        WindowLimits {
            default: Duration::from_secs(30),
            min: Duration::from_secs(1),
            max: Duration::from_secs(3600),
        }
    }
}

/// A parsed API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRequest {
    /// `/apis`: the APIGroupList.
    GroupList,
    /// `/apis/metrics.smi-spec.io`: the APIGroup.
    Group,
    /// `/apis/metrics.smi-spec.io/v1alpha1`: the APIResourceList.
    ResourceList,
    /// A TrafficMetrics question.
    Metrics(MetricsRequest),
}

/// A TrafficMetrics question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsRequest {
    /// What is described.
    pub target: Target,
    /// The window length.
    pub window: Duration,
    /// The canonical path (no trailing slash), used as `selfLink`.
    pub path: String,
}

/// Parses a path (without query) and a raw query string.
pub fn parse(
    path: &str,
    query: Option<&str>,
    limits: &WindowLimits,
) -> Result<ApiRequest, ApiError> {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    if path == "/apis" {
        return Ok(ApiRequest::GroupList);
    }
    if path == format!("/apis/{GROUP}") {
        return Ok(ApiRequest::Group);
    }
    let Some(rest) = path.strip_prefix(BASE_PATH) else {
        return Err(ApiError::not_found(format!(
            "the server could not find the requested resource {path:?}"
        )));
    };
    if rest.is_empty() {
        return Ok(ApiRequest::ResourceList);
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Err(ApiError::not_found(format!(
            "the server could not find the requested resource {path:?}"
        )));
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let target = target(&segs, path)?;
    let window = window(query, limits)?;
    Ok(ApiRequest::Metrics(MetricsRequest {
        target,
        window,
        path: path.to_string(),
    }))
}

fn kind(plural: &str) -> Result<Kind, ApiError> {
    Kind::from_plural(plural).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.plural()).collect();
        ApiError::not_found(format!(
            "the server doesn't have a resource type {plural:?} in {GROUP}; known: {}",
            known.join(", ")
        ))
    })
}

fn namespaced_kind(plural: &str) -> Result<Kind, ApiError> {
    let k = kind(plural)?;
    if !k.namespaced() {
        return Err(ApiError::not_found(format!(
            "{plural} are cluster-scoped; use {BASE_PATH}/{plural} or {BASE_PATH}/namespaces/<name>"
        )));
    }
    Ok(k)
}

fn target(segs: &[&str], path: &str) -> Result<Target, ApiError> {
    Ok(match segs {
        [plural] => Target::List {
            kind: kind(plural)?,
            namespace: None,
        },
        ["namespaces", ns] => Target::One(ResourceRef::namespace(namespace_name(ns)?)),
        ["namespaces", ns, "edges"] => Target::Edges(ResourceRef::namespace(namespace_name(ns)?)),
        ["namespaces", ns, plural] => Target::List {
            kind: namespaced_kind(plural)?,
            namespace: Some(namespace_name(ns)?),
        },
        ["namespaces", ns, plural, name] => Target::One(ResourceRef::namespaced(
            namespaced_kind(plural)?,
            namespace_name(ns)?,
            object_name(name)?,
        )),
        ["namespaces", ns, plural, name, "edges"] => Target::Edges(ResourceRef::namespaced(
            namespaced_kind(plural)?,
            namespace_name(ns)?,
            object_name(name)?,
        )),
        [plural, _] | [plural, _, "edges"] if kind(plural)?.namespaced() => {
            return Err(ApiError::not_found(format!(
                "{plural} are namespaced; use {BASE_PATH}/namespaces/<namespace>/{plural}/<name>"
            )))
        }
        _ => {
            return Err(ApiError::not_found(format!(
                "the server could not find the requested resource {path:?}"
            )))
        }
    })
}

/// Validates a namespace name (an RFC 1123 label).
pub fn namespace_name(s: &str) -> Result<String, ApiError> {
    if is_dns1123_label(s) {
        Ok(s.to_string())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid namespace {s:?}: must be a lowercase RFC 1123 label (a-z, 0-9 and '-', at most 63 characters, starting and ending with a letter or digit)"
        )))
    }
}

/// Validates an object name (an RFC 1123 subdomain).
pub fn object_name(s: &str) -> Result<String, ApiError> {
    if is_dns1123_subdomain(s) {
        Ok(s.to_string())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid name {s:?}: must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', at most 253 characters, starting and ending with a letter or digit)"
        )))
    }
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

fn window(query: Option<&str>, limits: &WindowLimits) -> Result<Duration, ApiError> {
    let Some(raw) = query
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
        .find(|(k, _)| k == "t")
        .map(|(_, v)| v.into_owned())
    else {
        return Ok(limits.default);
    };
    let w = duration::parse(&raw).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid window t={raw:?}: {e}; use a Go duration such as 30s, 1m or 5m"
        ))
    })?;
    if w.is_zero() {
        return Err(ApiError::bad_request(format!(
            "invalid window t={raw:?}: must be positive, e.g. 30s"
        )));
    }
    if w < limits.min {
        return Err(ApiError::bad_request(format!(
            "invalid window t={raw:?}: must be at least {}",
            duration::format(limits.min)
        )));
    }
    if w > limits.max {
        return Err(ApiError::bad_request(format!(
            "invalid window t={raw:?}: must be at most {} (the server's --max-window)",
            duration::format(limits.max)
        )));
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str, q: Option<&str>) -> Result<ApiRequest, ApiError> {
        parse(path, q, &WindowLimits::default())
    }

    fn metrics(path: &str) -> MetricsRequest {
        match p(path, None).unwrap() {
            ApiRequest::Metrics(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(p("/apis", None).unwrap(), ApiRequest::GroupList);
        assert_eq!(
            p("/apis/metrics.smi-spec.io/", None).unwrap(),
            ApiRequest::Group
        );
        assert_eq!(
            p("/apis/metrics.smi-spec.io/v1alpha1", None).unwrap(),
            ApiRequest::ResourceList
        );
        assert_eq!(
            p("/apis/metrics.smi-spec.io/v1alpha1/", None).unwrap(),
            ApiRequest::ResourceList
        );
    }

    #[test]
    fn every_metrics_path_shape() {
        let b = BASE_PATH;
        let list = |k, ns: Option<&str>| Target::List {
            kind: k,
            namespace: ns.map(String::from),
        };
        assert_eq!(metrics(&format!("{b}/pods")).target, list(Kind::Pod, None));
        assert_eq!(
            metrics(&format!("{b}/namespaces")).target,
            list(Kind::Namespace, None)
        );
        assert_eq!(
            metrics(&format!("{b}/namespaces/shop")).target,
            Target::One(ResourceRef::namespace("shop"))
        );
        assert_eq!(
            metrics(&format!("{b}/namespaces/shop/edges")).target,
            Target::Edges(ResourceRef::namespace("shop"))
        );
        assert_eq!(
            metrics(&format!("{b}/namespaces/shop/deployments/")).target,
            list(Kind::Deployment, Some("shop"))
        );
        assert_eq!(
            metrics(&format!("{b}/namespaces/shop/jobs/report")).target,
            Target::One(ResourceRef::namespaced(Kind::Job, "shop", "report"))
        );
        let m = metrics(&format!("{b}/namespaces/shop/statefulsets/db/edges/"));
        assert_eq!(
            m.target,
            Target::Edges(ResourceRef::namespaced(Kind::StatefulSet, "shop", "db"))
        );
        assert_eq!(m.path, format!("{b}/namespaces/shop/statefulsets/db/edges"));
        assert_eq!(m.window, Duration::from_secs(30));
    }

    #[test]
    fn unknown_paths_and_kinds_are_404() {
        let b = BASE_PATH;
        for path in [
            "/api".to_string(),
            "/apis/other.io/v1".into(),
            format!("{b}/services"),
            format!("{b}/namespaces/shop/services"),
            format!("{b}/namespaces/shop/namespaces"),
            format!("{b}/deployments/web"),
            format!("{b}/namespaces/shop/deployments/web/edges/extra"),
            format!("{b}x"),
        ] {
            assert_eq!(p(&path, None).unwrap_err().code, 404, "{path}");
        }
    }

    #[test]
    fn bad_names_are_400() {
        let b = BASE_PATH;
        for path in [
            format!("{b}/namespaces/Shop/deployments"),
            format!("{b}/namespaces/shop/deployments/web\"}}"),
            format!("{b}/namespaces/shop/deployments/-web"),
            format!("{b}/namespaces/a.b/deployments"),
        ] {
            assert_eq!(p(&path, None).unwrap_err().code, 400, "{path}");
        }
        assert!(is_dns1123_subdomain("store.v1"));
    }

    #[test]
    fn windows() {
        let path = format!("{BASE_PATH}/pods");
        let w = |q: &str| {
            p(&path, Some(q)).map(|r| match r {
                ApiRequest::Metrics(m) => m.window,
                _ => unreachable!(),
            })
        };
        assert_eq!(w("t=1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            w("timeout=32s&t=5m&limit=500").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(w("limit=500").unwrap(), Duration::from_secs(30));
        for bad in ["t=-5s", "t=0s", "t=0", "t=500ms", "t=abc", "t=2h", "t="] {
            let e = w(bad).unwrap_err();
            assert_eq!((e.code, e.reason), (400, "BadRequest"), "{bad}");
            assert!(e.message.contains("window"), "{}", e.message);
        }
    }
}
