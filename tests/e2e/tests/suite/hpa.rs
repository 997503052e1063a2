//! The custom metrics API the HPA reads, against the real Prometheus, with pod
//! labels served by `kubestub` (a stand-in for kube-apiserver, which cannot run
//! here) through the real `kube` client's list+watch.

use std::time::Duration;

use e2e::{env, TestServer};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use meshsim::{Direction, Kind, Mesh, Res};
use serde_json::Value;

fn pod(ns: &str, name: &str, app: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some([("app".to_string(), app.to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn quantity(v: f64) -> String {
    apiservice::quantity::format_milli(v).unwrap()
}

#[test]
fn hpa_reads_smi_metrics() {
    let env = env();
    let truth = env.dataset.truth(Mesh::Linkerd);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stub = rt.block_on(kubestub::KubeStub::start());
    let now = chrono::Utc::now().timestamp() / 10 * 10;
    let pods = truth.list(Kind::Pod, Some("shop"), now, 30);
    for (r, _) in &pods {
        let app = if r.name.starts_with("web-") {
            "web"
        } else {
            "other"
        };
        stub.put(&pod("shop", &r.name, app));
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, stub.kubeconfig()).unwrap();
    let s = TestServer::start(&[
        "--mesh",
        "linkerd",
        "--prometheus-url",
        &env.prom.url(),
        "--authorization-mode",
        "AlwaysAllow",
        "--custom-metrics-versions",
        "v1beta2,v1beta1",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    let get = |path: &str| -> (u16, Value) {
        let (code, _, v) = rt.block_on(s.get(path));
        (code, v)
    };
    let base = "/apis/custom.metrics.k8s.io/v1beta2";

    let (code, disc) = get(base);
    assert_eq!(code, 200);
    assert_eq!(disc["groupVersion"], "custom.metrics.k8s.io/v1beta2");
    assert!(disc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "pods/smi_requests_per_second"));

    // Object metric of a Deployment
    let (code, v) = get(&format!(
        "{base}/namespaces/shop/deployments.apps/web/smi_success_rate"
    ));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["kind"], "MetricValueList");
    let item = &v["items"][0];
    assert_eq!(
        item["describedObject"],
        serde_json::json!({"kind": "Deployment", "namespace": "shop", "name": "web", "apiVersion": "apps/v1"})
    );
    assert_eq!(item["metric"]["name"], "smi_success_rate");
    assert_eq!(item["windowSeconds"], 30);
    let at = e2e::timestamp(&serde_json::json!({"timestamp": item["timestamp"]}));
    let exp = truth.resource(&Res::new(Kind::Deployment, "shop", "web"), at, 30);
    assert_eq!(
        item["value"],
        quantity(exp.success as f64 / (exp.success + exp.failure) as f64)
    );

    // Pods metric with a label selector, resolved from the watch-backed pod cache
    let path =
        format!("{base}/namespaces/shop/pods/*/smi_requests_per_second?labelSelector=app%3Dweb");
    let mut v = Value::Null;
    for _ in 0..50 {
        let (code, body) = get(&path);
        if code == 200 {
            v = body;
            break;
        }
        assert_eq!(
            code, 503,
            "only 'not synced yet' may precede the answer: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let items = v["items"].as_array().expect("pods answered");
    let web_pods: Vec<&Res> = pods
        .iter()
        .map(|(r, _)| r)
        .filter(|r| r.name.starts_with("web-"))
        .collect();
    assert_eq!(items.len(), web_pods.len(), "{v}");
    for item in items {
        let name = item["describedObject"]["name"].as_str().unwrap();
        assert_eq!(item["describedObject"]["kind"], "Pod");
        let at = e2e::timestamp(&serde_json::json!({"timestamp": item["timestamp"]}));
        let exp = truth.resource(&Res::new(Kind::Pod, "shop", name), at, 30);
        assert_eq!(
            item["value"],
            quantity((exp.success + exp.failure) as f64 / 30.0),
            "{name}"
        );
    }

    // edges through metricLabelSelector, and the v1beta1 shape
    let (code, v) = get("/apis/custom.metrics.k8s.io/v1beta1/namespaces/shop/deployments.apps/api/smi_requests_per_second?metricLabelSelector=direction%3Dfrom");
    assert_eq!(code, 200, "{v}");
    let item = &v["items"][0];
    assert_eq!(item["metricName"], "smi_requests_per_second");
    assert_eq!(
        item["selector"],
        serde_json::json!({"matchLabels": {"direction": "from"}})
    );
    let at = e2e::timestamp(&serde_json::json!({"timestamp": item["timestamp"]}));
    let from: u64 = truth
        .edges(&Res::new(Kind::Deployment, "shop", "api"), at, 30)
        .iter()
        .filter(|e| e.direction == Direction::From)
        .map(|e| e.expected.success + e.expected.failure)
        .sum();
    assert_eq!(item["value"], quantity(from as f64 / 30.0));

    // namespace metric; unknown metric; disabled groups are not served
    let (code, v) = get(&format!(
        "{base}/namespaces/payments/metrics/smi_requests_per_second"
    ));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["items"][0]["describedObject"]["kind"], "Namespace");
    let (code, v) = get(&format!(
        "{base}/namespaces/shop/deployments.apps/web/http_requests"
    ));
    assert_eq!((code, v["reason"].as_str()), (404, Some("NotFound")));
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("could not find the metric"));
    drop(s);
    let off = TestServer::start(&[
        "--mesh",
        "linkerd",
        "--prometheus-url",
        &env.prom.url(),
        "--authorization-mode",
        "AlwaysAllow",
    ]);
    let (code, _, _) = rt.block_on(off.get(base));
    assert_eq!(code, 404, "the custom metrics API is off unless enabled");
}
