//! Who is asking: the authenticators of k8s.io/apiserver's delegating chain, in
//! its order, the first success winning:
//!
//! 1. front-proxy certificate + identity headers ([`super::requestheader`]);
//! 2. client certificate from the cluster client CA ([`super::x509`]);
//! 3. bearer token via TokenReview ([`super::token`]);
//! 4. anonymous, only with `--anonymous-auth` and only for requests that
//!    presented no credentials at all (bad credentials are never anonymous).
//!
//! Every authenticated identity gets `system:authenticated`.

use std::sync::Arc;

use apiservice::status::ApiError;
use http::HeaderMap;
use rustls::pki_types::CertificateDer;

use super::token::{self, TokenAuthenticator};
use super::trust::Trust;
use super::user::UserInfo;
use super::x509;

/// The authenticator chain.
pub struct Authenticator {
    trust: Arc<Trust>,
    tokens: TokenAuthenticator,
    anonymous: bool,
}

impl Authenticator {
    /// A chain over `trust` and `tokens`; `anonymous` enables the last step.
    pub fn new(trust: Arc<Trust>, tokens: TokenAuthenticator, anonymous: bool) -> Authenticator {
        Authenticator {
            trust,
            tokens,
            anonymous,
        }
    }

    /// Authenticates a request from its headers and the connection's client
    /// certificate chain. 401 when nothing authenticates it; 503/500 when the
    /// Kubernetes API was needed and could not answer.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        chain: Option<&[CertificateDer<'static>]>,
    ) -> Result<UserInfo, ApiError> {
        let trust = self.trust.current();
        let mut failures = Vec::new();
        if let Some(chain) = chain.filter(|c| !c.is_empty()) {
            if let Some(fp) = &trust.front_proxy {
                match fp.authenticate(chain, headers) {
                    Ok(Some(user)) => return Ok(user.with_authenticated_group()),
                    Ok(None) => {}
                    Err(e) => failures.push(e),
                }
            }
            if let Some(ca) = &trust.client_ca {
                match x509::authenticate(ca, chain) {
                    Ok(user) => return Ok(user.with_authenticated_group()),
                    Err(e) => failures.push(e),
                }
            }
        }
        if let Some(t) = token::bearer(headers) {
            match &*self.tokens.authenticate(t).await? {
                Ok(user) => return Ok(user.clone().with_authenticated_group()),
                Err(e) => failures.push(e.clone()),
            }
        }
        if failures.is_empty() && self.anonymous {
            return Ok(UserInfo::anonymous());
        }
        if failures.is_empty() {
            tracing::debug!("unauthenticated request refused (--anonymous-auth=false)");
        } else {
            tracing::debug!(reasons = %failures.join("; "), "request not authenticated");
        }
        Err(ApiError::unauthorized("Unauthorized"))
    }
}
