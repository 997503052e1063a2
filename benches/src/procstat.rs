//! Resource use of a process, read from `/proc`: CPU time (`/proc/<pid>/stat` in clock ticks,
//! or to the nanosecond, with the number of times a thread ran, from each thread's
//! `schedstat`) and resident memory (`VmRSS` and its high-water mark `VmHWM` in
//! `/proc/<pid>/status`).

use std::process::Child;
use std::sync::OnceLock;
use std::time::Duration;

/// CPU time and memory of a process at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// User + system CPU time, seconds.
    pub cpu_secs: f64,
    /// Resident memory now, bytes.
    pub rss_bytes: u64,
    /// Peak resident memory so far, bytes.
    pub peak_rss_bytes: u64,
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn ticks_per_sec() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Reads the usage of process `pid`; `None` once it is gone.
pub fn usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the parenthesised command name; utime and stime are fields 14 and 15
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok());
    let cpu_secs = (ticks(14)? + ticks(15)?) / ticks_per_sec();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|k| k * 1024)
            .unwrap_or(0)
    };
    Some(Usage {
        cpu_secs,
        rss_bytes: kib("VmRSS:"),
        peak_rss_bytes: kib("VmHWM:"),
    })
}

/// Scheduler counts of a process's living threads, from `/proc/<pid>/task/*/schedstat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sched {
    /// CPU time, nanoseconds (the first field): precise enough to divide a few hundred
    /// requests into, where clock ticks are 10 ms.
    pub cpu_ns: u64,
    /// How many times a thread was given a CPU (the third field): each wake-up of a
    /// sleeping thread counts once, as does each return after being preempted.
    pub runs: u64,
}

/// The [`Sched`] counts of process `pid`; `None` where the kernel does not provide them
/// or the process is gone.
pub fn sched(pid: u32) -> Option<Sched> {
    let mut total = Sched::default();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
        total.cpu_ns += fields.next()??;
        total.runs += fields.nth(1)??;
    }
    Some(total)
}

/// Waits for `child` to exit (at most `limit`), polling its usage; returns its exit success,
/// the wall time and its last observed usage (so the peak memory of its whole life).
pub fn wait_measured(
    child: &mut Child,
    limit: Duration,
) -> std::io::Result<(bool, Duration, Usage)> {
    let start = std::time::Instant::now();
    let mut last = Usage::default();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status.success(), start.elapsed(), last));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(format!(
                "still running after {limit:?}; killed"
            )));
        }
        if let Some(u) = usage(child.id()) {
            last = u;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_usage() {
        let u = usage(std::process::id()).unwrap();
        assert!(u.rss_bytes > 0 && u.peak_rss_bytes >= u.rss_bytes);
        assert!(u.cpu_secs >= 0.0);
    }

    #[test]
    fn cpu_time_and_runs_grow_with_work_and_sleep() {
        let Some(before) = sched(std::process::id()) else {
            eprintln!("no schedstat on this kernel: nothing to check");
            return;
        };
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        // every sleep ends with a wake-up
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let after = sched(std::process::id()).unwrap();
        assert!(
            after.cpu_ns >= before.cpu_ns + 10_000_000,
            "{before:?} -> {after:?} ({x})"
        );
        assert!(after.runs >= before.runs + 5, "{before:?} -> {after:?}");
        assert_eq!(sched(u32::MAX), None);
    }
}
