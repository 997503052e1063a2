//! Authorization by SubjectAccessReview
//! (`POST /apis/authorization.k8s.io/v1/subjectaccessreviews`): the user, their
//! groups and extras, and the request's attributes go to the Kubernetes API,
//! whose authorizers (RBAC) decide. Answers are cached by the whole review,
//! "allowed" for `--authorization-webhook-cache-authorized-ttl` and "not allowed"
//! for `--authorization-webhook-cache-unauthorized-ttl`; concurrent identical
//! reviews share one call. Failures to reach the API are not cached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiservice::status::{ApiError, Subject};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use moka::future::Cache;
use moka::Expiry;

use super::kube::{Kube, Purpose};
use super::request_info::Attributes;
use super::user::UserInfo;

/// What the Kubernetes API decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The authorizer's reason (may be empty).
    pub reason: String,
}

/// Asks the Kubernetes API who may do what, with a cache.
pub struct AccessReviewer {
    kube: Kube,
    cache: Option<Cache<String, Arc<Decision>>>,
}

/// Entry lifetimes by decision.
struct ByDecision {
    allowed: Duration,
    denied: Duration,
}

impl ByDecision {
    fn ttl(&self, d: &Decision) -> Option<Duration> {
        Some(if d.allowed { self.allowed } else { self.denied })
    }
}

impl Expiry<String, Arc<Decision>> for ByDecision {
    fn expire_after_create(&self, _: &String, d: &Arc<Decision>, _: Instant) -> Option<Duration> {
        self.ttl(d)
    }

    fn expire_after_update(
        &self,
        _: &String,
        d: &Arc<Decision>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.ttl(d)
    }
}

impl AccessReviewer {
    /// Caches allowed answers for `allowed_ttl` and others for `denied_ttl` (0: not cached).
    pub fn new(kube: Kube, allowed_ttl: Duration, denied_ttl: Duration) -> AccessReviewer {
        let cache = (!allowed_ttl.is_zero() || !denied_ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(10_000)
                .expire_after(ByDecision {
                    allowed: allowed_ttl,
                    denied: denied_ttl,
                })
                .build()
        });
        AccessReviewer { kube, cache }
    }

    /// Whether `user` may do `attrs`; `Err` only when the API could not answer.
    pub async fn review(
        &self,
        user: &UserInfo,
        attrs: &Attributes,
    ) -> Result<Arc<Decision>, ApiError> {
        let spec = spec(user, attrs);
        let Some(cache) = &self.cache else {
            return self.ask(spec).await.map(Arc::new);
        };
        let key = serde_json::to_string(&spec).unwrap_or_default();
        cache
            .try_get_with(key, async { self.ask(spec).await.map(Arc::new) })
            .await
            .map_err(|e| (*e).clone())
    }

    async fn ask(&self, spec: SubjectAccessReviewSpec) -> Result<Decision, ApiError> {
        let api: Api<SubjectAccessReview> = Api::all(self.kube.client.clone());
        let review = SubjectAccessReview {
            spec,
            ..SubjectAccessReview::default()
        };
        let params = PostParams::default();
        let answer = self
            .kube
            .call(Purpose::AccessReview, || api.create(&params, &review))
            .await?;
        let status = answer.status.unwrap_or_default();
        Ok(Decision {
            allowed: status.allowed && status.denied != Some(true),
            reason: status.reason.unwrap_or_default(),
        })
    }
}

/// `Some(s)` unless `s` is empty (Go leaves empty fields out of the JSON).
fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The review spec for `user` doing `attrs`.
pub fn spec(user: &UserInfo, attrs: &Attributes) -> SubjectAccessReviewSpec {
    let (resource_attributes, non_resource_attributes) = match attrs {
        Attributes::Resource(r) => (
            Some(ResourceAttributes {
                namespace: some(&r.namespace),
                verb: some(&r.verb),
                group: some(&r.group),
                version: some(&r.version),
                resource: some(&r.resource),
                subresource: some(&r.subresource),
                name: some(&r.name),
                ..ResourceAttributes::default()
            }),
            None,
        ),
        Attributes::NonResource { path, verb } => (
            None,
            Some(NonResourceAttributes {
                path: some(path),
                verb: some(verb),
            }),
        ),
    };
    SubjectAccessReviewSpec {
        user: some(&user.name),
        uid: some(&user.uid),
        groups: (!user.groups.is_empty()).then(|| user.groups.clone()),
        extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
        resource_attributes,
        non_resource_attributes,
    }
}

