//! Minimal OpenMetrics text writer: metadata lines, samples with timestamps (seconds), `# EOF`.
//!
//! `promtool tsdb create-blocks-from openmetrics` (Prometheus 2.42) accepts samples of different
//! series and families interleaved, as long as each series' timestamps increase, so emitters write
//! one scrape (every series) per step, in time order.
//!
//! Types: an OpenMetrics counter family `x` has samples `x_total`, so counters that Prometheus
//! stores with `_total` are declared that way (`# TYPE istio_requests counter`). Envoy prints its
//! counters without the suffix (`envoy_cluster_upstream_rq_xx`); such families are declared
//! `unknown`, the type whose sample name is the family name. promtool 2.42 stores samples the same
//! whatever the declared type (metadata is not part of the TSDB blocks).

use std::io::{self, Write};

/// A label set under construction, rendered as `{a="x",b="y"}`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Labels(String);

impl Labels {
    /// Appends one label (the value is escaped).
    pub(crate) fn push(&mut self, name: &str, value: &str) -> &mut Labels {
        if !self.0.is_empty() {
            self.0.push(',');
        }
        self.0.push_str(name);
        self.0.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => self.0.push_str("\\\\"),
                '"' => self.0.push_str("\\\""),
                '\n' => self.0.push_str("\\n"),
                c => self.0.push(c),
            }
        }
        self.0.push('"');
        self
    }

    /// Appends every label of `other`.
    pub(crate) fn extend(&mut self, other: &Labels) -> &mut Labels {
        if !other.0.is_empty() {
            if !self.0.is_empty() {
                self.0.push(',');
            }
            self.0.push_str(&other.0);
        }
        self
    }

    /// A copy with one more label.
    pub(crate) fn with(&self, name: &str, value: &str) -> Labels {
        let mut l = self.clone();
        l.push(name, value);
        l
    }

    /// `metric{labels}`: the part of a sample line before the value.
    pub(crate) fn series(&self, metric: &str) -> String {
        format!("{metric}{{{}}}", self.0)
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a metric family.
pub(crate) fn write_family(
    out: &mut dyn Write,
    name: &str,
    kind: &str,
    help: &str,
) -> io::Result<()> {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")
}

/// The samples of one timestamp, formatted into a buffer and written in one go.
#[derive(Debug, Default)]
pub(crate) struct Scrape {
    buf: Vec<u8>,
    /// ` <timestamp>\n`
    suffix: Vec<u8>,
}

impl Scrape {
    /// Starts the samples of timestamp `ts` (seconds).
    pub(crate) fn begin(&mut self, ts: i64) {
        self.buf.clear();
        self.suffix.clear();
        self.suffix.push(b' ');
        self.suffix.extend_from_slice(ts.to_string().as_bytes());
        self.suffix.push(b'\n');
    }

    /// Adds `series value ts` with an integer value.
    pub(crate) fn sample(&mut self, series: &str, value: u64) {
        self.buf.extend_from_slice(series.as_bytes());
        self.buf.push(b' ');
        push_decimal(&mut self.buf, value);
        self.buf.extend_from_slice(&self.suffix);
    }

    /// Adds `series value ts` with a value given in thousandths (printed with three decimals).
    pub(crate) fn sample_milli(&mut self, series: &str, thousandths: u64) {
        self.buf.extend_from_slice(series.as_bytes());
        self.buf.push(b' ');
        push_decimal(&mut self.buf, thousandths / 1000);
        let frac = thousandths % 1000;
        self.buf.extend_from_slice(&[
            b'.',
            digit(frac / 100),
            digit(frac / 10 % 10),
            digit(frac % 10),
        ]);
        self.buf.extend_from_slice(&self.suffix);
    }

    /// Adds `series value ts` with a value given in millionths (printed with six decimals).
    pub(crate) fn sample_micro(&mut self, series: &str, millionths: u64) {
        self.buf.extend_from_slice(series.as_bytes());
        self.buf.push(b' ');
        push_decimal(&mut self.buf, millionths / 1_000_000);
        let frac = millionths % 1_000_000;
        self.buf.push(b'.');
        for div in [100_000, 10_000, 1_000, 100, 10, 1] {
            self.buf.push(digit(frac / div % 10));
        }
        self.buf.extend_from_slice(&self.suffix);
    }

    /// Writes the buffered samples.
    pub(crate) fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.buf)
    }
}

/// The ASCII digit of `d` (< 10).
fn digit(d: u64) -> u8 {
    b'0' + d as u8
}

