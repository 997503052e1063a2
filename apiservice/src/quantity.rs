//! Kubernetes quantities as SMI emits them: milli precision, truncated toward zero,
//! printed in canonical DecimalSI form (`296875m`, `294`, `1k`, `1500`, `2M`).

const SUFFIXES: [(i32, &str); 8] = [
    (-3, "m"),
    (0, ""),
    (3, "k"),
    (6, "M"),
    (9, "G"),
    (12, "T"),
    (15, "P"),
    (18, "E"),
];

/// Formats `v` as a milli-precision quantity, truncating toward zero like the SMI SDK
/// (`int64(v*1000)`). A value within 1e-6 milli of an integer is snapped to it first,
/// so float noise (`296.87499999999994`) does not lose a digit. NaN and infinities
/// have no quantity form and give `None`.
pub fn format_milli(v: f64) -> Option<String> {
    if !v.is_finite() {
        return None;
    }
    let scaled = v * 1000.0;
    let nearest = scaled.round();
    let milli = if (scaled - nearest).abs() < 1e-6 {
        nearest
    } else {
        scaled.trunc()
    };
    if milli.abs() >= i64::MAX as f64 {
        return None;
    }
    Some(format_milli_int(milli as i64))
}

/// Formats an integer number of thousandths in canonical DecimalSI form.
pub fn format_milli_int(milli: i64) -> String {
    if milli == 0 {
        return "0".into();
    }
    let mut mantissa = milli;
    let mut idx = 0;
    while idx + 1 < SUFFIXES.len() && mantissa % 1000 == 0 {
        mantissa /= 1000;
        idx += 1;
    }
    format!("{mantissa}{}", SUFFIXES[idx].1)
}

/// Parses a quantity string (`1500`, `296875m`, `1k`, `2.5M`, `1e3`, `1Ki`) into a float.
pub fn parse(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        _ => return None,
    };
    num.parse::<f64>().ok().map(|n| n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_smi_sdk() {
        let f = |v| format_milli(v).unwrap();
        assert_eq!(f(296.875), "296875m");
        assert_eq!(f(294.0), "294");
        assert_eq!(f(0.0), "0");
        assert_eq!(f(73.492), "73492m");
        assert_eq!(f(10.123456), "10123m");
        assert_eq!(f(1000.0), "1k");
        assert_eq!(f(12000.0), "12k");
        assert_eq!(f(1500.0), "1500");
        assert_eq!(f(2_000_000.0), "2M");
        assert_eq!(f(28.58), "28580m");
        assert_eq!(f(-5.0), "-5");
        assert_eq!(f(0.0004), "0");
    }

    #[test]
    fn float_noise_does_not_lose_a_digit() {
        assert_eq!(format_milli(296.87499999999994).unwrap(), "296875m");
        assert_eq!(format_milli(0.1 + 0.2).unwrap(), "300m");
        assert_eq!(format_milli(1.9999).unwrap(), "1999m");
    }

    #[test]
    fn non_finite_has_no_quantity() {
        assert_eq!(format_milli(f64::NAN), None);
        assert_eq!(format_milli(f64::INFINITY), None);
    }

    #[test]
    fn parses_what_it_formats() {
        for v in [0.0, 296.875, 1000.0, 1500.0, 2e6, 12.5, 0.001] {
            let s = format_milli(v).unwrap();
            assert!((parse(&s).unwrap() - v).abs() < 1e-9, "{v} -> {s}");
        }
        assert_eq!(parse("1Ki"), Some(1024.0));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("abc"), None);
        assert_eq!(parse("1x"), None);
    }
}
