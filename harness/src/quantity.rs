//! Quantities with units in scenario files: `"6 GiB"`, `"384 MiB"`, `"100 us"`, `"1 s"`.
//!
//! A value without a unit, or with a unit of the wrong kind, is an error that says which
//! units are accepted.

/// Parses a memory size into bytes. Units: `B`, `KiB`, `MiB`, `GiB`, `TiB` (binary) and
/// `kB`, `MB`, `GB` (decimal).
///
/// # Errors
/// A message naming the accepted units, or why the number is not usable.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let (number, unit) = split(text)?;
    let scale: f64 = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => {
            return Err(format!(
                "unknown memory unit {other:?} (use B, KiB, MiB, GiB, TiB, kB, MB or GB)"
            ));
        }
    };
    let bytes = number * scale;
    if !(0.0..=9.0e18).contains(&bytes) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes.round() as u64)
}

/// Parses a duration into seconds. Units: `ns`, `us` (or `µs`), `ms`, `s`, `min`.
///
/// # Errors
/// A message naming the accepted units, or why the number is not usable.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let (number, unit) = split(text)?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "min" => 60.0,
        other => return Err(format!("unknown time unit {other:?} (use ns, us, ms, s or min)")),
    };
    Ok(number * scale)
}

/// Splits `"12.5 MiB"` into `(12.5, "MiB")`; the number must be finite and non-negative.
fn split(text: &str) -> Result<(f64, &str), String> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let unit = unit.trim();
    if unit.is_empty() {
        return Err(format!(
            "{text:?} has no unit (write it like \"384 MiB\" or \"100 us\")"
        ));
    }
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{text:?} must be a finite, non-negative number"));
    }
    Ok((value, unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_parses_units() {
        assert_eq!(parse_bytes("6 GiB").unwrap(), 6 << 30);
        assert_eq!(parse_bytes("384MiB").unwrap(), 384 << 20);
        assert_eq!(parse_bytes("1.5 KiB").unwrap(), 1536);
        assert_eq!(parse_bytes("2 GB").unwrap(), 2_000_000_000);
        assert!((parse_seconds("100 us").unwrap() - 1e-4).abs() < 1e-12);
        assert_eq!(parse_seconds("1 s").unwrap(), 1.0);
    }

    #[test]
    fn quantity_rejects_bad_units() {
        assert!(parse_bytes("6").unwrap_err().contains("no unit"));
        assert!(parse_bytes("6 s").unwrap_err().contains("unknown memory unit"));
        assert!(parse_seconds("6 MiB").unwrap_err().contains("unknown time unit"));
        assert!(parse_bytes("-1 MiB").is_err());
        assert!(parse_bytes("x MiB").is_err());
    }
}
