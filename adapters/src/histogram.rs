//! Latency percentiles from histogram buckets, computed the way Prometheus'
//! `histogram_quantile` does (2.x semantics), so that one bucket query answers p50,
//! p90 and p99 together instead of three `histogram_quantile` queries.

/// The quantiles reported by SMI, in the order p50, p90, p99.
pub const SMI_QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// Room made for the first bucket of a histogram.
const TYPICAL_BUCKETS: usize = 32;

/// Cumulative bucket counts of one histogram: `(upper bound, count)` pairs, in any
/// order, possibly with repeated bounds (they are summed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(Vec<(f64, f64)>);

impl Buckets {
    /// Adds the count of one `le` bucket; repeated bounds accumulate.
    pub fn add(&mut self, upper_bound: f64, count: f64) {
        if self.0.capacity() == 0 {
            // the meshes' histograms have 15–30 buckets: grow once, not five times
            self.0.reserve_exact(TYPICAL_BUCKETS);
        }
        self.0.push((upper_bound, count));
    }

    /// Whether no bucket was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Computes several quantiles at once. Returns `None` when the histogram has
    /// no observations, no `+Inf` bucket, or fewer than two bounds (Prometheus
    /// answers NaN there); never returns NaN.
    pub fn quantiles<const N: usize>(&self, qs: [f64; N]) -> Option<[f64; N]> {
        let buckets = self.normalised()?;
        let mut out = [0.0; N];
        for (slot, q) in out.iter_mut().zip(qs) {
            *slot = quantile_of(q, &buckets);
        }
        out.iter().all(|v| !v.is_nan()).then_some(out)
    }

    /// Sorted, coalesced and monotonic buckets, or None when there is no answer.
    fn normalised(&self) -> Option<Vec<(f64, f64)>> {
        let mut sorted: Vec<(f64, f64)> = self
            .0
            .iter()
            .copied()
            .filter(|(le, c)| !le.is_nan() && !c.is_nan())
            .collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        if !sorted.last()?.0.is_infinite() {
            return None;
        }
        let mut coalesced: Vec<(f64, f64)> = Vec::with_capacity(sorted.len());
        for (le, count) in sorted {
            match coalesced.last_mut() {
                Some(last) if last.0 == le => last.1 += count,
                _ => coalesced.push((le, count)),
            }
        }
        let mut max = f64::NEG_INFINITY;
        for b in coalesced.iter_mut() {
            if b.1 > max {
                max = b.1;
            } else {
                b.1 = max;
            }
        }
        if coalesced.len() < 2 || coalesced[coalesced.len() - 1].1 <= 0.0 {
            return None;
        }
        Some(coalesced)
    }
}

/// Prometheus' bucket interpolation on normalised buckets.
fn quantile_of(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let n = buckets.len();
    let observations = buckets[n - 1].1;
    let mut rank = q * observations;
    let b = buckets[..n - 1]
        .iter()
        .position(|&(_, count)| count >= rank)
        .unwrap_or(n - 1);
    if b == n - 1 {
        return buckets[n - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(pairs: &[(f64, f64)]) -> Buckets {
        let mut b = Buckets::default();
        for &(le, c) in pairs {
            b.add(le, c);
        }
        b
    }

    #[test]
    fn interpolates_inside_the_bucket() {
        // 10 observations: 4 in (0,10], 4 in (10,20], 2 in (20,50]
        let b = hist(&[
            (10.0, 4.0),
            (20.0, 8.0),
            (50.0, 10.0),
            (f64::INFINITY, 10.0),
        ]);
        let [p50, p90, p99] = b.quantiles(SMI_QUANTILES).unwrap();
        assert_eq!(p50, 12.5); // rank 5 -> 10 + 10 * (1/4)
        assert_eq!(p90, 35.0); // rank 9 -> 20 + 30 * (1/2)
        assert!((p99 - 48.5).abs() < 1e-9); // rank 9.9 -> 20 + 30 * (1.9/2)
    }

    #[test]
    fn rank_in_inf_bucket_returns_largest_finite_bound() {
        let b = hist(&[(1.0, 0.0), (5.0, 1.0), (f64::INFINITY, 100.0)]);
        assert_eq!(b.quantiles([0.5]), Some([5.0]));
    }

    #[test]
    fn no_observations_or_no_inf_bucket_is_none() {
        assert_eq!(
            hist(&[(1.0, 0.0), (f64::INFINITY, 0.0)]).quantiles([0.5]),
            None
        );
        assert_eq!(hist(&[(1.0, 3.0), (2.0, 3.0)]).quantiles([0.5]), None);
        assert_eq!(Buckets::default().quantiles([0.5]), None);
    }

    #[test]
    fn repeated_bounds_are_summed_and_order_does_not_matter() {
        let b = hist(&[
            (f64::INFINITY, 2.0),
            (10.0, 1.0),
            (f64::INFINITY, 2.0),
            (10.0, 1.0),
        ]);
        // 4 observations, 2 in (0,10]: p50 rank 2 -> exactly 10
        assert_eq!(b.quantiles([0.5]), Some([10.0]));
    }

    #[test]
    fn non_monotonic_counts_are_repaired() {
        // a bucket below its predecessor (scrape skew) is raised to it
        let b = hist(&[(10.0, 5.0), (20.0, 4.0), (f64::INFINITY, 10.0)]);
        let [p50] = b.quantiles([0.5]).unwrap();
        assert_eq!(p50, 10.0);
    }
}