/// The 403 kube-apiserver would answer: `<resource>.<group> "<name>" is
/// forbidden: User "<u>" cannot <verb> resource "<res>[/<sub>]" in API group "<g>"
/// in the namespace "<ns>"` (or `at the cluster scope`), or for other paths
/// `forbidden: User "<u>" cannot <verb> path "<path>"`, then `: <reason>`.
pub fn forbidden(user: &UserInfo, attrs: &Attributes, reason: &str) -> ApiError {
    let u = &user.name;
    let mut subject = Subject::default();
    let (what, prefix) = match attrs {
        Attributes::NonResource { path, verb } => (
            format!("User {u:?} cannot {verb} path {path:?}"),
            "forbidden".to_string(),
        ),
        Attributes::Resource(r) => {
            let mut resource = r.resource.clone();
            if !r.subresource.is_empty() {
                resource = format!("{resource}/{}", r.subresource);
            }
            let scope = if r.namespace.is_empty() {
                "at the cluster scope".to_string()
            } else {
                format!("in the namespace {:?}", r.namespace)
            };
            let what = format!(
                "User {u:?} cannot {} resource {resource:?} in API group {:?} {scope}",
                r.verb, r.group
            );
            let qualified = if r.group.is_empty() {
                r.resource.clone()
            } else {
                format!("{}.{}", r.resource, r.group)
            };
            subject = Subject {
                group: r.group.clone(),
                kind: r.resource.clone(),
                name: r.name.clone(),
            };
            let prefix = match (qualified.is_empty(), r.name.is_empty()) {
                (true, _) => "forbidden".to_string(),
                (false, true) => format!("{qualified} is forbidden"),
                (false, false) => format!("{qualified} {:?} is forbidden", r.name),
            };
            (what, prefix)
        }
    };
    let what = what
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let message = if reason.is_empty() {
        format!("{prefix}: {what}")
    } else {
        format!("{prefix}: {what}: {reason}")
    };
    ApiError::forbidden(message, subject)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::request_info::attributes;
    use http::Method;

    fn attrs(path: &str) -> Attributes {
        attributes(&Method::GET, path, None).unwrap()
    }

    fn alice() -> UserInfo {
        UserInfo {
            name: "alice".into(),
            uid: "u-1".into(),
            groups: vec!["dev".into(), "system:authenticated".into()],
            extra: [("scopes".to_string(), vec!["a".to_string()])].into(),
        }
    }

    #[test]
    fn specs_carry_the_user_and_the_attributes() {
        let s = spec(
            &alice(),
            &attrs("/apis/metrics.smi-spec.io/v1alpha1/namespaces/default/deployments/web/edges"),
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "user": "alice", "uid": "u-1", "groups": ["dev", "system:authenticated"],
                "extra": {"scopes": ["a"]},
                "resourceAttributes": {
                    "namespace": "default", "verb": "get", "group": "metrics.smi-spec.io",
                    "version": "v1alpha1", "resource": "deployments", "subresource": "edges", "name": "web"
                }
            })
        );
        let bare = UserInfo {
            name: "system:kube-aggregator".into(),
            ..UserInfo::default()
        };
        let v = serde_json::to_value(spec(&bare, &attrs("/apis"))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"user": "system:kube-aggregator", "nonResourceAttributes": {"path": "/apis", "verb": "get"}})
        );
    }

    #[test]
    fn forbidden_messages_read_like_kube_apiservers() {
        let base = "/apis/metrics.smi-spec.io/v1alpha1";
        let cases = [
            (
                format!("{base}/namespaces/default/deployments/web/edges"),
                "deployments.metrics.smi-spec.io \"web\" is forbidden: User \"alice\" cannot get resource \
                 \"deployments/edges\" in API group \"metrics.smi-spec.io\" in the namespace \"default\"",
            ),
            (
                format!("{base}/deployments"),
                "deployments.metrics.smi-spec.io is forbidden: User \"alice\" cannot list resource \
                 \"deployments\" in API group \"metrics.smi-spec.io\" at the cluster scope",
            ),
            (
                "/api/v1/namespaces/a/pods".to_string(),
                "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"a\"",
            ),
            (
                "/apis/<x>".to_string(),
                "forbidden: User \"alice\" cannot get path \"/apis/&lt;x&gt;\"",
            ),
        ];
        for (path, want) in cases {
            let e = forbidden(&alice(), &attrs(&path), "");
            assert_eq!((e.code, e.reason), (403, "Forbidden"));
            assert_eq!(e.message, want);
        }
        let e = forbidden(&alice(), &attrs("/apis"), "RBAC: not allowed");
        assert_eq!(
            e.message,
            "forbidden: User \"alice\" cannot get path \"/apis\": RBAC: not allowed"
        );
        // details name the object as kube-apiserver's do (empty for a path)
        let details = |path: &str| {
            let status = forbidden(&alice(), &attrs(path), "").to_status();
            serde_json::to_value(status).unwrap()["details"].clone()
        };
        assert_eq!(
            details(&format!("{base}/namespaces/default/deployments/web/edges")),
            serde_json::json!({"group": "metrics.smi-spec.io", "kind": "deployments", "name": "web"})
        );
        assert_eq!(
            details(&format!("{base}/namespaces/default/trafficmetrics")),
            serde_json::json!({"group": "metrics.smi-spec.io", "kind": "trafficmetrics"})
        );
        assert_eq!(details("/apis"), serde_json::json!({}));
    }
}
