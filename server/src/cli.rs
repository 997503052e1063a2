//! The `mesh-metrics` command: parse flags, set up logging, run until SIGTERM/SIGINT.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Flags};

/// How long open requests may run after a termination signal.
const DRAIN: Duration = Duration::from_secs(15);

/// Runs the command; the process exit code says how it ended (2: bad configuration).
pub fn main() -> ExitCode {
    let config = match Config::from_flags(Flags::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mesh-metrics: {e}\nRun mesh-metrics --help for the flags.");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|e| {
        eprintln!(
            "mesh-metrics: --log-level {:?}: {e}; using info",
            config.log_level
        );
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mesh-metrics: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let server = match crate::start(&config, DRAIN).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let backends: Vec<String> = config
            .backends
            .iter()
            .map(|b| format!("{}={:?}@{}", b.name, b.mesh, b.prometheus.url))
            .collect();
        tracing::info!(
            address = %server.local_addr(),
            authorization = ?config.authorization_mode,
            backends = %backends.join(","),
            "serving metrics.smi-spec.io/v1alpha1 over HTTPS"
        );
        wait_for_signal().await;
        tracing::info!(
            "shutting down: no longer ready, draining open requests for up to {DRAIN:?}"
        );
        server.shutdown(DRAIN).await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
