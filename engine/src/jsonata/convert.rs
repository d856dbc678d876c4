//! Results of JSONata (numbers are doubles) turned into JSON as Step Functions prints them.

use jsonata_core::value::JValue;
use serde_json::{Map, Number, Value};

/// Magnitude from which a double is no longer printed as an integer. AWS keeps a whole number
/// exact while it fits a 64-bit integer and switches to a double past that.
const LARGEST_PRINTED_AS_INTEGER: f64 = 9.223_372_036_854_776e18;

/// A top-level result that JSON cannot hold: a function or a regular expression.
pub(super) struct NotJson;

/// The JSON for an expression's result; `Ok(None)` when it is undefined.
///
/// Inside arrays and objects, values JSON cannot hold (undefined, functions, regular
/// expressions) are left out, as `JSON.stringify` leaves them out in jsonata-js.
pub(super) fn result_to_json(result: &JValue) -> Result<Option<Value>, NotJson> {
    match result {
        JValue::Undefined => Ok(None),
        other => nested_to_json(other).map(Some).ok_or(NotJson),
    }
}

/// The JSON for a value, or `None` for one that JSON cannot hold.
fn nested_to_json(value: &JValue) -> Option<Value> {
    Some(match value {
        JValue::Null => Value::Null,
        JValue::Bool(b) => Value::Bool(*b),
        JValue::Number(n) => number_to_json(*n),
        JValue::String(s) => Value::String(s.to_string()),
        JValue::Array(items) => Value::Array(items.iter().filter_map(nested_to_json).collect()),
        JValue::Object(fields) => Value::Object(
            fields.iter().filter_map(|(key, value)| Some((key.clone(), nested_to_json(value)?))).collect::<Map<_, _>>(),
        ),
        _ => return None,
    })
}

/// A JSON value read straight from the bindings, with its numbers printed as AWS prints the
/// numbers of a JSONata result: 64-bit integers exact, integral doubles without a fraction.
pub(super) fn bound_value_to_json(value: &Value) -> Value {
    match value {
        Value::Number(number) if number.is_i64() => value.clone(),
        Value::Number(number) => number.as_f64().map_or(Value::Null, number_to_json),
        Value::Array(items) => Value::Array(items.iter().map(bound_value_to_json).collect()),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(key, value)| (key.clone(), bound_value_to_json(value))).collect())
        }
        other => other.clone(),
    }
}

/// AWS prints an integral double without a fraction (`2`, not `2.0`) and writes the
/// non-finite numbers, which JSON has no literal for, as the strings JavaScript names them by.
fn number_to_json(n: f64) -> Value {
    if n.is_nan() {
        return Value::String("NaN".to_owned());
    }
    if n.is_infinite() {
        let name = if n > 0.0 { "Infinity" } else { "-Infinity" };
        return Value::String(name.to_owned());
    }
    if n.fract() == 0.0 && n.abs() < LARGEST_PRINTED_AS_INTEGER {
        // Exact: the value is integral and within i64's range.
        return Value::Number(Number::from(n as i64));
    }
    Value::from(n)
}
