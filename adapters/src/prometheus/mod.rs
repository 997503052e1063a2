//! A small client for the Prometheus HTTP API (works with Prometheus, Thanos, Mimir,
//! VictoriaMetrics): instant queries, decoded into compact [`Vector`]s, with
//! timeouts and errors that say what to check.
//!
//! `client.rs` sends the queries ([`PrometheusClient`]), `stream.rs` decodes an instant
//! answer while it arrives ([`VectorStream`]), falling back to the complete decoder of
//! `decode.rs` ([`decode_vector`]); `direct.rs` holds the connections to an `http://`
//! Prometheus, driven by the task that asks ([`Direct`]), with `in_task.rs` keeping that
//! task from waking itself on every hand-off; `labels.rs` holds a sample's [`Labels`], which
//! shares one buffer with the label sets of the other samples of its answer.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::model::UnixMillis;

mod client;
mod decode;
mod direct;
mod in_task;
mod labels;
mod stream;

pub use client::{BasicAuth, PrometheusClient, PrometheusConfig};
pub use decode::{decode_matrix, decode_vector, parse_value};
pub use direct::{Answer, Direct};
pub use labels::Labels;
pub use stream::VectorStream;

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series labels.
    pub labels: Labels,
    /// The value (may be NaN or infinite).
    pub value: f64,
}

/// The result of an instant query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vector(pub Vec<Sample>);

impl Vector {
    /// A rough size in bytes, for cache weighing.
    pub fn approx_bytes(&self) -> usize {
        self.0
            .iter()
            .map(|s| 96 + s.labels.approx_bytes())
            .sum::<usize>()
            + 32
    }
}

/// The result of a range query: series with their `(Unix ms, value)` points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matrix(pub Vec<(Labels, Vec<(i64, f64)>)>);

/// Why a query produced no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    /// The connection failed (DNS, refused, TLS).
    #[error("cannot reach Prometheus at {url}: {detail}; check the backend's prometheus URL and that Prometheus is running")]
    Unreachable {
        /// The Prometheus base URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// No answer within the configured timeout.
    #[error("Prometheus at {url} did not answer within {timeout:?}; it may be overloaded, or raise the backend timeout")]
    Timeout {
        /// The Prometheus base URL.
        url: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// Prometheus answered with an error envelope or an error status.
    #[error("Prometheus at {url} answered HTTP {status} ({error_type}): {message}")]
    Rejected {
        /// The Prometheus base URL.
        url: String,
        /// HTTP status of the answer.
        status: u16,
        /// Prometheus' `errorType` (`bad_data`, `timeout`, `unavailable`, ...).
        error_type: String,
        /// Prometheus' error message.
        message: String,
    },
    /// The answer could not be understood.
    #[error("unexpected answer from Prometheus at {url}: {detail}")]
    BadResponse {
        /// The Prometheus base URL.
        url: String,
        /// What was wrong with it.
        detail: String,
    },
}

/// Runs instant queries. Implemented by [`PrometheusClient`] and by caching layers.
pub trait Executor: Send + Sync {
    /// Evaluates `promql` at time `at`.
    fn instant<'a>(
        &'a self,
        promql: &'a str,
        at: UnixMillis,
    ) -> BoxFuture<'a, Result<Arc<Vector>, QueryError>>;
}
