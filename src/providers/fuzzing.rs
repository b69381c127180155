//! What the providers' `fuzz` modules feed their parsers: arbitrary bytes, and JSON made of the
//! provider's own vocabulary (keys and values), so that inputs get past the first check and
//! into the mapping. Cases per property: `PROPTEST_CASES` (proptest's default 256 in CI).

use proptest::prelude::*;
use serde_json::Value;

/// A JSON value whose keys and some strings come from `words`, nested a few levels.
pub fn json_value(words: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "-?[0-9]{0,22}(\\.[0-9]{0,8})?".prop_map(Value::from),
        "[A-Z]{3}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        prop::sample::select(words).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(words), inner), 0..8).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(key, value)| (key.to_owned(), value))
                        .collect(),
                )
            }),
        ]
    })
}

/// A body as a provider might send one: mostly JSON of its vocabulary, sometimes any bytes.
pub fn bodies(words: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        4 => json_value(words).prop_map(|value| serde_json::to_vec(&value).unwrap_or_default()),
    ]
}
