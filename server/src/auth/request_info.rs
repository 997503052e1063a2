//! What a request asks to do, in authorization terms: the attributes
//! kube-apiserver's RequestInfo derives from the method, path and query
//! (k8s.io/apiserver `pkg/endpoints/request/requestinfo.go`), so that a
//! SubjectAccessReview asks RBAC exactly what kube-apiserver itself asked before
//! proxying the request here.
//!
//! * `/apis/<g>/<v>/[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]` is a
//!   resource request in API group `<g>`; `/api/<v>/…` the same in the core group.
//! * Anything shorter (`/apis`, `/apis/<g>`, `/apis/<g>/<v>`) or elsewhere
//!   (`/openapi/v2`, `/metrics`) is a non-resource request: its path and the
//!   lower-cased HTTP method.
//! * GET/HEAD with a name is `get`, without one `list` (`watch` with `?watch=true`);
//!   a `fieldSelector` requiring `metadata.name=<n>` names the object.
//! * `…/namespaces/<x>` is resource `namespaces` named `<x>` in namespace `<x>`;
//!   `…/namespaces/<x>/<r>` is resource `<r>` in namespace `<x>` unless `<r>` is a
//!   namespace subresource (`status`, `finalize`).

use http::Method;

/// Attributes of a resource request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    /// `get`, `list`, `watch`, `create`, …
    pub verb: String,
    /// API group (`""` for the core group).
    pub group: String,
    /// API version.
    pub version: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource, or `""`.
    pub subresource: String,
    /// Namespace, or `""` for cluster scope.
    pub namespace: String,
    /// Object name, or `""`.
    pub name: String,
}

/// What a request asks to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attributes {
    /// An API object request.
    Resource(ResourceAttributes),
    /// Any other path.
    NonResource {
        /// The URL path as sent.
        path: String,
        /// The lower-cased HTTP method.
        verb: String,
    },
}

/// Verbs that may lead a resource path (`/apis/g/v/watch/…`; deprecated).
const SPECIAL_VERBS: [&str; 2] = ["proxy", "watch"];
/// Subresources of a namespace (anything else after `namespaces/<x>/` is a resource).
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Derives the attributes of `method path?query`. Fails only for a path that
/// names a special verb but nothing after it (kube-apiserver fails those too).
pub fn attributes(method: &Method, path: &str, query: Option<&str>) -> Result<Attributes, String> {
    let non_resource = Attributes::NonResource {
        path: path.to_string(),
        verb: method.as_str().to_ascii_lowercase(),
    };
    let trimmed = path.trim_matches('/');
    let mut parts: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    if parts.len() < 3 {
        return Ok(non_resource);
    }
    let group = match parts[0] {
        "api" => {
            parts.drain(..1);
            ""
        }
        "apis" if parts.len() >= 4 => {
            let g = parts[1];
            parts.drain(..2);
            g
        }
        _ => return Ok(non_resource),
    };
    let mut a = ResourceAttributes {
        group: group.to_string(),
        version: parts.remove(0).to_string(),
        ..ResourceAttributes::default()
    };
    if SPECIAL_VERBS.contains(&parts[0]) {
        if parts.len() < 2 {
            return Err(format!(
                "unable to determine kind and namespace from url {path}"
            ));
        }
        a.verb = parts.remove(0).to_string();
    } else {
        a.verb = match *method {
            Method::POST => "create",
            Method::GET | Method::HEAD => "get",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        }
        .to_string();
    }
    let mut rest: &[&str] = &parts;
    if rest[0] == "namespaces" && rest.len() > 1 {
        a.namespace = rest[1].to_string();
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest = &rest[2..];
        }
    }
    if rest.len() >= 3 && a.verb != "proxy" {
        a.subresource = rest[2].to_string();
    }
    if rest.len() >= 2 {
        a.name = rest[1].to_string();
    }
    a.resource = rest[0].to_string();

    if a.name.is_empty() && a.verb == "get" {
        let q = Query::parse(query);
        a.verb = if q.watch { "watch" } else { "list" }.to_string();
        if let Some(name) = q.field_name.filter(|n| valid_path_segment(n)) {
            a.name = name;
        }
    }
    if a.name.is_empty() && a.verb == "delete" {
        a.verb = "deletecollection".into();
    }
    Ok(Attributes::Resource(a))
}

