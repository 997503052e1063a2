//! [`Direct`]: plain-HTTP/1.1 keep-alive connections to Prometheus, each driven by the
//! task that sends a query on it.
//!
//! A general-purpose client (reqwest, and hyper's pooled client under it) gives every
//! connection a task of its own: a query is handed to that task, which may run on another
//! worker thread, and its answer is handed back, chunk by chunk. A cache miss sends a few
//! queries and then only waits, so those hand-offs wake idle workers for nothing (in the
//! benchmark's probes they were about a fifth of the server's CPU on a small miss: see
//! BENCHMARKS.md). Here the task that asks writes the query, reads the answer and, once
//! the answer is read to its end, puts the connection back in the pool; nothing else runs,
//! and the hand-offs between the connection and its receivers do not wake that task
//! either ([`InTask`]).
//!
//! Used for `http://` Prometheus URLs without credentials in them, when no HTTP proxy is
//! set in the environment (`HTTP_PROXY`, `ALL_PROXY`); the rest goes through reqwest
//! ([`super::PrometheusClient`] chooses).

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONNECTION, HOST};
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::in_task::InTask;

/// Idle connections kept per Prometheus (as reqwest's `pool_max_idle_per_host`).
const MAX_IDLE: usize = 64;
/// An idle connection older than this is closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

type Connection = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// A pool of keep-alive connections to one `http://` Prometheus.
#[derive(Debug)]
pub struct Direct {
    /// `host:port`, as connected to.
    authority: String,
    /// The `Host` header: the URL's host, and its port when the URL names one.
    host: HeaderValue,
    connect_timeout: Duration,
    idle: Mutex<Vec<(TcpStream, Instant)>>,
}

impl Direct {
    /// A pool for `url`, or `None` when the URL needs what only reqwest does here: TLS,
    /// credentials in the URL (`http://user:password@…`), or an HTTP proxy from the
    /// environment.
    pub fn for_url(url: &reqwest::Url, connect_timeout: Duration) -> Option<Direct> {
        let proxied = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
        let credentials = !url.username().is_empty() || url.password().is_some();
        if url.scheme() != "http" || credentials || proxied {
            return None;
        }
        let host = url.host_str()?;
        let host_header = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        Some(Direct {
            authority: format!("{host}:{}", url.port_or_known_default()?),
            host: HeaderValue::from_str(&host_header).ok()?,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// POSTs `body` to `path` with `headers` (and `Host`), on an idle
    /// connection if there is one. A reused connection that fails before the answer's
    /// head (Prometheus may have closed it while idle) is replaced by a new one once; the
    /// queries are read-only, so asking twice is harmless.
    pub async fn post(
        &self,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer<'_>, String> {
        let mut headers = headers;
        headers.insert(HOST, self.host.clone());
        if let Some(stream) = self.take_idle() {
            if let Ok(answer) = self.send(stream, path, headers.clone(), body.clone()).await {
                return Ok(answer);
            }
        }
        let stream =
            tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.authority))
                .await
                .map_err(|_| format!("no connection within {:?}", self.connect_timeout))?
                .map_err(|e| format!("connect {}: {e}", self.authority))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        self.send(stream, path, headers, body).await
    }

    /// Sends one request on `stream` and waits for the answer's head, driving the
    /// connection in this task.
    async fn send(
        &self,
        stream: TcpStream,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer<'_>, String> {
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        let mut request = http::Request::post(path)
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        *request.headers_mut() = headers;
        let mut sent = pin!(sender.send_request(request));
        let mut conn = Some(conn);
        let mut ended = None;
        let in_task = InTask::new();
        let response = poll_fn(|cx| {
            in_task.poll(cx, |cx| {
                // the connection writes the request and reads the head into `sent` (and,
                // for a short answer, may read all of it and see the connection end)
                if let Some(c) = conn.as_mut() {
                    if let Poll::Ready(r) = c.poll_without_shutdown(cx) {
                        conn = None;
                        ended = Some(
                            r.err()
                                .map_or("Prometheus closed the connection".into(), |e| {
                                    e.to_string()
                                }),
                        );
                    }
                }
                match sent.as_mut().poll(cx) {
                    Poll::Ready(r) => Poll::Ready(r.map_err(|e| e.to_string())),
                    Poll::Pending => match ended.take() {
                        Some(why) => Poll::Ready(Err(why)),
                        None => Poll::Pending,
                    },
                }
            })
        })
        .await?;
        let reusable = !response
            .headers()
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let status = response.status().as_u16();
        let content_length = response.body().size_hint().exact();
        Ok(Answer {
            status,
            content_length,
            body: Some(response.into_body()),
            sender: Some(sender),
            conn,
            reusable,
            pool: self,
            in_task,
        })
    }

    /// The most recently used idle connection that is not too old.
    fn take_idle(&self) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((stream, since)) = idle.pop() {
            if since.elapsed() < IDLE_TIMEOUT {
                return Some(stream);
            }
        }
        None
    }

