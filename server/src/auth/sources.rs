//! Keeps the [`Trust`] current from its sources: `--client-ca-file` and
//! `--requestheader-client-ca-file` when given (re-read every
//! [`POLL_INTERVAL`](crate::reload::POLL_INTERVAL)), and for whatever they
//! leave out, ConfigMap kube-system/extension-apiserver-authentication
//! (watched). The initial load happens before the server listens; a later
//! change that cannot be used is logged and the previous trust stays in force.

use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use tokio::sync::watch;

use super::ca::CaBundle;
use super::configmap::{self, Published, NAME, NAMESPACE};
use super::kube::Kube;
use super::requestheader::FrontProxy;
use super::trust::Trust;
use crate::config::{AuthConfig, RequestHeaderNames};
use crate::reload::{self, POLL_INTERVAL};

/// Loads the trust settings and starts keeping them current until `shutdown`.
pub async fn start(
    cfg: &AuthConfig,
    kube: &Kube,
    shutdown: watch::Receiver<bool>,
) -> Result<Arc<Trust>, String> {
    let trust = Arc::new(Trust::default());
    if let Some(path) = &cfg.client_ca_file {
        let what = format!("--client-ca-file {}", path.display());
        let t = trust.clone();
        watch_file(&what, path, shutdown.clone(), move |pem, what| {
            t.set_client_ca(Some(CaBundle::from_pem(pem, what)?));
            Ok(())
        })?;
    }
    if let Some(path) = &cfg.requestheader_client_ca_file {
        let what = format!("--requestheader-client-ca-file {}", path.display());
        let (t, cfg) = (trust.clone(), cfg.clone());
        watch_file(&what, path, shutdown.clone(), move |pem, what| {
            t.set_front_proxy(Some(FrontProxy {
                ca: CaBundle::from_pem(pem, what)?,
                allowed_names: cfg.requestheader_allowed_names.clone(),
                headers: cfg.requestheader_headers.clone(),
            }));
            Ok(())
        })?;
    }
    if cfg.client_ca_file.is_none() || cfg.requestheader_client_ca_file.is_none() {
        let mut sink = ConfigMapSink {
            trust: trust.clone(),
            cfg: cfg.clone(),
            last: None,
        };
        match configmap::read(kube).await {
            Ok(cm) => sink.apply(cm.as_ref())?,
            Err(e) if cfg.tolerate_lookup_failure => tracing::warn!(
                "{}; starting without it (--authentication-tolerate-lookup-failure) and retrying in the background",
                e.message
            ),
            Err(e) => {
                return Err(format!(
                    "{}; alternatively pass --client-ca-file and --requestheader-client-ca-file, \
                     or --authentication-tolerate-lookup-failure to start without it",
                    e.message
                ))
            }
        }
        configmap::spawn_watch(kube.clone(), shutdown, move |cm| {
            if let Err(e) = sink.apply(cm) {
                tracing::warn!("{e}; keeping the previous client-certificate trust");
            }
        });
    }
    Ok(trust)
}

/// Loads `path` with `apply` now (failing if it cannot be used) and again
/// whenever its content changes.
fn watch_file<F>(
    what: &str,
    path: &Path,
    shutdown: watch::Receiver<bool>,
    mut apply: F,
) -> Result<(), String>
where
    F: FnMut(&[u8], &str) -> Result<(), String> + Send + 'static,
{
    let paths = vec![path.to_path_buf()];
    let initial = reload::read_all(&paths).map_err(|e| format!("{what}: {e}"))?;
    apply(&initial[0], what)?;
    let name = what.to_string();
    reload::spawn(
        name.clone(),
        paths,
        initial,
        POLL_INTERVAL,
        shutdown,
        move |c| apply(&c[0], &name),
    );
    Ok(())
}

/// Applies the ConfigMap's settings to the parts no flag set.
struct ConfigMapSink {
    trust: Arc<Trust>,
    cfg: AuthConfig,
    last: Option<Published>,
}

impl ConfigMapSink {
    fn apply(&mut self, cm: Option<&ConfigMap>) -> Result<(), String> {
        let p = Published::from_configmap(cm)?;
        if self.last.as_ref() == Some(&p) {
            return Ok(());
        }
        let origin = |key: &str| format!("ConfigMap {NAMESPACE}/{NAME} key {key}");
        let client_ca = match (&self.cfg.client_ca_file, &p.client_ca) {
            (Some(_), _) => None,
            (None, pem) => Some(
                pem.as_ref()
                    .map(|pem| CaBundle::from_pem(pem.as_bytes(), &origin("client-ca-file")))
                    .transpose()?,
            ),
        };
        let front_proxy = match (&self.cfg.requestheader_client_ca_file, &p.requestheader_ca) {
            (Some(_), _) => None,
            (None, pem) => Some(
                pem.as_ref()
                    .map(|pem| -> Result<FrontProxy, String> {
                        let flags = &self.cfg.requestheader_headers;
                        let pick = |published: &Option<Vec<String>>, flag: &Vec<String>| {
                            published.clone().unwrap_or_else(|| flag.clone())
                        };
                        Ok(FrontProxy {
                            ca: CaBundle::from_pem(
                                pem.as_bytes(),
                                &origin("requestheader-client-ca-file"),
                            )?,
                            allowed_names: pick(
                                &p.allowed_names,
                                &self.cfg.requestheader_allowed_names,
                            ),
                            headers: RequestHeaderNames {
                                username: pick(&p.username_headers, &flags.username),
                                uid: pick(&p.uid_headers, &flags.uid),
                                group: pick(&p.group_headers, &flags.group),
                                extra_prefix: pick(&p.extra_headers_prefix, &flags.extra_prefix),
                            },
                        })
                    })
                    .transpose()?,
            ),
        };
        if cm.is_none() {
            tracing::warn!(
                "ConfigMap {NAMESPACE}/{NAME} does not exist: client-certificate authentication from it is off until it does"
            );
        }
        if let Some(ca) = client_ca {
            tracing::info!(
                present = ca.is_some(),
                "client CA from ConfigMap {NAMESPACE}/{NAME}"
            );
            self.trust.set_client_ca(ca);
        }
        if let Some(fp) = front_proxy {
            match &fp {
                Some(fp) => tracing::info!(
                    allowed_names = ?fp.allowed_names,
                    "front-proxy CA from ConfigMap {NAMESPACE}/{NAME}"
                ),
                None => tracing::warn!(
                    "ConfigMap {NAMESPACE}/{NAME} has no requestheader-client-ca-file: front-proxy (aggregated) requests cannot be authenticated"
                ),
            }
            self.trust.set_front_proxy(fp);
        }
        self.last = Some(p);
        Ok(())
    }
}