/// The list options that matter to the attributes.
struct Query {
    watch: bool,
    field_name: Option<String>,
}

impl Query {
    /// `watch` is true unless absent, `0` or `false` (any case); the name comes
    /// from the first `fieldSelector` when it parses and requires `metadata.name`.
    fn parse(query: Option<&str>) -> Query {
        let mut watch = None;
        let mut selector = None;
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "watch" if watch.is_none() => {
                    watch = Some(!(v == "0" || v.eq_ignore_ascii_case("false")))
                }
                "fieldSelector" if selector.is_none() => selector = Some(v.into_owned()),
                _ => {}
            }
        }
        Query {
            watch: watch.unwrap_or(false),
            field_name: selector.and_then(|s| required_name(&s)),
        }
    }
}

/// The value a field selector requires `metadata.name` to equal (`=` or `==`),
/// if it parses. Terms are comma-separated; `\,`, `\=` and `\\` escape.
fn required_name(selector: &str) -> Option<String> {
    let mut found = None;
    for term in split_terms(selector) {
        let (field, op, value) = split_term(&term)?;
        let value = unescape(value)?;
        if found.is_none() && field == "metadata.name" && op != "!=" {
            found = Some(value);
        }
    }
    found
}

/// Splits at commas that are not escaped.
fn split_terms(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = vec![String::new()];
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(String::new());
            continue;
        }
        terms.last_mut().expect("non-empty").push(c);
    }
    terms
}

/// `field op value` at the first operator (`!=`, `==`, `=`).
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    (0..term.len())
        .filter(|i| term.is_char_boundary(*i))
        .find_map(|i| {
            ["!=", "==", "="]
                .into_iter()
                .find(|op| term[i..].starts_with(op))
                .map(|op| (&term[..i], op, &term[i + op.len()..]))
        })
}

/// Removes selector escapes; `None` for an invalid escape.
fn unescape(v: &str) -> Option<String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                _ => return None,
            },
            '=' | ',' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// A name usable as a path segment (not `.`/`..`, no `/` or `%`).
