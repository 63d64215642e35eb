//! How request bodies read integers: as JSON Schema counts them, so `2.0` is the integer 2, as
//! the OpenAPI document (3.1) says, where serde alone would refuse it.

use serde::Deserialize;

/// An optional integer of a request body; `null` is absent. For
/// `#[serde(default, deserialize_with = "sankalpa_api::json::whole")]` on an `Option` of an
/// unsigned integer type.
pub fn whole<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|value| value.fract() == 0.0 && *value >= 0.0 && *value < u64::MAX as f64)
            .map(|value| value as u64)
    });
    whole
        .and_then(|value| T::try_from(value).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{number} is not an integer in range")))
}

/// A required integer of a request body, taken as [`whole`] takes an optional one.
pub fn whole_required<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    whole(deserializer)?.ok_or_else(|| serde::de::Error::custom("an integer is required"))
}
