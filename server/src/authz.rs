//! Authorization of API requests (health probes never get here).
//!
//! `AlwaysAllow` serves everyone. `Delegated` is meant to ask the Kubernetes API
//! (SubjectAccessReview); until that is wired in, it refuses every request with a
//! 403 that says so, rather than silently allowing.

use apiservice::status::ApiError;
use axum::extract::Request;

use crate::config::AuthorizationMode;

/// Decides whether a request may be served.
#[derive(Debug, Clone)]
pub struct Authorizer {
    mode: AuthorizationMode,
}

impl Authorizer {
    /// An authorizer for `mode`.
    pub fn new(mode: AuthorizationMode) -> Self {
        Authorizer { mode }
    }

    /// `Ok` when the request may proceed, else the `Status` to answer with.
    pub fn authorize(&self, _req: &Request) -> Result<(), ApiError> {
        match self.mode {
            AuthorizationMode::AlwaysAllow => Ok(()),
            AuthorizationMode::Delegated => Err(ApiError::forbidden(
                "delegated authorization (SubjectAccessReview) is not available in this build, so every request is refused; \
                 run with --authorization-mode=AlwaysAllow for local use",
            )),
        }
    }
}
