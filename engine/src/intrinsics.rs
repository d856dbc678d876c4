//! The eighteen intrinsic functions of JSONPath mode (`States.Format(…)`, `States.Array(…)`, …),
//! parsed once when the definition is loaded and evaluated per state.

use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::{Number, Value};

use crate::path::{Path, PathSyntaxError};

/// The ASL error name for intrinsic functions that fail at run time.
pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";

/// An intrinsic function name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

impl Function {
    fn from_name(name: &str) -> Option<Function> {
        Some(match name {
            "States.Format" => Function::Format,
            "States.StringToJson" => Function::StringToJson,
            "States.JsonToString" => Function::JsonToString,
            "States.Array" => Function::Array,
            "States.ArrayPartition" => Function::ArrayPartition,
            "States.ArrayContains" => Function::ArrayContains,
            "States.ArrayRange" => Function::ArrayRange,
            "States.ArrayGetItem" => Function::ArrayGetItem,
            "States.ArrayLength" => Function::ArrayLength,
            "States.ArrayUnique" => Function::ArrayUnique,
            "States.Base64Encode" => Function::Base64Encode,
            "States.Base64Decode" => Function::Base64Decode,
            "States.Hash" => Function::Hash,
            "States.JsonMerge" => Function::JsonMerge,
            "States.MathRandom" => Function::MathRandom,
            "States.MathAdd" => Function::MathAdd,
            "States.StringSplit" => Function::StringSplit,
            "States.UUID" => Function::Uuid,
            _ => return None,
        })
    }

    /// Allowed argument counts (inclusive).
    fn arity(self) -> (usize, usize) {
        match self {
            Function::Format => (1, usize::MAX),
            Function::Array => (0, usize::MAX),
            Function::StringToJson
            | Function::JsonToString
            | Function::ArrayLength
            | Function::ArrayUnique
            | Function::Base64Encode
            | Function::Base64Decode => (1, 1),
            Function::ArrayPartition
            | Function::ArrayContains
            | Function::ArrayGetItem
            | Function::Hash
            | Function::MathAdd
            | Function::StringSplit => (2, 2),
            Function::ArrayRange | Function::JsonMerge => (3, 3),
            Function::MathRandom => (2, 3),
            Function::Uuid => (0, 0),
        }
    }
}

/// One argument of an intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub enum Argument {
    Literal(Value),
    /// The literal template of `States.Format`, split at its unescaped `{}` placeholders.
    FormatTemplate(Vec<String>),
    Path(Path),
    Call(Call),
}

/// A parsed intrinsic function call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub function: Function,
    pub name: String,
    pub arguments: Vec<Argument>,
}

/// Why an intrinsic expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid intrinsic function '{expression}': {reason}")]
pub struct IntrinsicSyntaxError {
    pub expression: String,
    pub reason: String,
}

/// A failure while evaluating an intrinsic function.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntrinsicError {
    /// A path argument selected nothing.
    #[error("{0}")]
    Path(String),
    /// The function rejected its arguments (`States.IntrinsicFailure`).
    #[error("{0}")]
    Failure(String),
}

/// Whether a `.$` value is an intrinsic call rather than a path.
pub fn looks_like_call(s: &str) -> bool {
    s.starts_with("States.")
}

/// Resolves path arguments of a call; supplied by the caller, who knows `$`, `$$` and variables.
pub trait PathResolver {
    fn resolve(&self, path: &Path) -> Result<Value, IntrinsicError>;
}

impl Call {
    /// Parses `States.Name(arg, …)`.
    pub fn parse(expression: &str) -> Result<Call, IntrinsicSyntaxError> {
        let mut parser = Parser { expression, chars: expression.chars().collect(), pos: 0 };
        let call = parser.call()?;
        parser.skip_spaces();
        if parser.pos != parser.chars.len() {
            return Err(parser.error("unexpected text after the closing ')'"));
        }
        Ok(call)
    }

    /// Evaluates the call, resolving paths through `paths`.
    pub fn evaluate(&self, paths: &dyn PathResolver) -> Result<Value, IntrinsicError> {
        let mut template = None;
        let mut args = Vec::with_capacity(self.arguments.len());
        for argument in &self.arguments {
            match argument {
                Argument::Literal(v) => args.push(v.clone()),
                Argument::FormatTemplate(pieces) => template = Some(pieces.clone()),
                Argument::Path(p) => args.push(paths.resolve(p)?),
                Argument::Call(c) => args.push(c.evaluate(paths)?),
            }
        }
        apply(self.function, &self.name, template, args)
    }
}

fn fail(name: &str, message: impl std::fmt::Display) -> IntrinsicError {
    IntrinsicError::Failure(format!("{name}: {message}"))
}

