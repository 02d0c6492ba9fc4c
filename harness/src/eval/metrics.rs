//! Statistics used by the reports: means, bootstrap 95% intervals over seeds, Jain's fairness index.

/// Mean of `xs` (0 for none).
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Resamples of the bootstrap behind [`Interval::of`].
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// A mean with its 95% interval over independent runs (seeds).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    /// The mean.
    pub mean: f64,
    /// Lower end of the 95% interval (the mean itself for one run).
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Number of runs.
    pub n: usize,
}

impl Interval {
    /// The mean of `xs` with the percentile bootstrap's 95% interval: the 2.5% and 97.5%
    /// quantiles of the means of [`BOOTSTRAP_RESAMPLES`] resamples (with replacement, from a
    /// fixed seed, so a report is reproducible). Every resample's mean lies between the
    /// smallest and the largest value, so the interval never leaves the metric's range (a
    /// miss rate's never goes below 0, Jain's index never above 1), unlike mean ± t·s/√n.
    ///
    /// ```
    /// use cavmem_harness::eval::metrics::Interval;
    /// let i = Interval::of(&[0.0, 0.0, 0.0, 90.0]);
    /// assert_eq!(i.mean, 22.5);
    /// assert!(i.lo >= 0.0 && i.hi <= 90.0 && i.lo < i.mean && i.mean < i.hi);
    /// ```
    pub fn of(xs: &[f64]) -> Self {
        let m = mean(xs);
        if xs.len() < 2 {
            return Self {
                mean: m,
                lo: m,
                hi: m,
                n: xs.len(),
            };
        }
        let mut rng = cavmem_core::rng::Rng::seed_from_u64(0x626f_6f74);
        let n = xs.len();
        let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
            .map(|_| {
                let sum: f64 = (0..n).map(|_| xs[rng.below(n as u32) as usize]).sum();
                sum / n as f64
            })
            .collect();
        means.sort_by(f64::total_cmp);
        let at = |q: f64| {
            means[((q * (BOOTSTRAP_RESAMPLES - 1) as f64).round() as usize).min(BOOTSTRAP_RESAMPLES - 1)]
        };
        Self {
            mean: m,
            lo: at(0.025).min(m),
            hi: at(0.975).max(m),
            n,
        }
    }

    /// Whether two intervals overlap (their difference is within noise).
    pub fn overlaps(&self, other: &Self) -> bool {
        self.lo <= other.hi && other.lo <= self.hi
    }
}

/// Jain's fairness index `(Σx)² / (n·Σx²)` ∈ [1/n, 1]; 1 when all are equal (or all zero).
pub fn jain_index(xs: &[f64]) -> f64 {
    let sum: f64 = xs.iter().sum();
    let sum_sq: f64 = xs.iter().map(|x| x * x).sum();
    if sum_sq <= 0.0 {
        1.0
    } else {
        sum * sum / (xs.len() as f64 * sum_sq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_interval_and_jain() {
        let i = Interval::of(&[1.0, 2.0, 3.0]);
        assert_eq!(i.mean, 2.0);
        assert!(i.lo >= 1.0 && i.lo < 2.0 && i.hi > 2.0 && i.hi <= 3.0, "{i:?}");
        assert_eq!(Interval::of(&[1.0, 2.0, 3.0]), i, "reproducible");
        assert!(i.overlaps(&Interval::of(&[3.0, 4.0, 5.0])));
        assert!(!Interval::of(&[1.0, 1.1, 0.9]).overlaps(&Interval::of(&[5.0, 5.1, 4.9])));
        assert_eq!(Interval::of(&[7.0]).lo, 7.0);
        assert_eq!(jain_index(&[1.0, 1.0]), 1.0);
        assert_eq!(jain_index(&[1.0, 0.0]), 0.5);
        assert_eq!(jain_index(&[0.0, 0.0]), 1.0);
    }

    #[test]
    fn metrics_intervals_stay_within_the_values_range() {
        // Two seeds far apart (t·s/√n would give 11086 ± 94642, below 0) and Jain values
        // near 1 (t·s/√n went above 1).
        for xs in [
            &[1_000.0, 21_000.0][..],
            &[0.3, 0.99, 1.0, 1.0],
            &[0.0; 10],
            &[5.0, 0.0, 0.0, 0.0, 0.0],
        ] {
            let i = Interval::of(xs);
            let (min, max) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                (a.min(*x), b.max(*x))
            });
            assert!(
                i.lo >= min && i.hi <= max && i.lo <= i.mean && i.mean <= i.hi,
                "{xs:?}: {i:?}"
            );
        }
    }
}
