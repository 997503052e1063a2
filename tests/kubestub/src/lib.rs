//! `kubestub`: a small stand-in for kube-apiserver, for tests that cannot run a
//! real one. It listens on `127.0.0.1` (plain HTTP) and answers, with the real
//! API's JSON shapes:
//!
//! * `POST /apis/authentication.k8s.io/v1/tokenreviews`: tokens registered with
//!   [`KubeStub::add_token`] are authenticated as their user, any other token is not;
//! * `POST /apis/authorization.k8s.io/v1/subjectaccessreviews`: decided by the
//!   rules added with [`KubeStub::allow`] / [`KubeStub::deny`] (first match wins,
//!   no match means not allowed);
//! * `GET` of objects stored with [`KubeStub::put`] — one object, a list
//!   (`<Kind>List`), or a watch (`?watch=true`, newline-delimited events from
//!   `resourceVersion`, `fieldSelector=metadata.name=<n>`, `timeoutSeconds`) —
//!   for any resource under `/api/v1` or `/apis/<group>/<version>`.
//!
//! Every request is recorded ([`KubeStub::requests`], with typed views
//! [`KubeStub::token_reviews`] and [`KubeStub::access_reviews`]) so tests can
//! assert what a client asked and how often. [`KubeStub::fail_with`] makes every
//! request fail with a status code, and [`KubeStub::stop`] takes the stand-in
//! down (connections refused), to test how clients cope with a broken API.
//!
//! ```no_run
//! # async fn demo() {
//! use kubestub::{KubeStub, Rule, user_info};
//! let stub = KubeStub::start().await;
//! stub.add_token("t0k3n", user_info("alice", "uid-1", &["dev"]));
//! stub.allow(Rule::user("alice").verb("list").resource("deployments"));
//! std::fs::write("/tmp/kubeconfig", stub.kubeconfig()).unwrap();
//! # }
//! ```

mod rules;
mod store;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use k8s_openapi::api::authentication::v1::{
    TokenReview, TokenReviewSpec, TokenReviewStatus, UserInfo,
};
use k8s_openapi::api::authorization::v1::{
    SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{Metadata, Resource};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use rules::{Decision, Rule};
use store::{Key, Selection, Store};

/// The path TokenReviews are posted to.
pub const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
/// The path SubjectAccessReviews are posted to.
pub const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
/// The bearer token in [`KubeStub::kubeconfig`] (the client's own credential).
pub const CLIENT_TOKEN: &str = "kubestub-client-token";

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Request headers (names lower-case), in order.
    pub headers: Vec<(String, String)>,
    /// The body, if it was JSON.
    pub body: Option<Value>,
}

impl Recorded {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A user for [`KubeStub::add_token`].
pub fn user_info(name: &str, uid: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        username: Some(name.into()),
        uid: (!uid.is_empty()).then(|| uid.into()),
        groups: Some(groups.iter().map(|g| g.to_string()).collect()),
        extra: None,
    }
}

#[derive(Default)]
struct Rules {
    tokens: std::collections::HashMap<String, UserInfo>,
    access: Vec<(Rule, Decision)>,
    requests: Vec<Recorded>,
    failure: Option<u16>,
}

