//! Go-style durations (`30s`, `1m30s`, `1.5h`, `500ms`): parsed from `?t=` and
//! configuration, and printed the way Go's `time.Duration.String` does (`1m0s`).

use std::time::Duration;

/// Parses a Go duration string. Negative values are rejected (they have no use
/// here), as are empty strings, missing units and unknown units.
pub fn parse(s: &str) -> Result<Duration, String> {
    let orig = s;
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err(format!("{orig:?} is negative"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total_ns: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{orig:?} has a number without a unit (use ms, s, m or h)"))?;
        let (num, tail) = rest.split_at(num_end);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(format!(
                "{orig:?} is not a duration like 30s, 1m30s or 500ms"
            ));
        }
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "{orig:?} has unknown unit {unit:?} (use ms, s, m or h)"
                ))
            }
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| format!("{orig:?} is too large"))?
        };
        let mut frac_ns: u128 = 0;
        let mut scale = unit_ns;
        for d in frac.chars().take(18) {
            scale /= 10;
            frac_ns += u128::from(d.to_digit(10).unwrap_or(0)) * scale;
        }
        total_ns = int
            .checked_mul(unit_ns)
            .and_then(|v| v.checked_add(frac_ns))
            .and_then(|v| v.checked_add(total_ns))
            .filter(|v| *v <= u128::from(u64::MAX))
            .ok_or_else(|| format!("{orig:?} is too large"))?;
        rest = next;
    }
    Ok(Duration::from_nanos(total_ns as u64))
}

/// Formats a duration as Go does: `30s`, `1m0s`, `1h30m0s`, `500ms`, `1.5s`, `0s`.
pub fn format(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        let (v, unit) = if ns < 1_000 {
            (ns as f64, "ns")
        } else if ns < 1_000_000 {
            (ns as f64 / 1e3, "µs")
        } else {
            (ns as f64 / 1e6, "ms")
        };
        return format!("{}{unit}", trim_float(v));
    }
    let total_secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let h = total_secs / 3600;
    let m = (total_secs % 3600) / 60;
    let s = total_secs % 60;
    let mut secs = s.to_string();
    if frac > 0 {
        let f = format!("{frac:09}");
        secs.push('.');
        secs.push_str(f.trim_end_matches('0'));
    }
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Serde helper: `#[serde(with = "adapters::serde_duration")]` for Go duration strings.
pub mod serde_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Deserializes a Go duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse(&s).map_err(serde::de::Error::custom)
    }

    /// Serializes as a Go duration string.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let s = |v| Duration::from_secs(v);
        assert_eq!(parse("30s"), Ok(s(30)));
        assert_eq!(parse("1m30s"), Ok(s(90)));
        assert_eq!(parse("1.5h"), Ok(s(5400)));
        assert_eq!(parse("2h45m"), Ok(s(9900)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("+10s"), Ok(s(10)));
        for bad in [
            "",
            "-5s",
            "10",
            "10x",
            "s",
            "1..5s",
            "abc",
            "99999999999999999999h",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_like_go() {
        let s = |v| Duration::from_secs(v);
        assert_eq!(format(s(30)), "30s");
        assert_eq!(format(s(60)), "1m0s");
        assert_eq!(format(s(90)), "1m30s");
        assert_eq!(format(s(3600)), "1h0m0s");
        assert_eq!(format(s(3725)), "1h2m5s");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format(Duration::from_millis(500)), "500ms");
        assert_eq!(format(Duration::ZERO), "0s");
    }
}