fn integer_argument(name: &str, v: &Value, what: &str) -> Result<i64, IntrinsicError> {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 => Ok(f as i64),
        _ => Err(fail(name, format!("the {what} must be an integer, got {v}"))),
    }
}

/// Rounds half up (towards +∞), as Java's Math.round, which AWS's MathAdd applies to each operand.
fn round_half_up(f: f64) -> i64 {
    (f + 0.5).floor() as i64
}

fn number(n: i64) -> Value {
    Value::Number(Number::from(n))
}

fn format(name: &str, pieces: &[String], values: Vec<Value>) -> Result<Value, IntrinsicError> {
    let placeholders = pieces.len() - 1;
    if placeholders != values.len() {
        return Err(fail(
            name,
            format!("the template has {placeholders} placeholder(s) but {} argument(s) were given", values.len()),
        ));
    }
    let mut out = pieces[0].clone();
    for (value, piece) in values.iter().zip(&pieces[1..]) {
        match value {
            Value::String(s) => out.push_str(s),
            other => {
                let _ = write!(out, "{other}");
            }
        }
        out.push_str(piece);
    }
    Ok(Value::String(out))
}

fn apply(
    function: Function,
    name: &str,
    template: Option<Vec<String>>,
    args: Vec<Value>,
) -> Result<Value, IntrinsicError> {
    let mut args = args.into_iter();
    let mut next = || args.next().unwrap_or(Value::Null);
    match function {
        Function::Format => {
            let pieces = match template {
                Some(pieces) => pieces,
                None => match next() {
                    Value::String(s) => s.split("{}").map(str::to_owned).collect(),
                    _ => return Err(fail(name, "the first argument must be a string")),
                },
            };
            format(name, &pieces, args.collect())
        }
        Function::StringToJson => match next() {
            Value::String(s) => {
                serde_json::from_str(&s).map_err(|e| fail(name, format!("the argument is not valid JSON: {e}")))
            }
            other => Err(fail(name, format!("the argument must be a string, got {other}"))),
        },
        Function::JsonToString => Ok(Value::String(next().to_string())),
        Function::Array => Ok(Value::Array(std::iter::from_fn(|| args.next()).collect())),
        Function::ArrayPartition => {
            let (array, size) = (next(), next());
            let Value::Array(array) = array else {
                return Err(fail(name, "the first argument must be an array"));
            };
            let size = integer_argument(name, &size, "chunk size")?;
            if size <= 0 {
                return Err(fail(name, "the chunk size must be greater than 0"));
            }
            Ok(Value::Array(array.chunks(size as usize).map(|c| Value::Array(c.to_vec())).collect()))
        }
        Function::ArrayContains => {
            let (array, value) = (next(), next());
            let Value::Array(array) = array else {
                return Err(fail(name, "the first argument must be an array"));
            };
            Ok(Value::Bool(array.iter().any(|v| json_equal(v, &value))))
        }
        Function::ArrayRange => {
            let start = integer_argument(name, &next(), "start")?;
            let end = integer_argument(name, &next(), "end")?;
            let step = integer_argument(name, &next(), "step")?;
            if step == 0 {
                return Err(fail(name, "the step must not be 0"));
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i <= end) || (step < 0 && i >= end) {
                if out.len() == 1000 {
                    return Err(fail(name, "the range has more than 1000 items"));
                }
                out.push(number(i));
                i += step;
            }
            Ok(Value::Array(out))
        }
        Function::ArrayGetItem => {
            let (array, index) = (next(), next());
            let Value::Array(mut array) = array else {
                return Err(fail(name, "the first argument must be an array"));
            };
            let index = integer_argument(name, &index, "index")?;
            if index < 0 || index as usize >= array.len() {
                return Err(fail(name, format!("the index {index} is out of bounds")));
            }
            Ok(array.swap_remove(index as usize))
        }
        Function::ArrayLength => match next() {
            Value::Array(a) => Ok(number(a.len() as i64)),
            other => Err(fail(name, format!("the argument must be an array, got {other}"))),
        },
        Function::ArrayUnique => match next() {
            Value::Array(a) => {
                let mut out: Vec<Value> = Vec::with_capacity(a.len());
                for v in a {
                    if !out.iter().any(|seen| json_equal(seen, &v)) {
                        out.push(v);
                    }
                }
                Ok(Value::Array(out))
            }
            other => Err(fail(name, format!("the argument must be an array, got {other}"))),
        },
        Function::Base64Encode => match next() {
            Value::String(s) => Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(s.as_bytes()))),
            other => Err(fail(name, format!("the argument must be a string, got {other}"))),
        },
        Function::Base64Decode => match next() {
            Value::String(s) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(|e| fail(name, format!("the argument is not valid base64: {e}")))?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|_| fail(name, "the decoded bytes are not UTF-8 text"))
            }
            other => Err(fail(name, format!("the argument must be a string, got {other}"))),
        },
        Function::Hash => {
            let (data, algorithm) = (next(), next());
            let data = match data {
                Value::String(s) => s,
                Value::Null => return Err(fail(name, "the data must not be null")),
                other => other.to_string(),
            };
            let Value::String(algorithm) = algorithm else {
                return Err(fail(name, "the algorithm must be a string"));
            };
            hash(&data, &algorithm).map(Value::String).ok_or_else(|| {
                fail(name, format!("unsupported algorithm '{algorithm}' (MD5, SHA-1, SHA-256, SHA-384, SHA-512)"))
            })
        }
        Function::JsonMerge => {
            let (left, right, deep) = (next(), next(), next());
            let (Value::Object(mut left), Value::Object(right)) = (left, right) else {
                return Err(fail(name, "the first two arguments must be objects"));
            };
            match deep {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    return Err(fail(name, "deep merging (true) is not supported by Step Functions"));
                }
                _ => return Err(fail(name, "the third argument must be false")),
            }
            for (k, v) in right {
                left.insert(k, v);
            }
            Ok(Value::Object(left))
        }
        Function::MathRandom => {
            let start = next();
            let end = next();
            let seed = args.next();
            let start = start.as_f64().ok_or_else(|| fail(name, "the start must be a number"))?;
            let end = end.as_f64().ok_or_else(|| fail(name, "the end must be a number"))?;
            let (start, end) = (round_half_up(start), round_half_up(end));
            if start >= end {
                return Err(fail(name, "the start must be less than the end"));
            }
            let mut rng = match seed {
                Some(seed) => fastrand::Rng::with_seed(
                    seed.as_f64().ok_or_else(|| fail(name, "the seed must be a number"))? as i64 as u64,
                ),
                None => fastrand::Rng::new(),
            };
            Ok(number(rng.i64(start..end)))
        }
        Function::MathAdd => {
            let (a, b) = (next(), next());
            let (Some(a), Some(b)) = (a.as_f64(), b.as_f64()) else {
                return Err(fail(name, "both arguments must be numbers"));
            };
            Ok(number(round_half_up(a) + round_half_up(b)))
        }
        Function::StringSplit => {
            let (s, delimiters) = (next(), next());
            let (Value::String(s), Value::String(delimiters)) = (s, delimiters) else {
                return Err(fail(name, "both arguments must be strings"));
            };
            Ok(Value::Array(
                s.split(|c| delimiters.contains(c))
                    .filter(|part| !part.is_empty())
                    .map(|part| Value::String(part.to_owned()))
                    .collect(),
            ))
        }
        Function::Uuid => Ok(Value::String(uuid::Uuid::new_v4().to_string())),
    }
}