struct Inner {
    rules: Mutex<Rules>,
    store: Mutex<Store>,
    changed: watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running stand-in for kube-apiserver.
pub struct KubeStub {
    addr: SocketAddr,
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
}

impl KubeStub {
    /// Starts serving on a free port of 127.0.0.1.
    pub async fn start() -> KubeStub {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("kubestub: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("kubestub: local address");
        let inner = Arc::new(Inner {
            rules: Mutex::new(Rules::default()),
            store: Mutex::new(Store::default()),
            changed: watch::channel(0).0,
        });
        let (stop, stopped) = watch::channel(false);
        let app = Router::new().fallback(handle).with_state(inner.clone());
        tokio::spawn(serve(listener, app, stopped));
        KubeStub { addr, inner, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig (YAML) whose current context points here, authenticating
    /// with the bearer token [`CLIENT_TOKEN`].
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubestub\n  cluster:\n    server: {}\n\
             users:\n- name: kubestub\n  user:\n    token: {CLIENT_TOKEN}\n\
             contexts:\n- name: kubestub\n  context:\n    cluster: kubestub\n    user: kubestub\n\
             current-context: kubestub\n",
            self.url()
        )
    }

    /// TokenReviews of `token` authenticate it as `user` from now on.
    pub fn add_token(&self, token: &str, user: UserInfo) {
        lock(&self.inner.rules).tokens.insert(token.into(), user);
    }

    /// Appends a rule that allows the access reviews it matches.
    pub fn allow(&self, rule: Rule) {
        lock(&self.inner.rules).access.push((rule, Decision::Allow));
    }

    /// Appends a rule that denies the access reviews it matches, with `reason`.
    pub fn deny(&self, rule: Rule, reason: &str) {
        lock(&self.inner.rules)
            .access
            .push((rule, Decision::Deny(reason.into())));
    }

    /// Makes every request fail with this HTTP status (a `Status` body), or
    /// (`None`) behave normally again.
    pub fn fail_with(&self, code: Option<u16>) {
        lock(&self.inner.rules).failure = code;
    }

    /// Creates or replaces an object (its namespace and name come from its
    /// metadata); open watches see ADDED or MODIFIED.
    pub fn put<K>(&self, object: &K)
    where
        K: Resource + Metadata<Ty = ObjectMeta> + serde::Serialize,
    {
        let meta = object.metadata();
        let key = Key {
            prefix: prefix::<K>(),
            resource: K::URL_PATH_SEGMENT.into(),
            namespace: meta.namespace.clone(),
            name: meta
                .name
                .clone()
                .expect("kubestub: object without metadata.name"),
        };
        let value = serde_json::to_value(object).expect("kubestub: object serializes");
        let mut store = lock(&self.inner.store);
        store.put(key, K::KIND, value);
        self.inner.changed.send_replace(store.resource_version());
    }

    /// Deletes an object; open watches see DELETED. False if there was none.
    pub fn delete<K: Resource>(&self, namespace: Option<&str>, name: &str) -> bool {
        let key = Key {
            prefix: prefix::<K>(),
            resource: K::URL_PATH_SEGMENT.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
        };
        let mut store = lock(&self.inner.store);
        let found = store.delete(&key);
        self.inner.changed.send_replace(store.resource_version());
        found
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.inner.rules).requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.inner.rules).requests.clear();
    }

    /// The specs of the TokenReviews received so far.
    pub fn token_reviews(&self) -> Vec<TokenReviewSpec> {
        self.bodies::<TokenReview>(TOKEN_REVIEWS)
            .into_iter()
            .map(|r| r.spec)
            .collect()
    }

    /// The specs of the SubjectAccessReviews received so far.
    pub fn access_reviews(&self) -> Vec<SubjectAccessReviewSpec> {
        self.bodies::<SubjectAccessReview>(ACCESS_REVIEWS)
            .into_iter()
            .map(|r| r.spec)
            .collect()
    }

    fn bodies<T: serde::de::DeserializeOwned>(&self, path: &str) -> Vec<T> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == path)
            .filter_map(|r| r.body.and_then(|b| serde_json::from_value(b).ok()))
            .collect()
    }

    /// Stops serving: the port refuses connections and open ones (watches
    /// included) are closed.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        // let the accept loop notice before the caller relies on it
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(self.addr).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for KubeStub {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// `api/v1` or `apis/<group>/<version>` for resource type `K`.
fn prefix<K: Resource>() -> String {
    if K::GROUP.is_empty() {
        format!("api/{}", K::VERSION)
    } else {
        format!("apis/{}/{}", K::GROUP, K::VERSION)
    }
}

async fn serve(listener: TcpListener, app: Router, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let svc = TowerToHyperService::new(app.clone());
                connections.spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    // dropping the listener and the JoinSet closes the port and every connection
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A `Status` failure like kube-apiserver's.
fn status(code: u16, message: &str) -> Response {
    let reason = match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    };
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code,
        }),
    )
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let failure = {
        let mut rules = lock(&inner.rules);
        rules.requests.push(Recorded {
            method: parts.method.to_string(),
            path: path.clone(),
            query: query.clone(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.clone(),
        });
        rules.failure
    };
    if let Some(code) = failure {
        return status(
            code,
            &format!("kubestub: failing every request with {code} as the test asked"),
        );
    }
    match (parts.method, path.as_str()) {
        (Method::POST, TOKEN_REVIEWS) => token_review(&inner, body),
        (Method::POST, ACCESS_REVIEWS) => access_review(&inner, body),
        (Method::GET, _) => match Selection::parse(&path) {
            Some(sel) => get(&inner, sel, query.as_deref()),
            None => status(404, "the server could not find the requested resource"),
        },
        (m, _) => status(405, &format!("kubestub does not implement {m} {path}")),
    }
}