/// Appends `v` in decimal.
fn push_decimal(buf: &mut Vec<u8>, v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = v;
    loop {
        i -= 1;
        digits[i] = digit(v % 10);
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// Writes the mandatory terminator.
pub(crate) fn write_eof(out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "# EOF")
}

/// Checks OpenMetrics text the way the backfiller needs it and returns the number of samples:
/// metadata only as `# HELP`/`# TYPE`, `# EOF` last, every sample `name{labels} value ts`, every
/// series' timestamps strictly increasing and its counters never decreasing except to zero.
#[cfg(test)]
pub(crate) fn check(text: &str) -> Result<usize, String> {
    use std::collections::HashMap;
    let mut last: HashMap<&str, (i64, f64)> = HashMap::new();
    let mut lines = text.lines().enumerate().peekable();
    let mut samples = 0;
    while let Some((n, line)) = lines.next() {
        let err = |m: &str| Err(format!("line {}: {m}: {line}", n + 1));
        if line == "# EOF" {
            return match lines.peek() {
                None => Ok(samples),
                Some(_) => err("content after # EOF"),
            };
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (what, name, rest) = (parts.next(), parts.next(), parts.next());
            let ok = match (what, name, rest) {
                (Some("TYPE"), Some(_), Some(k)) => {
                    ["counter", "histogram", "gauge", "unknown"].contains(&k)
                }
                (Some("HELP"), Some(_), Some(_)) => true,
                _ => false,
            };
            if !ok {
                return err("bad metadata");
            }
            continue;
        }
        let Some(close) = line.rfind('}') else {
            return err("no label set");
        };
        let (series, rest) = line.split_at(close + 1);
        let open = series.find('{').unwrap_or(0);
        let name = &series[..open];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return err("bad metric name");
        }
        let body = &series[open + 1..series.len() - 1];
        for pair in split_labels(body) {
            let Some((k, v)) = pair.split_once('=') else {
                return err("bad label");
            };
            if k.is_empty() || !v.starts_with('"') || !v.ends_with('"') || v.len() < 2 {
                return err("bad label");
            }
        }
        let mut fields = rest.split(' ');
        let (Some(""), Some(v), Some(t), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return err("expected ' value timestamp'");
        };
        let (Ok(v), Ok(t)) = (v.parse::<f64>(), t.parse::<i64>()) else {
            return err("bad value or timestamp");
        };
        if let Some(&(pt, pv)) = last.get(series) {
            if t <= pt {
                return err("timestamps not increasing");
            }
            if v < pv && v != 0.0 {
                return err("counter decreased to a non-zero value");
            }
        }
        last.insert(series, (t, v));
        samples += 1;
    }
    Err("missing # EOF".to_owned())
}

/// Splits `a="x",b="y,z"` at the commas outside quotes.
#[cfg(test)]
fn split_labels(body: &str) -> Vec<&str> {
    let (mut out, mut from, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&body[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    if from < body.len() {
        out.push(&body[from..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_joined() {
        let mut l = Labels::default();
        l.push("a", "x").push("b", "say \"hi\"\\\n");
        assert_eq!(
            l.with("le", "+Inf").series("m"),
            r#"m{a="x",b="say \"hi\"\\\n",le="+Inf"}"#
        );
    }

    #[test]
    fn writer_output_passes_the_checker() {
        let mut out = Vec::new();
        write_family(&mut out, "m", "counter", "A test.").unwrap();
        let s = Labels::default().with("a", "1,2").series("m_total");
        let mut scrape = Scrape::default();
        for (ts, v) in [(10, 0), (20, 5), (30, u64::MAX)] {
            scrape.begin(ts);
            scrape.sample(&s, v);
            scrape.write_to(&mut out).unwrap();
        }
        write_eof(&mut out).unwrap();
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.contains(&format!("m_total{{a=\"1,2\"}} {} 30\n", u64::MAX)));
        assert_eq!(check(text), Ok(3));
    }

    #[test]
    fn milli_values() {
        let mut scrape = Scrape::default();
        scrape.begin(1_700_000_000);
        for v in [0, 7, 1234, 1_000_000, 98_765_432] {
            scrape.sample_milli("s", v);
        }
        assert_eq!(
            std::str::from_utf8(&scrape.buf).unwrap(),
            "s 0.000 1700000000\ns 0.007 1700000000\ns 1.234 1700000000\n\
             s 1000.000 1700000000\ns 98765.432 1700000000\n"
        );
    }

    #[test]
    fn micro_values() {
        let mut scrape = Scrape::default();
        scrape.begin(10);
        for v in [0, 7, 1_234_567] {
            scrape.sample_micro("s", v);
        }
        assert_eq!(
            std::str::from_utf8(&scrape.buf).unwrap(),
            "s 0.000000 10\ns 0.000007 10\ns 1.234567 10\n"
        );
    }

    #[test]
    fn checker_rejects_broken_text() {
        assert!(check("m{a=\"1\"} 1 10\n").is_err()); // no EOF
        assert!(check("m{a=\"1\"} 1 10\nm{a=\"1\"} 2 10\n# EOF\n").is_err()); // same ts
        assert!(check("m{a=\"1\"} 5 10\nm{a=\"1\"} 2 20\n# EOF\n").is_err()); // decrease
        assert!(check("m{a=1} 5 10\n# EOF\n").is_err()); // unquoted
        assert!(check("# EOF\nm{} 1 1\n").is_err());
        assert_eq!(check("m{a=\"1\"} 5 10\nm{a=\"1\"} 0 20\n# EOF\n"), Ok(2)); // reset
    }
}