fn valid_path_segment(name: &str) -> bool {
    name != "." && name != ".." && !name.contains('/') && !name.contains('%')
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "/apis/metrics.smi-spec.io/v1alpha1";

    fn res(path: &str, query: Option<&str>) -> ResourceAttributes {
        match attributes(&Method::GET, path, query).unwrap() {
            Attributes::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    /// (verb, namespace, resource, subresource, name)
    fn short(r: &ResourceAttributes) -> (&str, &str, &str, &str, &str) {
        (&r.verb, &r.namespace, &r.resource, &r.subresource, &r.name)
    }

    #[test]
    fn the_smi_paths_map_like_the_reference_table() {
        let cases = [
            (
                "/namespaces/default/deployments",
                ("list", "default", "deployments", "", ""),
            ),
            (
                "/namespaces/default/deployments/web",
                ("get", "default", "deployments", "", "web"),
            ),
            (
                "/namespaces/default/deployments/web/edges",
                ("get", "default", "deployments", "edges", "web"),
            ),
            ("/namespaces", ("list", "", "namespaces", "", "")),
            (
                "/namespaces/default",
                ("get", "default", "namespaces", "", "default"),
            ),
            (
                "/namespaces/default/edges",
                ("list", "default", "edges", "", ""),
            ),
            ("/deployments", ("list", "", "deployments", "", "")),
            (
                "/namespaces/default/status",
                ("get", "default", "namespaces", "status", "default"),
            ),
            (
                "/namespaces/default/pods/*/metric",
                ("get", "default", "pods", "metric", "*"),
            ),
        ];
        for (p, want) in cases {
            let r = res(&format!("{BASE}{p}"), None);
            assert_eq!(short(&r), want, "{p}");
            assert_eq!(
                (r.group.as_str(), r.version.as_str()),
                ("metrics.smi-spec.io", "v1alpha1")
            );
        }
    }

    #[test]
    fn any_group_and_the_core_group_are_resource_paths() {
        let r = res(
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/a/pods/*/rps",
            None,
        );
        assert_eq!(r.group, "custom.metrics.k8s.io");
        assert_eq!(short(&r), ("get", "a", "pods", "rps", "*"));
        let r = res("/api/v1/namespaces/kube-system/configmaps/x", None);
        assert_eq!((r.group.as_str(), r.version.as_str()), ("", "v1"));
        assert_eq!(short(&r), ("get", "kube-system", "configmaps", "", "x"));
    }

    #[test]
    fn short_and_foreign_paths_are_non_resource() {
        for p in [
            "/",
            "/apis",
            "/apis/metrics.smi-spec.io",
            BASE,
            "/openapi/v2",
            "/api/v1",
            "/metrics",
            "/x/y/z/w",
        ] {
            assert_eq!(
                attributes(&Method::GET, p, None).unwrap(),
                Attributes::NonResource {
                    path: p.into(),
                    verb: "get".into()
                },
                "{p}"
            );
        }
        assert_eq!(
            attributes(&Method::HEAD, "/apis/", None).unwrap(),
            Attributes::NonResource {
                path: "/apis/".into(),
                verb: "head".into()
            }
        );
    }

    #[test]
    fn methods_and_query_choose_the_verb() {
        let p = format!("{BASE}/namespaces/a/deployments");
        for (q, verb) in [
            ("watch=true", "watch"),
            ("watch=1", "watch"),
            ("watch=", "watch"),
            ("watch=FALSE", "list"),
            ("watch=0", "list"),
            ("timeout=32s", "list"),
        ] {
            assert_eq!(res(&p, Some(q)).verb, verb, "{q}");
        }
        let verb = |m: Method, p: &str| match attributes(&m, p, None).unwrap() {
            Attributes::Resource(r) => r.verb,
            Attributes::NonResource { verb, .. } => verb,
        };
        assert_eq!(verb(Method::HEAD, &format!("{p}/web")), "get");
        assert_eq!(verb(Method::POST, &p), "create");
        assert_eq!(verb(Method::DELETE, &p), "deletecollection");
        assert_eq!(verb(Method::DELETE, &format!("{p}/web")), "delete");
        assert_eq!(verb(Method::PUT, &format!("{p}/web")), "update");
        assert_eq!(verb(Method::PATCH, &format!("{p}/web")), "patch");
        assert_eq!(verb(Method::OPTIONS, &format!("{p}/web")), "");
    }

    #[test]
    fn path_verbs_are_honoured() {
        let r = res(&format!("{BASE}/watch/namespaces/a/deployments"), None);
        assert_eq!(short(&r), ("watch", "a", "deployments", "", ""));
        let r = res(&format!("{BASE}/proxy/namespaces/a/pods/p/x/y"), None);
        assert_eq!(short(&r), ("proxy", "a", "pods", "", "p"));
        assert!(attributes(&Method::GET, &format!("{BASE}/watch"), None).is_err());
    }

    #[test]
    fn field_selectors_can_name_the_object() {
        let p = format!("{BASE}/namespaces/a/deployments");
        for (q, name) in [
            ("fieldSelector=metadata.name%3Dweb", "web"),
            ("fieldSelector=metadata.name==web,status.x=1", "web"),
            ("fieldSelector=status.x%3D1,metadata.name%3Dweb", "web"),
            ("fieldSelector=metadata.name!=web", ""),
            ("fieldSelector=metadata.name=a%5C,b", "a,b"),
            ("fieldSelector=metadata.name=a%2Fb", ""),
            ("fieldSelector=metadata.name=%2E%2E", ""),
            ("fieldSelector=metadata.name=web,junk", ""),
            ("fieldSelector=metadata.name=a%5Cxb", ""),
            (
                "fieldSelector=metadata.name=x&fieldSelector=metadata.name=y",
                "x",
            ),
        ] {
            let r = res(&p, Some(q));
            assert_eq!((r.verb.as_str(), r.name.as_str()), ("list", name), "{q}");
        }
    }
}