fn token_review(inner: &Inner, body: Option<Value>) -> Response {
    let Some(review) = body.and_then(|b| serde_json::from_value::<TokenReview>(b).ok()) else {
        return status(400, "the body is not a TokenReview");
    };
    let token = review.spec.token.clone().unwrap_or_default();
    let user = lock(&inner.rules).tokens.get(&token).cloned();
    let status = match user {
        Some(user) => TokenReviewStatus {
            authenticated: Some(true),
            user: Some(user),
            audiences: review.spec.audiences.clone(),
            error: None,
        },
        None => TokenReviewStatus {
            authenticated: None,
            user: Some(UserInfo::default()),
            audiences: None,
            error: Some("[invalid bearer token, token lookup failed]".into()),
        },
    };
    let answer = TokenReview {
        metadata: ObjectMeta::default(),
        spec: review.spec,
        status: Some(status),
    };
    json_response(
        StatusCode::CREATED,
        &serde_json::to_value(answer).unwrap_or_default(),
    )
}

fn access_review(inner: &Inner, body: Option<Value>) -> Response {
    let Some(review) = body.and_then(|b| serde_json::from_value::<SubjectAccessReview>(b).ok())
    else {
        return status(400, "the body is not a SubjectAccessReview");
    };
    let decision = lock(&inner.rules)
        .access
        .iter()
        .find(|(rule, _)| rule.matches(&review.spec))
        .map(|(_, d)| d.clone());
    let status = match decision {
        Some(Decision::Allow) => SubjectAccessReviewStatus {
            allowed: true,
            reason: Some("kubestub: allowed by rule".into()),
            ..Default::default()
        },
        Some(Decision::Deny(reason)) => SubjectAccessReviewStatus {
            allowed: false,
            denied: Some(true),
            reason: Some(reason),
            ..Default::default()
        },
        None => SubjectAccessReviewStatus::default(),
    };
    let answer = SubjectAccessReview {
        metadata: ObjectMeta::default(),
        spec: review.spec,
        status: Some(status),
    };
    json_response(
        StatusCode::CREATED,
        &serde_json::to_value(answer).unwrap_or_default(),
    )
}

/// The query parameters GET understands.
#[derive(Default)]
struct GetParams {
    watch: bool,
    resource_version: Option<u64>,
    field_name: Option<String>,
    timeout: Option<Duration>,
}

impl GetParams {
    fn parse(query: Option<&str>) -> GetParams {
        let mut p = GetParams::default();
        for pair in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match k {
                "watch" => p.watch = !matches!(v.to_ascii_lowercase().as_str(), "false" | "0"),
                "resourceVersion" => p.resource_version = v.parse().ok().filter(|rv| *rv > 0),
                "timeoutSeconds" => p.timeout = v.parse().ok().map(Duration::from_secs),
                "fieldSelector" => {
                    p.field_name = v
                        .strip_prefix("metadata.name==")
                        .or_else(|| v.strip_prefix("metadata.name="))
                        .map(str::to_string)
                }
                _ => {}
            }
        }
        p
    }
}

/// Decodes `%XX` escapes and `+` in a query value.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn get(inner: &Arc<Inner>, sel: Selection, query: Option<&str>) -> Response {
    let params = GetParams::parse(query);
    if params.watch {
        return watch(inner.clone(), sel, params);
    }
    let store = lock(&inner.store);
    match &sel.name {
        Some(name) => match store.get(&sel) {
            Some(obj) => json_response(StatusCode::OK, &obj),
            None => status(404, &format!("{} \"{name}\" not found", sel.resource)),
        },
        None => json_response(
            StatusCode::OK,
            &store.list(&sel, params.field_name.as_deref()),
        ),
    }
}

/// A watch: newline-delimited events, until `timeoutSeconds` (default 5
/// minutes) or until the client goes away.
fn watch(inner: Arc<Inner>, sel: Selection, params: GetParams) -> Response {
    let field = params.field_name.clone();
    let (first, last, changed) = {
        let store = lock(&inner.store);
        let mut changed = inner.changed.subscribe();
        changed.borrow_and_update();
        let first = store.events(&sel, field.as_deref(), params.resource_version);
        (first, store.resource_version(), changed)
    };
    let deadline = tokio::time::Instant::now() + params.timeout.unwrap_or(Duration::from_secs(300));
    let pending: std::collections::VecDeque<String> = first.into_iter().map(|(_, l)| l).collect();
    let state = (inner, sel, field, last, changed, pending);
    let stream = futures::stream::unfold(state, move |mut st| async move {
        loop {
            let (inner, sel, field, last, changed, pending) = &mut st;
            if let Some(line) = pending.pop_front() {
                return Some((Ok::<Bytes, Infallible>(Bytes::from(line)), st));
            }
            {
                let store = lock(&inner.store);
                changed.borrow_and_update();
                for (rv, line) in store.events(sel, field.as_deref(), Some(*last)) {
                    *last = rv.max(*last);
                    pending.push_back(line);
                }
            }
            if !pending.is_empty() {
                continue;
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return None },
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
