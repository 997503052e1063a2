//! Stops the Prometheus servers a test process still runs when it exits. Servers shared by
//! a whole test binary live in statics, which Rust never drops: without this, every run of
//! the end-to-end suite left six Prometheus processes and their data behind.

use std::path::PathBuf;
use std::sync::{Mutex, Once};

/// Servers started and not yet stopped: process id and files.
static RUNNING: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

const SIGKILL: i32 = 9;

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> i32;
    fn kill(pid: i32, signal: i32) -> i32;
}

/// Records a started server until [`forget`]; at exit it is killed and `dir` removed.
pub(crate) fn register(pid: u32, dir: PathBuf) {
    static HOOK: Once = Once::new();
    // SAFETY: `stop_all` is a plain function that only locks a static and makes system calls.
    HOOK.call_once(|| unsafe {
        atexit(stop_all);
    });
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((pid, dir));
}

/// Forgets a server about to be stopped the ordinary way (before it is reaped, so its
/// process id cannot have been reused).
pub(crate) fn forget(pid: u32) {
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(p, _)| *p != pid);
}

/// Kills every server still registered and removes its files.
extern "C" fn stop_all() {
    let running = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|e| e.into_inner()));
    for (pid, dir) in running {
        if let Ok(pid) = i32::try_from(pid) {
            // SAFETY: kill(2) on a child this process started and has not reaped.
            unsafe {
                kill(pid, SIGKILL);
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
