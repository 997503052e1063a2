//! Files that may change under a running server (the serving certificate and
//! key, CA bundles mounted from Secrets or ConfigMaps) are re-read every
//! [`POLL_INTERVAL`] and compared by content, which also catches Kubernetes'
//! symlink-swapping volume updates. A change is handed to a callback; a file that
//! cannot be read keeps the last good content in force.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

/// How often watched files are re-read.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Reads every file, naming the one that failed.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<Vec<u8>>, String> {
    paths
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display())))
        .collect()
}

/// Polls `paths` every `interval` until `shutdown` turns true (or its sender is
/// gone). Whenever their contents differ from the last seen (starting with
/// `initial`), `apply` gets the new contents; its error is logged (the caller
/// keeps what it had), and `what` names the files in logs. The task ends with
/// the shutdown.
pub fn spawn<F>(
    what: String,
    paths: Vec<PathBuf>,
    initial: Vec<Vec<u8>>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut apply: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut(&[Vec<u8>]) -> Result<(), String> + Send + 'static,
{
    tokio::spawn(async move {
        let mut last = initial;
        let mut last_error = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            let paths = paths.clone();
            let read = tokio::task::spawn_blocking(move || read_all(&paths))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            let contents = match read {
                Ok(c) => c,
                Err(e) => {
                    if last_error.as_ref() != Some(&e) {
                        tracing::warn!("cannot re-read {what}: {e}; keeping the current one");
                        last_error = Some(e);
                    }
                    continue;
                }
            };
            last_error = None;
            if contents == last {
                continue;
            }
            match apply(&contents) {
                Ok(()) => tracing::info!("reloaded {what}"),
                Err(e) => tracing::warn!(
                    "{what} changed but cannot be used: {e}; keeping the current one"
                ),
            }
            last = contents;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn changes_are_applied_once_and_polling_stops() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "a1").unwrap();
        std::fs::write(&b, "b1").unwrap();
        let paths = vec![a.clone(), b.clone()];
        let initial = read_all(&paths).unwrap();
        assert!(read_all(&[dir.path().join("missing")])
            .unwrap_err()
            .contains("missing"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = watch::channel(false);
        let log = seen.clone();
        let task = spawn(
            "test files".into(),
            paths,
            initial,
            Duration::from_millis(20),
            rx,
            move |c| {
                log.lock().unwrap().push(c.to_vec());
                Err("refused".into())
            },
        );
        let seen_now = || seen.lock().unwrap().clone();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(seen_now().is_empty(), "unchanged files are not re-applied");
        std::fs::write(&b, "b2").unwrap();
        std::fs::remove_file(&a).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            seen_now().is_empty(),
            "an unreadable file keeps the old contents"
        );
        std::fs::write(&a, "a1").unwrap();
        let want = vec![vec![b"a1".to_vec(), b"b2".to_vec()]];
        for _ in 0..200 {
            if !seen_now().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(seen_now(), want, "applied once even though refused");
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("polling stops at shutdown")
            .unwrap();
    }
}
