//! ConfigMap `kube-system/extension-apiserver-authentication`, where
//! kube-apiserver publishes the client CA, the front-proxy CA and the
//! requestheader settings. It is read at startup and then watched (list, then
//! watch from that resourceVersion; re-listed whenever a watch ends or fails,
//! with back-off), so CA rotation takes effect without a restart.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use tokio::sync::watch;

use super::kube::{Kube, Purpose};
use apiservice::status::ApiError;

/// The ConfigMap's namespace.
pub const NAMESPACE: &str = "kube-system";
/// The ConfigMap's name.
pub const NAME: &str = "extension-apiserver-authentication";

/// The settings the ConfigMap publishes (`None`: key absent or empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// `client-ca-file` (PEM).
    pub client_ca: Option<String>,
    /// `requestheader-client-ca-file` (PEM).
    pub requestheader_ca: Option<String>,
    /// `requestheader-allowed-names`.
    pub allowed_names: Option<Vec<String>>,
    /// `requestheader-username-headers`.
    pub username_headers: Option<Vec<String>>,
    /// `requestheader-uid-headers`.
    pub uid_headers: Option<Vec<String>>,
    /// `requestheader-group-headers`.
    pub group_headers: Option<Vec<String>>,
    /// `requestheader-extra-headers-prefix`.
    pub extra_headers_prefix: Option<Vec<String>>,
}

impl Published {
    /// Reads the settings; `None` (no ConfigMap) publishes nothing. Fails on a
    /// list key that is not a JSON array of strings.
    pub fn from_configmap(cm: Option<&ConfigMap>) -> Result<Published, String> {
        let empty = BTreeMap::new();
        let data = cm.and_then(|c| c.data.as_ref()).unwrap_or(&empty);
        let text = |key: &str| data.get(key).filter(|v| !v.trim().is_empty()).cloned();
        let list = |key: &str| -> Result<Option<Vec<String>>, String> {
            text(key)
                .map(|v| {
                    serde_json::from_str::<Vec<String>>(&v).map_err(|e| {
                        format!("ConfigMap {NAMESPACE}/{NAME} key {key}: not a JSON array of strings: {e}")
                    })
                })
                .transpose()
        };
        Ok(Published {
            client_ca: text("client-ca-file"),
            requestheader_ca: text("requestheader-client-ca-file"),
            allowed_names: list("requestheader-allowed-names")?,
            username_headers: list("requestheader-username-headers")?,
            uid_headers: list("requestheader-uid-headers")?,
            group_headers: list("requestheader-group-headers")?,
            extra_headers_prefix: list("requestheader-extra-headers-prefix")?,
        })
    }
}

fn api(kube: &Kube) -> Api<ConfigMap> {
    Api::namespaced(kube.client.clone(), NAMESPACE)
}

/// Reads the ConfigMap once (`None` if it does not exist).
pub async fn read(kube: &Kube) -> Result<Option<ConfigMap>, ApiError> {
    let api = api(kube);
    kube.call(Purpose::ConfigMap, || api.get_opt(NAME)).await
}

/// The longest pause between failed attempts to list or watch.
const MAX_PAUSE: Duration = Duration::from_secs(30);
/// How long one watch request may stay open (the API server may end it sooner).
const WATCH_SECONDS: u32 = 290;

/// Keeps calling `on_change` with the ConfigMap's content (`None` when it is
/// absent) until `shutdown` turns true; errors are logged with what to check.
pub fn spawn_watch<F>(kube: Kube, mut shutdown: watch::Receiver<bool>, mut on_change: F)
where
    F: FnMut(Option<&ConfigMap>) + Send + 'static,
{
    tokio::spawn(async move {
        let mut pause = Duration::from_secs(1);
        loop {
            tokio::select! {
                ended = list_and_watch(&kube, &mut on_change) => match ended {
                    Ok(()) => pause = Duration::from_secs(1),
                    Err(e) => {
                        tracing::warn!("watching ConfigMap {NAMESPACE}/{NAME}: {}", kube.error(Purpose::ConfigMap, Some(&e)).message);
                        pause = (pause * 2).min(MAX_PAUSE);
                    }
                },
                _ = shutdown.wait_for(|s| *s) => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    });
}

/// One list followed by one watch, until the watch ends.
async fn list_and_watch<F>(kube: &Kube, on_change: &mut F) -> Result<(), kube::Error>
where
    F: FnMut(Option<&ConfigMap>),
{
    let api = api(kube);
    let fields = format!("metadata.name={NAME}");
    let list = api.list(&ListParams::default().fields(&fields)).await?;
    on_change(list.items.first());
    let version = list.metadata.resource_version.unwrap_or_default();
    let events = api
        .watch(
            &WatchParams::default()
                .fields(&fields)
                .timeout(WATCH_SECONDS),
            &version,
        )
        .await?;
    futures::pin_mut!(events);
    while let Some(event) = events.try_next().await? {
        match event {
            WatchEvent::Added(cm) | WatchEvent::Modified(cm) => on_change(Some(&cm)),
            WatchEvent::Deleted(_) => on_change(None),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(status) => return Err(kube::Error::Api(status)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_and_lists_must_be_json_arrays() {
        let mut cm = ConfigMap {
            data: Some(
                [
                    ("client-ca-file", "PEM1"),
                    ("requestheader-client-ca-file", "PEM2"),
                    ("requestheader-allowed-names", "[\"front-proxy-client\"]"),
                    ("requestheader-username-headers", "[\"X-Remote-User\"]"),
                    ("requestheader-group-headers", "[]"),
                    ("requestheader-extra-headers-prefix", ""),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ),
            ..ConfigMap::default()
        };
        let p = Published::from_configmap(Some(&cm)).unwrap();
        assert_eq!(p.client_ca.as_deref(), Some("PEM1"));
        assert_eq!(p.requestheader_ca.as_deref(), Some("PEM2"));
        assert_eq!(
            p.allowed_names,
            Some(vec!["front-proxy-client".to_string()])
        );
        assert_eq!(p.username_headers, Some(vec!["X-Remote-User".to_string()]));
        assert_eq!(p.group_headers, Some(vec![]));
        assert_eq!(p.uid_headers, None);
        assert_eq!(p.extra_headers_prefix, None);
        assert_eq!(
            Published::from_configmap(None).unwrap(),
            Published::default()
        );
        cm.data
            .as_mut()
            .unwrap()
            .insert("requestheader-uid-headers".into(), "X-Remote-Uid".into());
        let err = Published::from_configmap(Some(&cm)).unwrap_err();
        assert!(err.contains("requestheader-uid-headers"), "{err}");
    }
}
