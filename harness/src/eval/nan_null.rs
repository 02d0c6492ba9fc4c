//! `f64` fields that may be NaN ("not measured") in JSON: written as `null`, read back as
//! NaN (JSON has no NaN; `serde_json` would write `null` and then refuse to read it).

use serde::{Deserialize, Deserializer, Serializer};

/// Writes NaN as `null`, any other value as a number.
///
/// # Errors
/// The serializer's.
pub fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    if value.is_nan() {
        s.serialize_none()
    } else {
        s.serialize_f64(*value)
    }
}

/// Reads `null` as NaN.
///
/// # Errors
/// The deserializer's, for anything but a number or `null`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, Debug)]
    struct Row {
        #[serde(with = "super")]
        x: f64,
    }

    #[test]
    fn nan_round_trips_through_null() {
        let text = serde_json::to_string(&Row { x: f64::NAN }).unwrap();
        assert_eq!(text, r#"{"x":null}"#);
        assert!(serde_json::from_str::<Row>(&text).unwrap().x.is_nan());
        let text = serde_json::to_string(&Row { x: 2.5 }).unwrap();
        assert_eq!(serde_json::from_str::<Row>(&text).unwrap().x, 2.5);
    }
}
