//! The functions Step Functions adds to JSONata, with AWS's argument handling and error codes.
//!
//! AWS's behaviour at the edges (undefined arguments, surplus arguments, rounding) is not in
//! its documentation; what is implemented here is what AWS answers when asked (recorded
//! against `TestState`/executions by Step Functions emulator projects), summarised per function.

use jsonata_core::evaluator::{Evaluator, EvaluatorError};
use jsonata_core::value::JValue;
use md5::Md5;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The largest array `$range` builds, the same bound JSONata puts on its `..` operator.
const MAX_RANGE_LENGTH: i128 = 10_000_000;

/// Registers the Step Functions functions on `evaluator` and disables `$eval`.
pub(super) fn install(evaluator: &mut Evaluator) -> Result<(), EvaluatorError> {
    evaluator.register_fn("partition", partition)?;
    evaluator.register_fn("range", range)?;
    evaluator.register_fn("hash", hash)?;
    // JSONata's own `$random` takes no seed; Step Functions' takes an optional one.
    evaluator.register_fn_override("random", random)?;
    evaluator.register_fn("uuid", uuid)?;
    evaluator.register_fn("parse", parse)?;
    // Step Functions does not offer `$eval` (use `$parse`); calling it fails as calling any
    // unbound name does.
    evaluator.register_fn_override("eval", |_: &[JValue]| Err(coded("T1006: Attempted to invoke a non-function")))
}

/// Argument `index` (from 0), `None` when it is absent or undefined.
fn argument(args: &[JValue], index: usize) -> Option<&JValue> {
    args.get(index).filter(|value| !value.is_undefined())
}

fn coded(message: impl Into<String>) -> EvaluatorError {
    EvaluatorError::EvaluationError(message.into())
}

/// JSONata's error for an argument that does not fit the function (`number` counts from 1).
fn signature_error(function: &str, number: usize) -> EvaluatorError {
    coded(format!("T0410: Argument {number} of function \"{function}\" does not match function signature"))
}

/// Fails on an argument beyond the `arity` the function takes, naming the first surplus one.
fn reject_surplus(args: &[JValue], function: &str, arity: usize) -> Result<(), EvaluatorError> {
    match argument(args, arity) {
        Some(_) => Err(signature_error(function, arity + 1)),
        None => Ok(()),
    }
}

/// A numeric argument rounded towards zero, as AWS rounds them (-1.7 is -1, 2.9 is 2).
fn integer_argument(value: &JValue, function: &str, number: usize) -> Result<i64, EvaluatorError> {
    match value {
        // `as` saturates: an out-of-range double becomes i64::MIN/MAX rather than wrapping.
        JValue::Number(n) if n.is_finite() => Ok(n.trunc() as i64),
        _ => Err(signature_error(function, number)),
    }
}

/// `$partition(array, chunkSize)`: the array cut into chunks of `chunkSize` items, the last
/// one holding the remainder. An undefined or empty array, or a size that rounds to 0, gives
/// undefined; an undefined size gives the whole array as one chunk; a negative size fails.
fn partition(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    reject_surplus(args, "partition", 2)?;
    let Some(array) = argument(args, 0) else {
        return Ok(JValue::Undefined);
    };
    let Some(items) = array.as_array() else {
        return Err(coded("T0412: Argument 1 of function \"partition\" must be an array of undefined"));
    };
    if items.is_empty() {
        return Ok(JValue::Undefined);
    }
    let Some(size) = argument(args, 1) else {
        return Ok(JValue::array(vec![array.clone()]));
    };
    let size = integer_argument(size, "partition", 2)?;
    if size < 0 {
        return Err(coded("D3137: Second argument must be zero or greater"));
    }
    if size == 0 {
        return Ok(JValue::Undefined);
    }
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    Ok(JValue::array(items.chunks(size).map(|chunk| JValue::array(chunk.to_vec())).collect()))
}

/// `$range(start, end, step)`: the integers from `start` towards `end` (inclusive when a step
/// lands on it) by `step`, all rounded towards zero. An undefined or zero step, or one that
/// points away from `end`, gives undefined; a range of one number gives that number alone.
fn range(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    reject_surplus(args, "range", 3)?;
    let start = integer_argument(argument(args, 0).unwrap_or(&JValue::Undefined), "range", 1)?;
    let end = integer_argument(argument(args, 1).unwrap_or(&JValue::Undefined), "range", 2)?;
    let Some(step) = argument(args, 2) else {
        return Ok(JValue::Undefined);
    };
    let step = integer_argument(step, "range", 3)?;
    if step == 0 || (step > 0 && start > end) || (step < 0 && start < end) {
        return Ok(JValue::Undefined);
    }
    if start == end {
        return Ok(JValue::from(start));
    }
    // Counted in i128 so that neither the count nor the last increment can overflow.
    let (start, end, step) = (i128::from(start), i128::from(end), i128::from(step));
    let length = (end - start) / step + 1;
    if length > MAX_RANGE_LENGTH {
        return Err(coded(format!(
            "D2014: The size of the sequence allocated by the range operator (..) must not exceed 1e7.  Attempted to allocate {length}."
        )));
    }
    Ok(JValue::array((0..length).map(|index| JValue::from((start + index * step) as f64)).collect()))
}

