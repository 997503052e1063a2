//! Delegated authentication and authorization, the way k8s.io/apiserver-based
//! servers (metrics-server, prometheus-adapter) do it: the Kubernetes API
//! decides who a caller is and what they may do.
//!
//! For each API request:
//!
//! 1. [`request_info`] derives the attributes kube-apiserver would (verb, API
//!    group, resource, subresource, namespace, name; or path for non-resource
//!    requests);
//! 2. paths in `--authorization-always-allow-paths` ([`paths`]) are served as is;
//! 3. [`authenticator`] finds the user: front-proxy certificate + `X-Remote-*`
//!    headers ([`requestheader`]), cluster client certificate ([`x509`]), bearer
//!    token via TokenReview ([`token`]), or anonymous if enabled — else 401;
//! 4. members of `system:masters` are allowed; anyone else is asked about with a
//!    SubjectAccessReview ([`sar`], cached) — 403 in kube-apiserver's words if
//!    not allowed.
//!
//! Certificates are checked against the CA bundles ([`ca`]) in force in the
//! swappable [`trust::Trust`], which [`sources`] keeps current from
//! `--client-ca-file`/`--requestheader-client-ca-file` (re-read when they
//! change) or ConfigMap kube-system/extension-apiserver-authentication
//! ([`configmap`], watched). The Kubernetes API is reached through [`kube`];
//! when it cannot answer, requests get a 503/500 `Status` that says what to check.

pub mod authenticator;
pub mod ca;
pub mod configmap;
pub mod kube;
pub mod paths;
pub mod request_info;
pub mod requestheader;
pub mod sar;
pub mod sources;
pub mod token;
pub mod trust;
pub mod user;
pub mod x509;

use std::sync::Arc;

use apiservice::status::ApiError;
use axum::extract::Request;
use http::{HeaderMap, Method};
use rustls::pki_types::CertificateDer;
use tokio::sync::watch;

use crate::config::AuthConfig;
use crate::listener::ConnInfo;
use authenticator::Authenticator;
use paths::AlwaysAllowPaths;
use sar::AccessReviewer;
use trust::Trust;

/// Delegated authentication and authorization, ready to check requests.
pub struct Delegated {
    paths: AlwaysAllowPaths,
    authenticator: Authenticator,
    reviewer: AccessReviewer,
}

impl Delegated {
    /// Connects to the Kubernetes API, loads the client-certificate trust and
    /// keeps it current until `shutdown`. Returns the checker and the trust (which
    /// the TLS layer verifies client certificates against).
    pub async fn start(
        cfg: &AuthConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Delegated, Arc<Trust>), String> {
        let kube = kube::Kube::connect(cfg.kubeconfig.as_deref()).await?;
        let trust = sources::start(cfg, &kube, shutdown).await?;
        tracing::info!(
            api = kube.url(),
            anonymous = cfg.anonymous,
            "delegated authentication and authorization through the Kubernetes API"
        );
        let tokens = token::TokenAuthenticator::new(kube.clone(), cfg.token_cache_ttl);
        let delegated = Delegated {
            paths: AlwaysAllowPaths::new(&cfg.always_allow_paths),
            authenticator: Authenticator::new(trust.clone(), tokens, cfg.anonymous),
            reviewer: AccessReviewer::new(kube, cfg.authorized_ttl, cfg.unauthorized_ttl),
        };
        Ok((delegated, trust))
    }

    /// `Ok` when the request `facts` describe may be served, else the `Status`
    /// to answer with.
    pub async fn authorize(&self, facts: &RequestFacts) -> Result<(), ApiError> {
        let attrs = request_info::attributes(&facts.method, &facts.path, facts.query.as_deref())
            .map_err(ApiError::internal)?;
        if self.paths.allows(&attrs) {
            return Ok(());
        }
        let user = self
            .authenticator
            .authenticate(&facts.headers, facts.peer_certs.as_deref())
            .await?;
        if user.in_group(user::MASTERS) {
            return Ok(());
        }
        let decision = self.reviewer.review(&user, &attrs).await?;
        if decision.allowed {
            return Ok(());
        }
        tracing::debug!(user = %user.name, ?attrs, reason = %decision.reason, "forbidden");
        Err(sar::forbidden(&user, &attrs, &decision.reason))
    }
}

/// What authentication and authorization need to know about a request, taken
/// from it up front (so that checking it does not borrow it).
#[derive(Debug, Clone)]
pub struct RequestFacts {
    /// The method.
    pub method: Method,
    /// The %-decoded path (what Go's `URL.Path` holds, and RequestInfo parses).
    pub path: String,
    /// The raw query string.
    pub query: Option<String>,
    /// The headers.
    pub headers: HeaderMap,
    /// The connection's client certificate chain, if any.
    pub peer_certs: Option<Arc<[CertificateDer<'static>]>>,
}

impl RequestFacts {
    /// The facts of `req` (its [`ConnInfo`] extension supplies the certificates).
    pub fn of(req: &Request) -> RequestFacts {
        RequestFacts {
            method: req.method().clone(),
            path: percent_encoding::percent_decode_str(req.uri().path())
                .decode_utf8_lossy()
                .into_owned(),
            query: req.uri().query().map(str::to_string),
            headers: req.headers().clone(),
            peer_certs: req
                .extensions()
                .get::<ConnInfo>()
                .and_then(|c| c.peer_certs.clone()),
        }
    }
}
