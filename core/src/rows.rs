//! Row prefixes and elements where the caller has already bounded the index: the first `n`
//! rows of a tape or batch, element `i` of a fixed-size row.
//!
//! A request past the end is a bug in the caller. Tests and debug builds stop at it
//! (`debug_assert!`); release builds — the decision path, which never panics — clamp it
//! (fewer rows; a missing element reads 0.0).

/// The first `n` of `rows` (all of them if `n` is more: see the module docs).
///
/// ```
/// assert_eq!(cavmem_core::rows::prefix(&[1, 2, 3], 2), &[1, 2]);
/// ```
#[inline(always)]
pub fn prefix<T>(rows: &[T], n: usize) -> &[T] {
    debug_assert!(n <= rows.len(), "{n} rows asked of {}", rows.len());
    rows.split_at_checked(n).map_or(rows, |(head, _)| head)
}

/// The first `n` of `rows`, to write (all of them if `n` is more: see the module docs).
#[inline(always)]
pub fn prefix_mut<T>(rows: &mut [T], n: usize) -> &mut [T] {
    debug_assert!(n <= rows.len(), "{n} rows asked of {}", rows.len());
    let n = n.min(rows.len());
    rows.split_at_mut_checked(n).map_or(&mut [], |(head, _)| head)
}

/// Element `i` of `row` (0.0 if there is none: see the module docs).
///
/// ```
/// assert_eq!(cavmem_core::rows::at(&[0.5, 1.5], 1), 1.5);
/// ```
#[inline(always)]
pub fn at(row: &[f32], i: usize) -> f32 {
    debug_assert!(i < row.len(), "element {i} asked of {}", row.len());
    row.get(i).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_prefixes_and_elements_within_bounds() {
        let mut v = [1.0_f32, 2.0, 3.0];
        assert_eq!(prefix(&v, 0), &[] as &[f32]);
        assert_eq!(prefix(&v, 3), &v);
        prefix_mut(&mut v, 2).fill(0.0);
        assert_eq!(v, [0.0, 0.0, 3.0]);
        assert_eq!(at(&v, 2), 3.0);
    }

    #[test]
    #[should_panic(expected = "4 rows asked of 3")]
    fn rows_past_the_end_stop_a_debug_build() {
        let _ = prefix(&[1, 2, 3], 4);
    }

    #[test]
    #[should_panic(expected = "element 3 asked of 3")]
    fn rows_an_element_past_the_end_stops_a_debug_build() {
        let _ = at(&[1.0, 2.0, 3.0], 3);
    }
}
