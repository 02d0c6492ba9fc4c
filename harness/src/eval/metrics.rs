//! Statistics used by the reports: means, 95% intervals over seeds, Jain's fairness index.

/// Mean of `xs` (0 for none).
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Sample standard deviation (0 for fewer than two values).
pub fn std_dev(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// Two-sided 97.5% quantile of Student's t with `df` degrees of freedom (table for 1–30,
/// then the normal value).
pub fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042,
    ];
    if df == 0 {
        f64::NAN
    } else {
        TABLE.get(df - 1).copied().unwrap_or(1.960)
    }
}

/// A mean with its 95% confidence interval over independent runs.
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
    /// Mean ± t·s/√n of `xs`.
    pub fn of(xs: &[f64]) -> Self {
        let m = mean(xs);
        let half = if xs.len() < 2 {
            0.0
        } else {
            t_975(xs.len() - 1) * std_dev(xs) / (xs.len() as f64).sqrt()
        };
        Self {
            mean: m,
            lo: m - half,
            hi: m + half,
            n: xs.len(),
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
        assert!((i.hi - 2.0 - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert!(i.overlaps(&Interval::of(&[4.0, 5.0, 6.0])));
        assert!(!Interval::of(&[1.0, 1.1, 0.9]).overlaps(&Interval::of(&[5.0, 5.1, 4.9])));
        assert_eq!(Interval::of(&[7.0]).lo, 7.0);
        assert_eq!(jain_index(&[1.0, 1.0]), 1.0);
        assert_eq!(jain_index(&[1.0, 0.0]), 0.5);
        assert_eq!(jain_index(&[0.0, 0.0]), 1.0);
    }
}