/// JSON equality with numbers compared by value (1 == 1.0).
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn hash(data: &str, algorithm: &str) -> Option<String> {
    use sha2::Digest;
    let bytes = data.as_bytes();
    let digest: Vec<u8> = match algorithm {
        "MD5" => md5::Md5::digest(bytes).to_vec(),
        "SHA-1" => sha1::Sha1::digest(bytes).to_vec(),
        "SHA-256" => sha2::Sha256::digest(bytes).to_vec(),
        "SHA-384" => sha2::Sha384::digest(bytes).to_vec(),
        "SHA-512" => sha2::Sha512::digest(bytes).to_vec(),
        _ => return None,
    };
    let mut out = String::with_capacity(digest.len() * 2);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    Some(out)
}

struct Parser<'e> {
    expression: &'e str,
    chars: Vec<char>,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, reason: impl Into<String>) -> IntrinsicSyntaxError {
        IntrinsicSyntaxError { expression: self.expression.to_owned(), reason: reason.into() }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn call(&mut self) -> Result<Call, IntrinsicSyntaxError> {
        self.skip_spaces();
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '.') {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        let function = Function::from_name(&name).ok_or_else(|| self.error(format!("unknown function '{name}'")))?;
        self.skip_spaces();
        if self.peek() != Some('(') {
            return Err(self.error(format!("expected '(' after {name}")));
        }
        self.pos += 1;
        let mut arguments = Vec::new();
        self.skip_spaces();
        if self.peek() == Some(')') {
            self.pos += 1;
        } else {
            loop {
                let format_template = function == Function::Format && arguments.is_empty();
                arguments.push(self.argument(format_template)?);
                self.skip_spaces();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error(format!("expected ',' or ')' in {name}"))),
                }
            }
        }
        let (min, max) = function.arity();
        if arguments.len() < min || arguments.len() > max {
            return Err(self.error(format!(
                "{name} takes {} argument(s), got {}",
                if min == max {
                    min.to_string()
                } else if max == usize::MAX {
                    format!("at least {min}")
                } else {
                    format!("{min} to {max}")
                },
                arguments.len()
            )));
        }
        Ok(Call { function, name, arguments })
    }

    fn argument(&mut self, format_template: bool) -> Result<Argument, IntrinsicSyntaxError> {
        self.skip_spaces();
        match self.peek() {
            Some('\'') => {
                let pieces = self.string()?;
                Ok(if format_template {
                    Argument::FormatTemplate(pieces)
                } else {
                    Argument::Literal(Value::String(pieces.join("{}")))
                })
            }
            Some('$') => {
                let start = self.pos;
                let mut depth = 0usize;
                let mut quote = None;
                while let Some(c) = self.peek() {
                    match (quote, c) {
                        (Some(q), c) if c == q => quote = None,
                        (Some(_), _) => {}
                        (None, '\'' | '"') => quote = Some(c),
                        (None, '[' | '(') => depth += 1,
                        (None, ']' | ')') if depth > 0 => depth -= 1,
                        (None, ',' | ')') if depth == 0 => break,
                        _ => {}
                    }
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                Path::parse(text.trim()).map(Argument::Path).map_err(|e: PathSyntaxError| self.error(e.to_string()))
            }
            Some('S') => self.call().map(Argument::Call),
            Some(_) => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != ',' && c != ')') {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                let text = text.trim();
                match serde_json::from_str::<Value>(text) {
                    Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => Ok(Argument::Literal(v)),
                    _ => Err(self.error(format!("invalid argument '{text}'"))),
                }
            }
            None => Err(self.error("unexpected end of expression")),
        }
    }

    /// A single-quoted string, split at its unescaped `{}` placeholders; `\'`, `\{`, `\}` and
    /// `\\` are escapes.
    fn string(&mut self) -> Result<Vec<String>, IntrinsicSyntaxError> {
        self.pos += 1;
        let mut pieces = vec![String::new()];
        loop {
            let current = pieces.last_mut().expect("pieces is never empty");
            match self.peek() {
                None => return Err(self.error("unterminated string literal")),
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ ('\'' | '{' | '}' | '\\')) => current.push(c),
                        Some(c) => {
                            current.push('\\');
                            current.push(c);
                        }
                        None => return Err(self.error("unterminated escape")),
                    }
                    self.pos += 1;
                }
                Some('\'') => {
                    self.pos += 1;
                    return Ok(pieces);
                }
                Some('{') if self.chars.get(self.pos + 1) == Some(&'}') => {
                    self.pos += 2;
                    pieces.push(String::new());
                }
                Some(c) => {
                    current.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Input(Value);
    impl PathResolver for Input {
        fn resolve(&self, path: &Path) -> Result<Value, IntrinsicError> {
            path.select(&self.0).map_err(|e| IntrinsicError::Path(e.to_string()))
        }
    }

    fn eval(expr: &str, input: Value) -> Result<Value, IntrinsicError> {
        Call::parse(expr).unwrap().evaluate(&Input(input))
    }

    #[test]
    fn functions_behave_as_aws() {
        assert_eq!(
            eval("States.Format('a {} b {}', $.x, $.y)", json!({"x": "s", "y": [1]})).unwrap(),
            json!("a s b [1]")
        );
        assert_eq!(eval("States.MathAdd(-1.49, -1.5)", json!(null)).unwrap(), json!(-2));
        assert_eq!(eval("States.ArrayRange(0, 9, 3)", json!(null)).unwrap(), json!([0, 3, 6, 9]));
        assert_eq!(eval("States.StringSplit('a,,b.c', ',.')", json!(null)).unwrap(), json!(["a", "b", "c"]));
        assert_eq!(
            eval("States.Hash('input data', 'SHA-1')", json!(null)).unwrap(),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
        );
        assert_eq!(
            eval("States.JsonMerge(States.StringToJson('{\"a\": 1}'), $.b, false)", json!({"b": {"c": 2}})).unwrap(),
            json!({"a": 1, "c": 2})
        );
        assert_eq!(eval("States.ArrayUnique(States.Array(1, 1.0, 2))", json!(null)).unwrap(), json!([1, 2]));
        assert!(matches!(
            eval("States.ArrayGetItem(States.Array(1), 3)", json!(null)),
            Err(IntrinsicError::Failure(_))
        ));
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(Call::parse("States.Nope(1)").is_err());
        assert!(Call::parse("States.Array(1").is_err());
        assert!(Call::parse("States.UUID(1)").is_err());
        assert!(Call::parse("States.Format('x') trailing").is_err());
    }
}