    fn put_idle(&self, stream: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push((stream, Instant::now()));
        }
    }
}

/// An answer whose body is read with [`Answer::chunk`]; its connection goes back to the
/// pool when the body has been read to its end (and is closed if it is dropped before).
pub struct Answer<'a> {
    /// The HTTP status.
    pub status: u16,
    /// The body's length, when Prometheus said it.
    pub content_length: Option<u64>,
    body: Option<Incoming>,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
    conn: Option<Connection>,
    reusable: bool,
    pool: &'a Direct,
    in_task: InTask,
}

impl Answer<'_> {
    /// The next piece of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            let Some(body) = self.body.as_mut() else {
                return Ok(None);
            };
            let conn = &mut self.conn;
            let in_task = &self.in_task;
            let frame = poll_fn(|cx| {
                in_task.poll(cx, |cx| {
                    // the connection reads the body into `body`; once it is done, `body`
                    // still holds what it read
                    if let Some(c) = conn.as_mut() {
                        match c.poll_without_shutdown(cx) {
                            Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e.to_string()))),
                            Poll::Ready(Ok(())) => *conn = None,
                            Poll::Pending => {}
                        }
                    }
                    std::pin::Pin::new(&mut *body)
                        .poll_frame(cx)
                        .map(|f| f.map(|f| f.map_err(|e| e.to_string())))
                })
            })
            .await;
            match frame {
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        return Ok(Some(data));
                    }
                }
                None => {
                    self.body = None;
                    self.recycle();
                    return Ok(None);
                }
            }
        }
    }

    /// After the body's end: pools the connection if its exchange is over (with the
    /// request side closed, the connection finishes at once; one that does not is closed
    /// rather than waited for).
    fn recycle(&mut self) {
        // closing the request side wakes the connection, which this task drove: not a
        // reason to poll the task again
        let (sender, conn) = (self.sender.take(), self.conn.take());
        let finished = self.in_task.quietly(|| {
            drop(sender);
            let mut conn = conn?;
            let mut cx = Context::from_waker(Waker::noop());
            match conn.poll_without_shutdown(&mut cx) {
                Poll::Ready(Ok(())) => Some(conn),
                _ => None,
            }
        });
        let Some(conn) = finished.filter(|_| self.reusable) else {
            return;
        };
        let parts = conn.into_parts();
        if parts.read_buf.is_empty() {
            self.pool.put_idle(parts.io.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    //! The transport against a loopback HTTP/1.1 stand-in with Prometheus' wire behaviour
    //! (the answers are the API's JSON shape); the decoding and the numbers are tested
    //! against a real Prometheus in `tests/e2e`.

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::model::UnixMillis;
    use crate::prometheus::{PrometheusClient, PrometheusConfig, QueryError};

    const ANSWER: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"deployment":"web"},"value":[1.5,"2.5"]}]}}"#;

    /// How the stand-in answers.
    #[derive(Clone, Copy)]
    enum Mode {
        /// Keep-alive, `Content-Length`.
        KeepAlive,
        /// Keep-alive, the body in three chunks written apart.
        Chunked,
        /// `Content-Length`, then, a little later, the connection is closed without
        /// saying so (as an idle timeout does).
        CloseAfterEach,
        /// Reads the request and never answers.
        Silent,
    }

    struct Stub {
        url: String,
        accepted: Arc<AtomicUsize>,
        heads: Arc<Mutex<Vec<String>>>,
    }

    async fn stub(mode: Mode) -> Stub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (a, h) = (accepted.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(conn, mode, h.clone()));
            }
        });
        Stub {
            url,
            accepted,
            heads,
        }
    }

    /// Serves requests on one connection until the client closes it.
    async fn serve(mut conn: TcpStream, mode: Mode, heads: Arc<Mutex<Vec<String>>>) {
        let mut buf = Vec::new();
        loop {
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 4096];
                match conn.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < head_end + length {
                let mut chunk = [0u8; 4096];
                match conn.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
            heads.lock().unwrap().push(format!("{head}{body}"));
            buf.drain(..head_end + length);
            let written = match mode {
                Mode::Silent => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                Mode::KeepAlive | Mode::CloseAfterEach => {
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{ANSWER}",
                        ANSWER.len()
                    );
                    conn.write_all(resp.as_bytes()).await
                }
                Mode::Chunked => chunked(&mut conn).await,
            };
            if written.is_err() {
                return;
            }
            if matches!(mode, Mode::CloseAfterEach) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                return;
            }
        }
    }

    async fn chunked(conn: &mut TcpStream) -> std::io::Result<()> {
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await?;
        let third = ANSWER.len() / 3;
        for piece in [
            &ANSWER[..third],
            &ANSWER[third..2 * third],
            &ANSWER[2 * third..],
        ] {
            conn.write_all(format!("{:x}\r\n{piece}\r\n", piece.len()).as_bytes())
                .await?;
            conn.flush().await?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        conn.write_all(b"0\r\n\r\n").await
    }

    fn client(url: &str, extra: impl FnOnce(&mut PrometheusConfig)) -> PrometheusClient {
        let mut cfg = PrometheusConfig::with_url(url);
        extra(&mut cfg);
        PrometheusClient::new(cfg).unwrap()
    }

    async fn ask(c: &PrometheusClient) -> Result<f64, QueryError> {
        let v = c.query("up", UnixMillis(1_500)).await?;
        assert_eq!(v.0.len(), 1);
        assert_eq!(v.0[0].labels.get("deployment"), Some("web"));
        Ok(v.0[0].value)
    }

    #[tokio::test]
    async fn one_connection_serves_every_query_with_credentials_and_headers() {
        let s = stub(Mode::KeepAlive).await;
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "s3cret\n").unwrap();
        let c = client(&s.url, |cfg| {
            cfg.basic_auth = Some(crate::prometheus::BasicAuth {
                username: "mesh".into(),
                password_file: password.clone(),
            });
            cfg.headers
                .insert("X-Scope-OrgID".into(), "tenant-1".into());
        });
        for _ in 0..3 {
            assert_eq!(ask(&c).await.unwrap(), 2.5);
        }
        assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
        let heads = s.heads.lock().unwrap().clone();
        assert_eq!(heads.len(), 3);
        let host = s.url.trim_start_matches("http://");
        for head in heads {
            assert!(
                head.starts_with("post /api/v1/query http/1.1\r\n"),
                "{head}"
            );
            // base64 of "mesh:s3cret"
            assert!(
                head.contains("authorization: basic bwvzadpzm2nyzxq=\r\n"),
                "{head}"
            );
            assert!(head.contains("x-scope-orgid: tenant-1\r\n"), "{head}");
            assert!(head.contains(&format!("host: {host}\r\n")), "{head}");
            assert!(head.contains("content-type: application/x-www-form-urlencoded\r\n"));
            assert!(
                head.ends_with("query=up&time=1.500&timeout=10000ms"),
                "{head}"
            );
        }
    }

    /// Wake-ups of a task that arrive while the task is being polled (hand-offs inside
    /// it, each of which a multi-thread runtime turns into waking an idle worker).
    struct Counting {
        task: Waker,
        polling: std::sync::atomic::AtomicBool,
        during_poll: Arc<AtomicUsize>,
    }

    impl std::task::Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            if self.polling.load(Ordering::SeqCst) {
                self.during_poll.fetch_add(1, Ordering::SeqCst);
            }
            self.task.wake_by_ref();
        }
    }

    /// Runs `fut` to its end and counts the wake-ups its task got while being polled.
    async fn wakes_during_poll<F: Future>(fut: F) -> (F::Output, usize) {
        let during_poll = Arc::new(AtomicUsize::new(0));
        let mut fut = pin!(fut);
        let out = poll_fn(|cx| {
            let counting = Arc::new(Counting {
                task: cx.waker().clone(),
                polling: true.into(),
                during_poll: during_poll.clone(),
            });
            let waker = Waker::from(counting.clone());
            let polled = fut.as_mut().poll(&mut Context::from_waker(&waker));
            counting.polling.store(false, Ordering::SeqCst);
            polled
        })
        .await;
        (out, during_poll.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn a_query_wakes_its_task_only_from_outside() {
        for mode in [Mode::KeepAlive, Mode::Chunked] {
            let s = stub(mode).await;
            let c = client(&s.url, |_| {});
            // a new connection, then the same one again
            for _ in 0..2 {
                let (answer, wakes) = wakes_during_poll(ask(&c)).await;
                assert_eq!(answer.unwrap(), 2.5);
                assert_eq!(wakes, 0);
            }
            assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
        }
    }

    #[tokio::test]
    async fn a_chunked_answer_is_read_to_its_end_and_the_connection_reused() {
        let s = stub(Mode::Chunked).await;
        let c = client(&s.url, |_| {});
        assert_eq!(ask(&c).await.unwrap(), 2.5);
        assert_eq!(ask(&c).await.unwrap(), 2.5);
        assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced() {
        let s = stub(Mode::CloseAfterEach).await;
        let c = client(&s.url, |_| {});
        for _ in 0..3 {
            assert_eq!(ask(&c).await.unwrap(), 2.5);
            // the stand-in closes the connection after the client pooled it
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(s.accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn no_answer_is_a_timeout_and_no_listener_is_unreachable() {
        let s = stub(Mode::Silent).await;
        let c = client(&s.url, |cfg| cfg.timeout = Duration::from_millis(200));
        assert!(matches!(ask(&c).await, Err(QueryError::Timeout { .. })));

        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let err = ask(&client(&url, |_| {})).await.unwrap_err();
        assert!(matches!(err, QueryError::Unreachable { .. }), "{err}");
        assert!(err
            .to_string()
            .contains("check the backend's prometheus URL"));
    }

    #[test]
    fn only_plain_http_without_url_credentials_is_direct() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let t = Duration::from_secs(1);
        assert!(Direct::for_url(&url("https://prometheus:9090"), t).is_none());
        assert!(Direct::for_url(&url("http://user:pw@prometheus:9090"), t).is_none());
        let d = Direct::for_url(&url("http://prometheus.monitoring"), t).unwrap();
        assert_eq!(d.authority, "prometheus.monitoring:80");
        assert_eq!(d.host, "prometheus.monitoring");
        let d = Direct::for_url(&url("http://[::1]:9090/prefix"), t).unwrap();
        assert_eq!(d.authority, "[::1]:9090");
        assert_eq!(d.host, "[::1]:9090");
    }
}
