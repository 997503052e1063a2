//! Histogram bucketing and the quantile estimate Prometheus' `histogram_quantile` computes.
//!
//! Written from the documented behaviour (linear interpolation inside the bucket holding the rank,
//! the first bucket starting at 0, the largest finite bound when the rank falls in `+Inf`), not from
//! the server's code, so the two can check each other.

/// Index of the bucket holding an observation of `value_us` microseconds: the first finite upper
/// bound (in milliseconds) with `value <= bound`, or `bounds_ms.len()` for the `+Inf` bucket.
pub(crate) fn bucket_index(bounds_ms: &[f64], value_us: u32) -> usize {
    let ms = f64::from(value_us) / 1000.0;
    bounds_ms.partition_point(|&b| b < ms)
}

/// `histogram_quantile(q, ...)` over per-bucket (not cumulative) counts.
///
/// `counts` has one entry per finite bound in `bounds` plus a last one for `+Inf`. Returns `None`
/// when there are no observations (Prometheus returns NaN). The arithmetic follows Prometheus step
/// by step in `f64` on the exact integer counts.
pub(crate) fn histogram_quantile(q: f64, bounds: &[f64], counts: &[u64]) -> Option<f64> {
    assert_eq!(
        counts.len(),
        bounds.len() + 1,
        "one count per bucket plus +Inf"
    );
    let cumulative: Vec<f64> = counts
        .iter()
        .scan(0u64, |acc, &c| {
            *acc += c;
            Some(*acc as f64)
        })
        .collect();
    let total = *cumulative.last()?;
    if total == 0.0 {
        return None;
    }
    let rank = q * total;
    // First finite bucket whose cumulative count reaches the rank.
    let Some(b) = cumulative[..bounds.len()].iter().position(|&c| c >= rank) else {
        return bounds.last().copied();
    };
    let (start, below) = if b == 0 {
        (0.0, 0.0)
    } else {
        (bounds[b - 1], cumulative[b - 1])
    };
    let in_bucket = cumulative[b] - below;
    Some(start + (bounds[b] - start) * ((rank - below) / in_bucket))
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: [f64; 4] = [10.0, 20.0, 50.0, 100.0];

    #[test]
    fn bucketing_uses_le() {
        let bounds = [1.0, 2.0, 5.0];
        assert_eq!(bucket_index(&bounds, 0), 0);
        assert_eq!(bucket_index(&bounds, 1000), 0); // exactly 1 ms: le="1"
        assert_eq!(bucket_index(&bounds, 1001), 1);
        assert_eq!(bucket_index(&bounds, 5000), 2);
        assert_eq!(bucket_index(&bounds, 5001), 3); // +Inf
    }

    #[test]
    fn interpolates_inside_the_rank_bucket() {
        // 10 observations: 4 in (0,10], 4 in (10,20], 2 in (20,50].
        let counts = [4, 4, 2, 0, 0];
        // p50: rank 5 -> bucket (10,20], 1 of 4 -> 12.5
        assert_eq!(histogram_quantile(0.5, &B, &counts), Some(12.5));
        // p90: rank 9 -> bucket (20,50], 1 of 2 -> 35
        assert_eq!(histogram_quantile(0.9, &B, &counts), Some(35.0));
        // p99: rank 9.9 -> (20,50], 1.9 of 2 -> 20 + 30 * 0.95 = 48.5
        let p99 = histogram_quantile(0.99, &B, &counts).unwrap();
        assert!((p99 - 48.5).abs() < 1e-12, "{p99}");
        // p20: rank 2 in the first bucket, which starts at 0 -> 5
        assert_eq!(histogram_quantile(0.2, &B, &counts), Some(5.0));
    }

    #[test]
    fn rank_on_a_bucket_boundary_takes_the_lower_bucket() {
        // rank 4 == cumulative count of the first bucket: its upper bound, even with an empty
        // bucket after it (Prometheus searches for the first cumulative count >= rank).
        let counts = [4, 0, 4, 0, 0];
        assert_eq!(histogram_quantile(0.5, &B, &counts), Some(10.0));
    }

    #[test]
    fn rank_in_inf_returns_largest_finite_bound() {
        let counts = [1, 0, 0, 0, 9];
        assert_eq!(histogram_quantile(0.5, &B, &counts), Some(100.0));
        assert_eq!(histogram_quantile(0.99, &B, &counts), Some(100.0));
        assert_eq!(histogram_quantile(0.1, &B, &counts), Some(10.0));
    }

    #[test]
    fn empty_histogram_has_no_quantile() {
        assert_eq!(histogram_quantile(0.5, &B, &[0; 5]), None);
    }
}
