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
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`: the index.
    OpenApiV3Index,
    /// `/openapi/v3/apis/metrics.smi-spec.io/v1alpha1`.
    OpenApiV3Group,
    /// A TrafficMetrics question.
    Metrics(MetricsRequest),
}

/// How items are named and which resource serves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// The SMI per-kind resources (`deployments`, ...): items are named like the object.
    Smi,
    /// The `trafficmetrics` resource: items are named `<kind>-<name>` (`deployment-web`),
    /// so one list can hold every workload kind of a namespace.
    Prefixed,
}

/// Workload kinds listed by the `trafficmetrics` resource.
pub const WORKLOAD_KINDS: [Kind; 4] = [
    Kind::Deployment,
    Kind::StatefulSet,
    Kind::DaemonSet,
    Kind::Job,
];

/// The resource name of the combined, kubectl-friendly view.
pub const TRAFFICMETRICS: &str = "trafficmetrics";

/// A TrafficMetrics question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsRequest {
    /// What is described; several targets are merged into one list (the
    /// `trafficmetrics` list asks every workload kind).
    pub targets: Vec<Target>,
    /// The window length.
    pub window: Duration,
    /// The canonical path (no trailing slash), used as `selfLink`.
    pub path: String,
    /// Which resource answers, and so how items are named.
    pub naming: Naming,
    /// Whether the answer is one object (a named GET) rather than a list.
    pub single: bool,
}

impl MetricsRequest {
    /// The first target (every request has at least one).
    pub fn target(&self) -> &Target {
        &self.targets[0]
    }
}

/// The `trafficmetrics` name of an object: `<kind>-<name>` (`deployment-web`).
pub fn prefixed_name(kind: Kind, name: &str) -> String {
    format!("{}-{name}", singular(kind))
}

fn singular(kind: Kind) -> &'static str {
    let p = kind.plural();
    &p[..p.len() - 1]
}

/// Reads a `trafficmetrics` name back into a kind and an object name.
fn parse_prefixed(name: &str) -> Result<(Kind, String), ApiError> {
    Kind::ALL
        .into_iter()
        .filter(|k| k.namespaced())
        .find_map(|k| name.strip_prefix(&format!("{}-", singular(k))).map(|rest| (k, rest)))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "trafficmetrics {name:?} not found: names are <kind>-<name>, e.g. deployment-web, statefulset-db, daemonset-agent, job-report, pod-web-5d8f7-x2k8p"
            ))
        })
        .and_then(|(k, rest)| Ok((k, object_name(rest)?)))
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
    match path {
        "/openapi/v2" => return Ok(ApiRequest::OpenApiV2),
        "/openapi/v3" => return Ok(ApiRequest::OpenApiV3Index),
        crate::openapi::V3_GROUP_PATH => return Ok(ApiRequest::OpenApiV3Group),
        _ => {}
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
    let (targets, naming) = match segs.as_slice() {
        [TRAFFICMETRICS, ..] | ["namespaces", _, TRAFFICMETRICS, ..] => {
            (trafficmetrics(&segs, path)?, Naming::Prefixed)
        }
        _ => (vec![target(&segs, path)?], Naming::Smi),
    };
    let window = window(query, limits)?;
    let single = matches!(targets.as_slice(), [Target::One(_)]);
    Ok(ApiRequest::Metrics(MetricsRequest {
        targets,
        window,
        path: path.to_string(),
        naming,
        single,
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

fn trafficmetrics(segs: &[&str], path: &str) -> Result<Vec<Target>, ApiError> {
    let list = |namespace: Option<String>| {
        WORKLOAD_KINDS
            .into_iter()
            .map(|kind| Target::List {
                kind,
                namespace: namespace.clone(),
            })
            .collect()
    };
    let object = |ns: &str, name: &str| -> Result<ResourceRef, ApiError> {
        let (kind, name) = parse_prefixed(name)?;
        Ok(ResourceRef::namespaced(kind, namespace_name(ns)?, name))
    };
    Ok(match segs {
        [_] => list(None),
        ["namespaces", ns, _] => list(Some(namespace_name(ns)?)),
        ["namespaces", ns, _, name] => vec![Target::One(object(ns, name)?)],
        ["namespaces", ns, _, name, "edges"] => vec![Target::Edges(object(ns, name)?)],
        [_, _] | [_, _, "edges"] => {
            return Err(ApiError::not_found(format!(
                "trafficmetrics are namespaced; use {BASE_PATH}/namespaces/<namespace>/trafficmetrics/<kind>-<name>"
            )))
        }
        _ => return Err(ApiError::not_found(format!("the server could not find the requested resource {path:?}"))),
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
        assert_eq!(p("/openapi/v2", None).unwrap(), ApiRequest::OpenApiV2);
        assert_eq!(p("/openapi/v3", None).unwrap(), ApiRequest::OpenApiV3Index);
        assert_eq!(
            p(
                "/openapi/v3/apis/metrics.smi-spec.io/v1alpha1",
                Some("hash=AB")
            )
            .unwrap(),
            ApiRequest::OpenApiV3Group
        );
    }

    #[test]
    fn every_metrics_path_shape() {
        let b = BASE_PATH;
        let list = |k, ns: Option<&str>| Target::List {
            kind: k,
            namespace: ns.map(String::from),
        };
        assert_eq!(
            metrics(&format!("{b}/pods")).targets,
            [list(Kind::Pod, None)]
        );
        assert_eq!(
            *metrics(&format!("{b}/namespaces")).target(),
            list(Kind::Namespace, None)
        );
        assert_eq!(
            *metrics(&format!("{b}/namespaces/shop")).target(),
            Target::One(ResourceRef::namespace("shop"))
        );
        assert_eq!(
            *metrics(&format!("{b}/namespaces/shop/edges")).target(),
            Target::Edges(ResourceRef::namespace("shop"))
        );
        assert_eq!(
            *metrics(&format!("{b}/namespaces/shop/deployments/")).target(),
            list(Kind::Deployment, Some("shop"))
        );
        assert_eq!(
            *metrics(&format!("{b}/namespaces/shop/jobs/report")).target(),
            Target::One(ResourceRef::namespaced(Kind::Job, "shop", "report"))
        );
        let m = metrics(&format!("{b}/namespaces/shop/statefulsets/db/edges/"));
        assert_eq!(
            *m.target(),
            Target::Edges(ResourceRef::namespaced(Kind::StatefulSet, "shop", "db"))
        );
        assert!(!m.single);
        assert_eq!(m.naming, Naming::Smi);
        assert_eq!(m.path, format!("{b}/namespaces/shop/statefulsets/db/edges"));
        assert_eq!(m.window, Duration::from_secs(30));
    }

    #[test]
    fn trafficmetrics_paths() {
        let b = BASE_PATH;
        let m = metrics(&format!("{b}/namespaces/shop/trafficmetrics"));
        assert_eq!(m.naming, Naming::Prefixed);
        assert!(!m.single);
        assert_eq!(m.targets.len(), WORKLOAD_KINDS.len());
        assert_eq!(
            m.targets[0],
            Target::List {
                kind: Kind::Deployment,
                namespace: Some("shop".into())
            }
        );
        let all = metrics(&format!("{b}/trafficmetrics"));
        assert!(all.targets.iter().all(|t| matches!(
            t,
            Target::List {
                namespace: None,
                ..
            }
        )));
        let one = metrics(&format!(
            "{b}/namespaces/shop/trafficmetrics/statefulset-db"
        ));
        assert!(one.single);
        assert_eq!(
            one.targets,
            [Target::One(ResourceRef::namespaced(
                Kind::StatefulSet,
                "shop",
                "db"
            ))]
        );
        let dotted = metrics(&format!(
            "{b}/namespaces/shop/trafficmetrics/deployment-store.v1/edges"
        ));
        assert_eq!(
            dotted.targets,
            [Target::Edges(ResourceRef::namespaced(
                Kind::Deployment,
                "shop",
                "store.v1"
            ))]
        );
        let pod = metrics(&format!("{b}/namespaces/shop/trafficmetrics/pod-web-1"));
        assert_eq!(
            pod.targets,
            [Target::One(ResourceRef::namespaced(
                Kind::Pod,
                "shop",
                "web-1"
            ))]
        );
        assert_eq!(prefixed_name(Kind::DaemonSet, "agent"), "daemonset-agent");
        for bad in ["web", "replicaset-web", "namespace-shop"] {
            let e = p(&format!("{b}/namespaces/shop/trafficmetrics/{bad}"), None).unwrap_err();
            assert_eq!(e.code, 404, "{bad}");
            assert!(e.message.contains("deployment-web"), "{}", e.message);
        }
        assert_eq!(
            p(&format!("{b}/trafficmetrics/deployment-web"), None)
                .unwrap_err()
                .code,
            404
        );
        assert_eq!(
            p(
                &format!("{b}/namespaces/shop/trafficmetrics/deployment-Web"),
                None
            )
            .unwrap_err()
            .code,
            400
        );
    }

    #[test]
    fn unknown_paths_and_kinds_are_404() {
        let b = BASE_PATH;
        for path in [
            "/api".to_string(),
            "/apis/other.io/v1".into(),
            format!("{b}/replicasets"),
            format!("{b}/namespaces/shop/replicasets"),
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
