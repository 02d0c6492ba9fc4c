//! Taking memory back when the node's capacity shrinks (the host reclaims memory, a balloon
//! does not deflate, a memory device goes offline): the allocations must fit again before
//! the next bids are analyzed.

use super::{BidConfig, BidError};

/// Shrinks `allocations` (bytes) until they fit `config.capacity_bytes`: every VM above the
/// floor keeps the floor plus the same fraction of its part above the floor, computed in
/// integers; VMs at or below the floor are untouched. Returns the bytes reclaimed — the
/// overshoot, plus less than one byte per VM of rounding, which stays free. Nothing changes
/// when the allocations already fit.
///
/// # Errors
/// [`BidError::Infeasible`] when `capacity < VMs × floor` (a VM must leave the node first),
/// [`BidError::ZeroGranularity`]; nothing is changed then.
///
/// # Examples
/// ```
/// use cavmem_core::bid::{reclaim, BidConfig};
/// use cavmem_core::units::GIB;
/// // The node shrank from 6 to 4 GiB; the floor is 384 MiB.
/// let config = BidConfig::new(4 * GIB);
/// let mut allocations = [3 * GIB, 2 * GIB, GIB];
/// let reclaimed = reclaim(&config, &mut allocations).unwrap();
/// assert!(allocations.iter().sum::<u64>() <= 4 * GIB);
/// assert!(reclaimed >= 2 * GIB && reclaimed < 2 * GIB + 3);
/// ```
pub fn reclaim(config: &BidConfig, allocations: &mut [u64]) -> Result<u64, BidError> {
    config.check(allocations.len())?;
    let allocated: u128 = allocations.iter().map(|a| u128::from(*a)).sum();
    let capacity = u128::from(config.capacity_bytes);
    if allocated <= capacity {
        return Ok(0);
    }
    let floor = config.floor_bytes;
    let excess: u128 = allocations
        .iter()
        .map(|a| u128::from(a.saturating_sub(floor)))
        .sum();
    // capacity ≥ VMs × floor (checked) gives excess ≥ allocated − capacity.
    let keep = excess.saturating_sub(allocated - capacity);
    let mut reclaimed: u128 = 0;
    for a in allocations.iter_mut().filter(|a| **a > floor) {
        let e = u128::from(*a - floor);
        // keep ≤ excess, so the kept part is at most `e` and fits in u64.
        let kept = (e * keep / excess) as u64;
        reclaimed += e - u128::from(kept);
        *a = floor + kept;
    }
    Ok(u64::try_from(reclaimed).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::{prop_assert, prop_assert_eq, proptest};

    use super::*;
    use crate::bid::ShareRule;
    use crate::units::{GIB, MIB};

    #[test]
    fn reclaim_takes_the_same_fraction_above_the_floor() {
        let config = BidConfig {
            capacity_bytes: 1000,
            floor_bytes: 100,
            granularity_bytes: 1,
            share: ShareRule::Proportional,
        };
        // Excess 500 + 300 (one VM at the floor, one below it); overshoot 150; 650 of the
        // 800 above the floor are kept: 406.25 and 243.75, rounded down.
        let mut allocations = [600, 400, 100, 50];
        assert_eq!(reclaim(&config, &mut allocations), Ok(151));
        assert_eq!(allocations, [100 + 406, 100 + 243, 100, 50]);
    }

    #[test]
    fn reclaim_leaves_fitting_nodes_alone_and_refuses_infeasible_ones() {
        let mut allocations = [GIB, GIB];
        assert_eq!(reclaim(&BidConfig::new(2 * GIB), &mut allocations), Ok(0));
        assert_eq!(allocations, [GIB, GIB]);
        let tiny = BidConfig::new(500 * MIB); // < 2 × 384 MiB
        assert!(matches!(
            reclaim(&tiny, &mut allocations),
            Err(BidError::Infeasible { .. })
        ));
        assert_eq!(allocations, [GIB, GIB]);
    }

    proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 20_000, ..Default::default() })]

        #[test]
        fn reclaim_fits_keeps_floors_and_accounts_every_byte(
            floor in 0u64..(1 << 40),
            slack in 0u64..(1 << 40),
            allocations in vec(0u64..=u64::MAX / 32, 1..16),
        ) {
            let n = allocations.len() as u64;
            let capacity = floor.saturating_mul(n).saturating_add(slack);
            let config = BidConfig { capacity_bytes: capacity, floor_bytes: floor, granularity_bytes: 1, share: ShareRule::Equal };
            prop_assert!(config.check(allocations.len()).is_ok());
            let before = allocations.clone();
            let mut after = allocations;
            let reclaimed = reclaim(&config, &mut after).unwrap();
            let sum = |v: &[u64]| v.iter().map(|a| u128::from(*a)).sum::<u128>();
            prop_assert!(sum(&after) <= u128::from(capacity), "fits the capacity");
            prop_assert_eq!(u128::from(reclaimed), sum(&before) - sum(&after), "every byte accounted");
            let overshoot = sum(&before).saturating_sub(u128::from(capacity));
            prop_assert!(u128::from(reclaimed) >= overshoot && u128::from(reclaimed) < overshoot + u128::from(n), "reclaims the overshoot, plus rounding");
            for (b, a) in before.iter().zip(&after) {
                prop_assert!(a <= b, "never grows a VM");
                prop_assert!(*a >= (*b).min(floor), "never below the floor");
            }
        }
    }
}
