//! Scaled benchmark datasets: [`Scenario::scaled`] split into its independent cells, each
//! simulated and written as Linkerd series, concatenated into one OpenMetrics file that
//! `promtool tsdb create-blocks-from openmetrics` turns into TSDB blocks.
//!
//! Concatenation keeps the first cell's `# HELP`/`# TYPE` lines and one final `# EOF`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use meshsim::{Dataset, Mesh, Scenario, STEP_SECS};

/// What writing a dataset produced.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// Workloads in the scenario.
    pub workloads: usize,
    /// Workload → workload edges in the scenario.
    pub edges: usize,
    /// Distinct series written.
    pub series: u64,
    /// Samples written.
    pub samples: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Wall time of simulation and writing.
    pub elapsed: Duration,
}

/// Simulates `scenario` over `[start, end]` (unix seconds, multiples of the simulator's
/// [`STEP_SECS`]) and writes its Linkerd series to `path`, a sample per series every step.
/// `progress` is called after each cell with (cells done, cells).
pub fn write_scaled(
    scenario: &Scenario,
    start: i64,
    end: i64,
    path: &Path,
    mut progress: impl FnMut(usize, usize),
) -> io::Result<Written> {
    assert!(
        start % STEP_SECS == 0 && end % STEP_SECS == 0 && start < end,
        "start and end must be multiples of {STEP_SECS}"
    );
    let t = Instant::now();
    let parts = scenario.split();
    let file = File::create(path)?;
    let mut out = Concat::new(BufWriter::with_capacity(1 << 22, file), start);
    for (i, part) in parts.iter().enumerate() {
        let ds = Dataset::generate(part, start, end);
        ds.write_openmetrics(Mesh::Linkerd, &mut out)?;
        out.end_part()?;
        progress(i + 1, parts.len());
    }
    let (samples, bytes, series) = out.finish()?;
    Ok(Written {
        workloads: scenario.workload_count(),
        edges: scenario.workload_edge_count(),
        series,
        samples,
        bytes,
        elapsed: t.elapsed(),
    })
}

/// Concatenates OpenMetrics documents: keeps the metadata of the first and drops every
/// `# EOF` (one is written by [`Concat::finish`]); counts series and samples.
struct Concat<W: Write> {
    out: W,
    /// Bytes of an incomplete line carried to the next write.
    partial: Vec<u8>,
    /// Timestamp of every series' first sample (counted as its series).
    first_ts: String,
    /// Whether the first document's metadata was passed through.
    metadata_done: bool,
    samples: u64,
    series: u64,
    bytes: u64,
}

impl<W: Write> Concat<W> {
    fn new(out: W, first: i64) -> Self {
        Concat {
            out,
            partial: Vec::new(),
            first_ts: first.to_string(),
            metadata_done: false,
            samples: 0,
            series: 0,
            bytes: 0,
        }
    }

    /// Handles one complete line (with its `\n`).
    fn line(&mut self, line: &[u8]) -> io::Result<()> {
        if line.starts_with(b"#") {
            if line.starts_with(b"# EOF") || self.metadata_done {
                return Ok(());
            }
        } else {
            self.samples += 1;
            let first = line
                .iter()
                .rposition(|&b| b == b' ')
                .is_some_and(|i| line[i + 1..].trim_ascii_end() == self.first_ts.as_bytes());
            if first {
                self.series += 1;
            }
        }
        self.bytes += line.len() as u64;
        self.out.write_all(line)
    }

    /// Marks the end of one document.
    fn end_part(&mut self) -> io::Result<()> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.line(&rest)?;
        }
        self.metadata_done = true;
        Ok(())
    }

    /// Writes the final `# EOF`; returns (samples, bytes, series).
    fn finish(mut self) -> io::Result<(u64, u64, u64)> {
        self.end_part()?;
        self.out.write_all(b"# EOF\n")?;
        self.out.flush()?;
        Ok((self.samples, self.bytes + 6, self.series))
    }
}

impl<W: Write> Write for Concat<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(nl + 1);
            if self.partial.is_empty() {
                self.line(head)?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                self.line(&line)?;
            }
            rest = tail;
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenates_cells_into_one_document() {
        let dir = std::env::temp_dir().join(format!("mmb-ds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data.om");
        let s = Scenario::scaled(150, 600);
        let mut calls = 0;
        let w = write_scaled(&s, 1_700_000_000, 1_700_000_030, &path, |_, n| {
            calls += 1;
            assert!(n >= 2);
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(calls >= 2);
        assert_eq!((w.workloads, w.edges), (150, 600));
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# TYPE response_total counter").count(), 1);
        assert_eq!(w.samples, 4 * w.series);
        assert_eq!(text.len() as u64, w.bytes);
        assert!(text.contains(r#"namespace="scale-0014""#));
    }
}
