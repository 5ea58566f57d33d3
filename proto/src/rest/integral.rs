//! Integers in request bodies as JSON Schema counts them: `3.0` is the integer 3 (a number with
//! a zero fractional part), so a client or generator that writes integral numbers with a decimal
//! point is not refused for what the API documents as an integer. Fractions stay refused.

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// An `i64` read from any integral JSON number.
struct Integral(i64);

impl<'de> Deserialize<'de> for Integral {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IntegralVisitor).map(Integral)
    }
}

struct IntegralVisitor;

impl Visitor<'_> for IntegralVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        // ±2^63 bounds the i64 range; inside it an integral f64 converts exactly.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if v.fract() == 0.0 && (-LIMIT..LIMIT).contains(&v) {
            #[allow(clippy::cast_possible_truncation)]
            Ok(v as i64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
}

/// `deserialize_with` for an `i64` field.
pub fn i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    Integral::deserialize(deserializer).map(|i| i.0)
}

/// `deserialize_with` for an `Option<i64>` field (`null` is `None`).
pub fn option_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Option::<Integral>::deserialize(deserializer).map(|o| o.map(|i| i.0))
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::i64")]
        n: i64,
        #[serde(default, deserialize_with = "super::option_i64")]
        m: Option<i64>,
    }

    fn parse(json: &str) -> Result<(i64, Option<i64>), String> {
        serde_json::from_str::<Body>(json)
            .map(|b| (b.n, b.m))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn integral_numbers_are_integers_and_fractions_are_not() {
        assert_eq!(parse(r#"{"n": 3}"#), Ok((3, None)));
        assert_eq!(parse(r#"{"n": 3.0, "m": -2.0}"#), Ok((3, Some(-2))));
        assert_eq!(parse(r#"{"n": 1e3, "m": null}"#), Ok((1000, None)));
        assert!(parse(r#"{"n": 3.5}"#).is_err());
        assert!(parse(r#"{"n": 1e300}"#).is_err());
        assert!(parse(r#"{"n": 18446744073709551615}"#).is_err());
        assert!(parse(r#"{"n": "3"}"#).is_err());
    }
}