/// `$hash(data, algorithm)`: the lowercase hex digest of the UTF-8 bytes of `data`, with
/// `algorithm` one of `MD5`, `SHA-1`, `SHA-256`, `SHA-384`, `SHA-512` (exact spelling). An
/// undefined algorithm gives undefined; a string that names no algorithm fails with D3137.
fn hash(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    reject_surplus(args, "hash", 2)?;
    let Some(data) = argument(args, 0).and_then(JValue::as_str) else {
        return Err(signature_error("hash", 1));
    };
    let Some(algorithm) = argument(args, 1) else {
        return Ok(JValue::Undefined);
    };
    let Some(algorithm) = algorithm.as_str() else {
        return Err(signature_error("hash", 2));
    };
    let bytes = data.as_bytes();
    let digest = match algorithm {
        "MD5" => hex(&Md5::digest(bytes)),
        "SHA-1" => hex(&Sha1::digest(bytes)),
        "SHA-256" => hex(&Sha256::digest(bytes)),
        "SHA-384" => hex(&Sha384::digest(bytes)),
        "SHA-512" => hex(&Sha512::digest(bytes)),
        other => {
            return Err(coded(format!(
                "D3137: Hash algorithm '{other}' must be one of SHA-1, SHA-384, SHA-256, SHA-512, MD5"
            )));
        }
    };
    Ok(JValue::from(digest))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `$random()` / `$random(seed)`: a number in [0, 1). With a seed (rounded towards zero) the
/// number is the first `nextDouble()` of a `java.util.Random` seeded with it, which is what
/// AWS returns: `$random(42)` is 0.7275636800328681 there too.
fn random(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    reject_surplus(args, "random", 1)?;
    Ok(JValue::from(match argument(args, 0) {
        None => fastrand::f64(),
        Some(seed) => JavaRandom::new(integer_argument(seed, "random", 1)?).next_double(),
    }))
}

/// `java.util.Random`'s 48-bit linear congruential generator, as far as `nextDouble` needs it.
struct JavaRandom {
    seed: u64,
}

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const ADDEND: u64 = 0xB;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> Self {
        // Reinterpreting the bits is Java's own conversion of the long seed.
        Self { seed: (seed as u64 ^ Self::MULTIPLIER) & Self::MASK }
    }

    fn next(&mut self, bits: u32) -> u64 {
        self.seed = self.seed.wrapping_mul(Self::MULTIPLIER).wrapping_add(Self::ADDEND) & Self::MASK;
        self.seed >> (48 - bits)
    }

    fn next_double(&mut self) -> f64 {
        let high = self.next(26);
        let low = self.next(27);
        ((high << 27) + low) as f64 / (1u64 << 53) as f64
    }
}

/// `$uuid()`: a random version 4 UUID. It takes no argument.
fn uuid(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    reject_surplus(args, "uuid", 0)?;
    Ok(JValue::from(uuid::Uuid::new_v4().to_string()))
}

/// `$parse(json)`: the value a JSON string holds. An undefined argument gives undefined; text
/// that is not exactly one JSON value (empty, trailing data, a key twice) fails with D3137.
fn parse(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    reject_surplus(args, "parse", 1)?;
    let Some(text) = argument(args, 0) else {
        return Ok(JValue::Undefined);
    };
    let Some(text) = text.as_str() else {
        return Err(signature_error("parse", 1));
    };
    serde_json::from_str::<StrictJson>(text)
        .map(|StrictJson(value)| JValue::from(value))
        .map_err(|_| coded("D3137: Invalid JSON"))
}

/// A JSON value read with duplicate object keys refused, as AWS's parser refuses them.
struct StrictJson(Value);

impl<'de> Deserialize<'de> for StrictJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictJsonVisitor).map(StrictJson)
    }
}

struct StrictJsonVisitor;

impl<'de> Visitor<'de> for StrictJsonVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(n).map(Value::Number).ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictJson(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key '{key}'")));
            }
            let StrictJson(value) = map.next_value()?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}
