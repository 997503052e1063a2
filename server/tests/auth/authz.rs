//! What the server asks the Kubernetes API, and how it remembers the answers.

use std::time::Duration;

use k8s_openapi::api::authorization::v1::SubjectAccessReviewSpec;
use kubestub::{user_info, Rule};
use serde_json::{json, Value};

use crate::support::*;

/// The review's attributes as JSON (resource or non-resource).
fn attributes(spec: &SubjectAccessReviewSpec) -> Value {
    let v = serde_json::to_value(spec).unwrap();
    if v["resourceAttributes"].is_object() {
        v["resourceAttributes"].clone()
    } else {
        v["nonResourceAttributes"].clone()
    }
}

fn res(verb: &str, ns: &str, resource: &str, sub: &str, name: &str) -> Value {
    let mut v = json!({"verb": verb, "group": "metrics.smi-spec.io", "version": "v1alpha1", "resource": resource});
    for (k, x) in [("namespace", ns), ("subresource", sub), ("name", name)] {
        if !x.is_empty() {
            v[k] = json!(x);
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_review_attributes_match_kube_apiserver() {
    let c = Cluster::start(&[]).await;
    c.stub.add_token("t", user_info("kim", "", &[]));
    c.stub.allow(Rule::user("kim"));
    let http = c.client(None);
    let cases: Vec<(String, Value)> = vec![
        (
            format!("{BASE}/namespaces/default/deployments"),
            res("list", "default", "deployments", "", ""),
        ),
        (
            format!("{BASE}/namespaces/default/deployments/web"),
            res("get", "default", "deployments", "", "web"),
        ),
        (
            format!("{BASE}/namespaces/default/deployments/web/edges"),
            res("get", "default", "deployments", "edges", "web"),
        ),
        (
            format!("{BASE}/namespaces"),
            res("list", "", "namespaces", "", ""),
        ),
        (
            format!("{BASE}/namespaces/default"),
            res("get", "default", "namespaces", "", "default"),
        ),
        (
            format!("{BASE}/namespaces/default/edges"),
            res("list", "default", "edges", "", ""),
        ),
        (
            format!("{BASE}/deployments"),
            res("list", "", "deployments", "", ""),
        ),
        (
            format!("{BASE}/pods?watch=true"),
            res("watch", "", "pods", "", ""),
        ),
        (
            format!("{BASE}/namespaces/default/pods?fieldSelector=metadata.name%3Dweb-0"),
            res("list", "default", "pods", "", "web-0"),
        ),
        ("/apis".into(), json!({"path": "/apis", "verb": "get"})),
        (
            "/apis/metrics.smi-spec.io".into(),
            json!({"path": "/apis/metrics.smi-spec.io", "verb": "get"}),
        ),
        (BASE.into(), json!({"path": BASE, "verb": "get"})),
        (
            "/openapi/v2".into(),
            json!({"path": "/openapi/v2", "verb": "get"}),
        ),
        (
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/requests_per_second".into(),
            json!({"namespace": "shop", "verb": "get", "group": "custom.metrics.k8s.io", "version": "v1beta2",
                   "resource": "pods", "subresource": "requests_per_second", "name": "*"}),
        ),
    ];
    for (path, want) in &cases {
        let before = c.stub.access_reviews().len();
        let (code, body) = get(http.get(c.url(path)).bearer_auth("t")).await;
        assert!(code != 401 && code != 403, "{path}: {code} {body}");
        let reviews = c.stub.access_reviews();
        assert_eq!(reviews.len(), before + 1, "{path}");
        let review = reviews.last().unwrap();
        assert_eq!(&attributes(review), want, "{path}");
        assert_eq!(review.user.as_deref(), Some("kim"));
        assert_eq!(
            review.groups.as_deref(),
            Some(&["system:authenticated".to_string()][..]),
            "{path}"
        );
    }
    // HEAD asks like GET
    let before = c.stub.access_reviews().len();
    let resp = http
        .head(c.url(&format!("{BASE}/namespaces/x/deployments/y")))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status().as_u16(), 403);
    let review = &c.stub.access_reviews()[before];
    assert_eq!(attributes(review), res("get", "x", "deployments", "", "y"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_masters_skip_the_access_review() {
    let c = Cluster::start(&[]).await;
    let fp = c.front_proxy();
    // kube-apiserver's availability probe
    for _ in 0..2 {
        let (code, body) = get(fp
            .get(c.url(BASE))
            .header("X-Remote-User", "system:kube-aggregator")
            .header("X-Remote-Group", "system:masters"))
        .await;
        assert_eq!(code, 200, "{body}");
    }
    assert!(c.stub.access_reviews().is_empty());
    // its legacy discovery fetch carries no groups: reviewed, with system:authenticated added
    c.stub
        .allow(Rule::any().group("system:authenticated").path(BASE));
    let (code, body) = get(fp
        .get(c.url(BASE))
        .header("X-Remote-User", "system:kube-aggregator"))
    .await;
    assert_eq!(code, 200, "{body}");
    let reviews = c.stub.access_reviews();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0].user.as_deref(), Some("system:kube-aggregator"));
    assert_eq!(
        reviews[0].groups.as_deref(),
        Some(&["system:authenticated".to_string()][..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_and_denied_answers_are_cached_for_their_own_time() {
    let c = Cluster::start(&[
        "--authorization-webhook-cache-authorized-ttl",
        "3s",
        "--authorization-webhook-cache-unauthorized-ttl",
        "0",
    ])
    .await;
    c.stub.add_token("t", user_info("lee", "", &[]));
    c.stub.allow(Rule::user("lee").path(BASE));
    let http = c.client(None);
    let ask = |path: &str| get(http.get(c.url(path)).bearer_auth("t"));
    let count = |path: &str| {
        c.stub
            .access_reviews()
            .iter()
            .filter(|r| {
                r.non_resource_attributes
                    .as_ref()
                    .and_then(|n| n.path.as_deref())
                    == Some(path)
            })
            .count()
    };
    for _ in 0..3 {
        assert_eq!(ask(BASE).await.0, 200);
        assert_eq!(ask("/apis").await.0, 403);
    }
    assert_eq!(count(BASE), 1, "allowed answer cached");
    assert_eq!(count("/apis"), 3, "denied answers not cached with a 0 TTL");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(ask(BASE).await.0, 200);
    assert_eq!(count(BASE), 2, "asked again after the allowed TTL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_answers_are_cached_by_default() {
    let c = Cluster::start(&[]).await;
    c.stub.add_token("t", user_info("max", "", &[]));
    c.stub.deny(Rule::user("max"), "nope");
    let http = c.client(None);
    for _ in 0..3 {
        let (code, body) = get(http.get(c.url("/apis")).bearer_auth("t")).await;
        assert_eq!(code, 403);
        assert_eq!(
            body["message"],
            "forbidden: User \"max\" cannot get path \"/apis\": nope"
        );
    }
    assert_eq!(c.stub.access_reviews().len(), 1);
    // a different request is a different review
    assert_eq!(get(http.get(c.url(BASE)).bearer_auth("t")).await.0, 403);
    assert_eq!(c.stub.access_reviews().len(), 2);
}
