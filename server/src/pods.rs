//! A watch-backed cache of pod labels, for the custom metrics API's
//! `pods/*/<metric>?labelSelector=...` (the HPA's Pods metrics): one LIST, then a
//! WATCH from its resourceVersion, re-listing after errors. No request lists pods.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apiservice::label_selector::Selector;
use apiservice::status::ApiError;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};

type Labels = BTreeMap<String, String>;

/// Pod labels by namespace and name, kept current by a watch.
#[derive(Default)]
pub struct PodStore {
    pods: RwLock<HashMap<(String, String), Labels>>,
    synced: AtomicBool,
}

impl PodStore {
    /// Starts watching pods in every namespace with `client`; the store fills in
    /// the background.
    pub fn start(client: kube::Client) -> Arc<PodStore> {
        let store = Arc::new(PodStore::default());
        let s = store.clone();
        tokio::spawn(async move {
            let api: Api<Pod> = Api::all(client);
            let mut backoff = Duration::from_millis(200);
            loop {
                match s.sync(&api).await {
                    Ok(()) => backoff = Duration::from_millis(200),
                    Err(e) => {
                        tracing::warn!(
                            "watching pods failed: {e}; retrying in {backoff:?} (the server's ServiceAccount needs list/watch on pods)"
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        });
        store
    }

    /// One LIST and a WATCH until it ends; Ok when the watch closed normally.
    async fn sync(&self, api: &Api<Pod>) -> Result<(), kube::Error> {
        let list = api.list(&ListParams::default()).await?;
        let mut fresh = HashMap::new();
        for p in list.items {
            insert(&mut fresh, &p);
        }
        *self.pods.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        self.synced.store(true, Ordering::Release);
        // the watch ends after its timeout (or on error); the loop in start() re-lists
        let version = list.metadata.resource_version.unwrap_or_default();
        let events = api
            .watch(&WatchParams::default().timeout(290), &version)
            .await?;
        futures::pin_mut!(events);
        while let Some(event) = events.try_next().await? {
            let mut pods = self.pods.write().unwrap_or_else(|e| e.into_inner());
            match event {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => insert(&mut pods, &p),
                WatchEvent::Deleted(p) => {
                    pods.remove(&key(&p));
                }
                WatchEvent::Bookmark(_) => {}
                WatchEvent::Error(e) => {
                    tracing::debug!("pod watch ended: {}", e.message);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Names of the pods in `namespace` whose labels match `selector`.
    pub fn select(&self, namespace: &str, selector: &Selector) -> Result<Vec<String>, ApiError> {
        if !self.synced.load(Ordering::Acquire) {
            return Err(ApiError::unavailable(
                "the pod cache is not synced with the Kubernetes API yet; retry shortly",
            ));
        }
        let pods = self.pods.read().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<String> = pods
            .iter()
            .filter(|((ns, _), labels)| ns == namespace && selector.matches(labels))
            .map(|((_, name), _)| name.clone())
            .collect();
        names.sort();
        Ok(names)
    }
}

fn key(p: &Pod) -> (String, String) {
    (
        p.metadata.namespace.clone().unwrap_or_default(),
        p.metadata.name.clone().unwrap_or_default(),
    )
}

fn insert(pods: &mut HashMap<(String, String), Labels>, p: &Pod) {
    pods.insert(key(p), p.metadata.labels.clone().unwrap_or_default());
}
