//! Quantities with units in scenario files: `"6 GiB"`, `"384 MiB"`, `"100 us"`, `"1 s"`.
//!
//! A value without a unit, or with a unit of the wrong kind, is an error that says which
//! units are accepted.

/// Why a quantity was refused; the message quotes the text and names the accepted units.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// No unit after the number.
    #[error("{0:?} has no unit (write it like \"384 MiB\" or \"100 us\")")]
    NoUnit(String),
    /// A unit that is not a memory size.
    #[error("unknown memory unit {0:?} (use B, KiB, MiB, GiB, TiB, kB, MB or GB)")]
    NotMemory(String),
    /// A unit that is not a duration.
    #[error("unknown time unit {0:?} (use ns, us, ms, s or min)")]
    NotTime(String),
    /// No number first.
    #[error("{0:?} does not start with a number")]
    NoNumber(String),
    /// A negative, infinite or NaN number.
    #[error("{0:?} must be a finite, non-negative number")]
    NotFinite(String),
    /// More bytes than 9·10¹⁸.
    #[error("{0:?} is out of range")]
    OutOfRange(String),
}

/// Parses a memory size into bytes. Units: `B`, `KiB`, `MiB`, `GiB`, `TiB` (binary) and
/// `kB`, `MB`, `GB` (decimal).
///
/// # Errors
/// [`QuantityError`]: the accepted units, or why the number is not usable.
pub fn parse_bytes(text: &str) -> Result<u64, QuantityError> {
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
        other => return Err(QuantityError::NotMemory(other.to_string())),
    };
    let bytes = number * scale;
    if !(0.0..=9.0e18).contains(&bytes) {
        return Err(QuantityError::OutOfRange(text.to_string()));
    }
    Ok(bytes.round() as u64)
}

/// Parses a duration into seconds. Units: `ns`, `us` (or `µs`), `ms`, `s`, `min`.
///
/// # Errors
/// [`QuantityError`]: the accepted units, or why the number is not usable.
pub fn parse_seconds(text: &str) -> Result<f64, QuantityError> {
    let (number, unit) = split(text)?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "min" => 60.0,
        other => return Err(QuantityError::NotTime(other.to_string())),
    };
    Ok(number * scale)
}

/// Splits `"12.5 MiB"` into `(12.5, "MiB")`; the number must be finite and non-negative.
fn split(text: &str) -> Result<(f64, &str), QuantityError> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let unit = unit.trim();
    if unit.is_empty() {
        return Err(QuantityError::NoUnit(text.to_string()));
    }
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| QuantityError::NoNumber(text.to_string()))?;
    if !value.is_finite() || value < 0.0 {
        return Err(QuantityError::NotFinite(text.to_string()));
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
        assert_eq!(parse_bytes("6"), Err(QuantityError::NoUnit("6".into())));
        assert!(parse_bytes("6").unwrap_err().to_string().contains("no unit"));
        assert_eq!(parse_bytes("6 s"), Err(QuantityError::NotMemory("s".into())));
        assert!(
            parse_seconds("6 MiB")
                .unwrap_err()
                .to_string()
                .contains("unknown time unit \"MiB\"")
        );
        assert_eq!(
            parse_bytes("-1 MiB"),
            Err(QuantityError::NotFinite("-1 MiB".into()))
        );
        assert_eq!(parse_bytes("x MiB"), Err(QuantityError::NoNumber("x MiB".into())));
        assert_eq!(
            parse_bytes("1e30 GiB"),
            Err(QuantityError::OutOfRange("1e30 GiB".into()))
        );
    }
}
