//! Bearer tokens (`Authorization: Bearer <token>`), authenticated by a
//! TokenReview (`POST /apis/authentication.k8s.io/v1/tokenreviews`). Answers —
//! authenticated or not — are cached for `--authentication-token-webhook-cache-ttl`
//! under the token's SHA-256 (the token itself is not kept); concurrent requests
//! with the same token share one review. Failures to reach the API are not cached.

use std::sync::Arc;
use std::time::Duration;

use apiservice::status::ApiError;
use http::HeaderMap;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use moka::future::Cache;

use super::kube::{Kube, Purpose};
use super::user::UserInfo;

/// The outcome of a review: the user, or why the token was not accepted.
pub type Outcome = Result<UserInfo, String>;

/// The token from an `Authorization: Bearer` header, if there is a non-empty one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Authenticates bearer tokens through the Kubernetes API.
pub struct TokenAuthenticator {
    kube: Kube,
    cache: Option<Cache<[u8; 32], Arc<Outcome>>>,
}

impl TokenAuthenticator {
    /// Caches answers for `ttl` (0: no cache).
    pub fn new(kube: Kube, ttl: Duration) -> TokenAuthenticator {
        let cache = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl)
                .build()
        });
        TokenAuthenticator { kube, cache }
    }

    /// Reviews `token`; `Err` only when the API could not answer.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<Outcome>, ApiError> {
        let Some(cache) = &self.cache else {
            return self.review(token).await.map(Arc::new);
        };
        let key: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .expect("SHA-256 has 32 bytes");
        cache
            .try_get_with(key, async { self.review(token).await.map(Arc::new) })
            .await
            .map_err(|e| (*e).clone())
    }

    async fn review(&self, token: &str) -> Result<Outcome, ApiError> {
        let api: Api<TokenReview> = Api::all(self.kube.client.clone());
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let params = PostParams::default();
        let answer = self
            .kube
            .call(Purpose::TokenReview, || api.create(&params, &review))
            .await?;
        let status = answer.status.unwrap_or_default();
        let user = status.user.unwrap_or_default();
        Ok(match (status.authenticated, user.username) {
            (Some(true), Some(name)) if !name.is_empty() => Ok(UserInfo {
                name,
                uid: user.uid.unwrap_or_default(),
                groups: user.groups.unwrap_or_default(),
                extra: user.extra.unwrap_or_default(),
            }),
            _ => Err(format!(
                "bearer token not accepted by TokenReview: {}",
                status.error.as_deref().unwrap_or("not authenticated")
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn only_bearer_tokens_are_taken() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(v).unwrap(),
            );
            h
        };
        assert_eq!(bearer(&with("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&with("bearer abc extra")), Some("abc"));
        assert_eq!(bearer(&with("Bearer ")), None);
        assert_eq!(bearer(&with("Basic YTpi")), None);
        assert_eq!(bearer(&with("Bearer")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
