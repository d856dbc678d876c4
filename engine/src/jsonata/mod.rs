//! JSONata evaluation for states in `QueryLanguage: "JSONata"` mode, as Step Functions does it.
//!
//! The language itself comes from the `jsonata-core` crate (JSONata 2.x; Step Functions documents
//! 2.0.6). This module adds what Step Functions puts around it:
//! - `$states` and the visible workflow variables bound as JSONata variables, `$` left undefined;
//! - Step Functions' extension functions (`$partition`, `$range`, `$hash`, `$random`, `$uuid`,
//!   `$parse`) and `$eval` disabled;
//! - AWS's number printing (integral doubles become JSON integers);
//! - AWS's error names and causes: every failure is `States.QueryEvaluationError`, and a cause
//!   names the expression and the field it was written in;
//! - AWS's validation of expressions ([`check_syntax`], [`check_states_fields`]).
//!
//! Known differences from AWS:
//! - JSONata numbers are doubles: a computed integer beyond 2^53 loses precision. An expression
//!   that is only a path of field names (`$states.input.id`, `$var.a`) reads the bindings
//!   directly and keeps 64-bit integers exact, as AWS does; other expressions that pass a
//!   large integer through (`$states.input.items[0]`) round it.
//! - Regular expressions use the `regex` crate's syntax: no look-around, no back-references.
//! - Error texts after the JSONata code are jsonata-js's for the common argument, operand and
//!   conversion errors, but jsonata-core's own for the rest (e.g. T2009 does not quote the
//!   values compared). An unterminated regex is reported as an unterminated string.
//! - Limits: an expression fails after 5 s; AWS's nesting-depth and memory bounds are not
//!   applied, and `$range` stops at 10^7 items as JSONata's `..` does.
//! - `$base64decode` of invalid input gives `""` where AWS reports an internal error.

mod convert;
mod extensions;
mod syntax;
mod wording;

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use jsonata_core::ast::AstNode;
use jsonata_core::evaluator::{Context, Evaluator, EvaluatorOptions};
use jsonata_core::value::{JMap, JValue};
use serde_json::{Map, Value};

/// What an expression can see: `$states` and the visible workflow variables.
pub struct Bindings<'a> {
    /// The `$states` object: `{"input": …, "context": …}` plus `"result"` / `"errorOutput"`
    /// when defined.
    pub states: &'a Value,
    /// Visible workflow variables, referenced as `$name`.
    pub variables: &'a Map<String, Value>,
}

/// A JSONata failure, named as Step Functions names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JsonataError {
    /// The ASL error name, `States.QueryEvaluationError` at run time; from [`check_syntax`]
    /// and [`check_states_fields`], the validation diagnostic code.
    pub error: String,
    /// The cause, worded as AWS words it.
    pub message: String,
}

/// The ASL error for every JSONata failure at run time.
pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";

/// The diagnostic code AWS's validator gives an expression that does not parse.
pub const INVALID_JSONATA_EXPRESSION: &str = "INVALID_JSONATA_EXPRESSION";

/// The diagnostic code AWS's validator gives an expression that reads what Step Functions does
/// not offer (`$`, `$$`, a bare top-level name, a `$states` field not available there).
pub const UNSUPPORTED_JSONATA_EXPRESSION: &str = "UNSUPPORTED_JSONATA_EXPRESSION";

/// How long one expression may run before it fails. AWS bounds evaluation without documenting
/// the figure; five seconds is the JSONata reference implementation's own default.
const EVALUATION_TIMEOUT_MS: u64 = 5_000;

/// Whether `s` is a JSONata expression string as Step Functions recognises it: it starts with
/// `{%` and ends with `%}`, with nothing before or after (`" {% x %}"` is a literal string).
pub fn is_expression(s: &str) -> bool {
    s.len() >= 4 && s.starts_with("{%") && s.ends_with("%}")
}

fn not_an_expression(s: &str) -> String {
    format!("The value '{s}' is not a JSONata expression: it must start with '{{%' and end with '%}}'.")
}

/// The expression between the delimiters, trimmed, as AWS quotes it in causes.
fn expression_body(s: &str) -> &str {
    s[2..s.len() - 2].trim()
}

/// Checks a `{% … %}` string as AWS's validator does, for validation diagnostics.
///
/// On failure, `error` is the diagnostic code ([`INVALID_JSONATA_EXPRESSION`] or
/// [`UNSUPPORTED_JSONATA_EXPRESSION`]) and `message` AWS's text: the parser's message without
/// its `S0xxx` code (`Unexpected end of expression`), `Reference to 'phone' at the top level is
/// not supported.` for a path that starts with a bare name (or `$`), and `Reference to '$$' is
/// not supported.`.
pub fn check_syntax(s: &str) -> Result<(), JsonataError> {
    let parsed = parse_for_validation(s)?;
    match syntax::first_refused_reference(&parsed.ast) {
        None => Ok(()),
        Some(syntax::Refused::Root) => Err(unsupported("Reference to '$$' is not supported.")),
        Some(syntax::Refused::TopLevel(name)) => {
            Err(unsupported(format!("Reference to '{name}' at the top level is not supported.")))
        }
    }
}

/// Checks that a `{% … %}` string reads only the `$states` fields `available` where it is
/// written: `input` and `context` everywhere, `result` in a Task/Map/Parallel state's `Output`
/// and `Assign`, `errorOutput` in a `Catch` entry's `Output` and `Assign`. AWS refuses the
/// others with `Field '$states.errorOutput' does not exist.` ([`UNSUPPORTED_JSONATA_EXPRESSION`]).
pub fn check_states_fields(s: &str, available: &[&str]) -> Result<(), JsonataError> {
    let parsed = parse_for_validation(s)?;
    match parsed.reads.states_fields.iter().find(|field| !available.contains(&field.as_str())) {
        None => Ok(()),
        Some(field) => Err(unsupported(format!("Field '$states.{field}' does not exist."))),
    }
}

fn parse_for_validation(s: &str) -> Result<Rc<Parsed>, JsonataError> {
    let invalid = |message: String| JsonataError { error: INVALID_JSONATA_EXPRESSION.to_owned(), message };
    if !is_expression(s) {
        return Err(invalid(not_an_expression(s)));
    }
    parsed(expression_body(s)).map_err(|message| invalid(syntax::parse_error_message(&message)))
}

fn unsupported(message: impl Into<String>) -> JsonataError {
    JsonataError { error: UNSUPPORTED_JSONATA_EXPRESSION.to_owned(), message: message.into() }
}

/// Evaluates one `{% … %}` expression string; `Ok(None)` means its result is undefined.
///
/// An error's message is JSONata's own (`T0410: Argument 1 of function "abs" does not match
/// function signature`); [`evaluate_field`] words it as AWS does for a named field.
pub fn evaluate(s: &str, bindings: &Bindings) -> Result<Option<Value>, JsonataError> {
    if !is_expression(s) {
        return Err(query_error(not_an_expression(s)));
    }
    let body = expression_body(s);
    run(body, &Scope::new(bindings)).map_err(|failure| match failure {
        Failure::Evaluation(message) => query_error(message),
        other => query_error(other.cause(&field_sentence(body, ""))),
    })
}

/// Evaluates the value of the ASL field `field` (a state's `Output`, `Arguments`, `Assign`,
/// `Items`, `Condition`, `Seconds`, …): every `{% … %}` string inside it, at any depth, is
/// replaced by its result, and everything else is kept as written.
///
/// `field` is the field's path inside the state as AWS writes it in causes, e.g. `Output`,
/// `Choices[0]/Condition`, `Catch[1]/Assign`. An expression whose result is undefined fails, at
/// the top level or nested, as on AWS: `The JSONata expression '$x' specified for the field
/// 'Output/result' returned nothing (undefined).` (nested paths extend `field` with `/key` and
/// `[index]`). Undefined values *inside* one expression's result follow JSONata: an object
/// constructor drops the key, an array constructor drops the item.
pub fn evaluate_field(field: &str, template: &Value, bindings: &Bindings) -> Result<Value, JsonataError> {
    TemplateWalk { scope: Scope::new(bindings), path: field.to_owned() }.resolve(template)
}

/// [`evaluate_field`] for a template whose field name is not known: causes name the path
/// inside the template only (`'result'` rather than `'Output/result'`), or no field at all for
/// an expression at the top.
pub fn evaluate_template(template: &Value, bindings: &Bindings) -> Result<Value, JsonataError> {
    evaluate_field("", template, bindings)
}

/// The failure for an expression whose defined result has the wrong type for its field, e.g.
/// `Items` not an array: `The JSONata expression '1' specified for the field 'Items' returned an
/// unexpected result type. Expected 'array', but was 'number' for value: 1`.
///
/// `expression` is the field's `{% … %}` string and `expected` the JSONata type name wanted
/// (`array`, `object`, `string`, `number`, `boolean`, `null`, or a narrower name such as
/// `integer`).
pub fn unexpected_type_error(field: &str, expression: &str, expected: &str, actual: &Value) -> JsonataError {
    let body = if is_expression(expression) { expression_body(expression) } else { expression };
    query_error(format!(
        "{} returned an unexpected result type. Expected '{expected}', but was '{}' for value: {actual}",
        field_sentence(body, field),
        type_name(actual)
    ))
}

/// JSONata's name for the type of a JSON value, as `$type` returns it.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// One walk over a field's template: the path reached so far, for causes, and the bindings
/// its expressions have converted so far.
struct TemplateWalk<'a> {
    scope: Scope<'a>,
    path: String,
}

impl TemplateWalk<'_> {
    fn resolve(&mut self, template: &Value) -> Result<Value, JsonataError> {
        match template {
            Value::String(s) if is_expression(s) => {
                let body = expression_body(s);
                match run(body, &self.scope) {
                    Ok(Some(value)) => Ok(value),
                    Ok(None) => {
                        Err(query_error(format!("{} returned nothing (undefined).", field_sentence(body, &self.path))))
                    }
                    Err(failure) => Err(query_error(failure.cause(&field_sentence(body, &self.path)))),
                }
            }
            Value::Object(fields) => {
                let mut resolved = Map::with_capacity(fields.len());
                for (key, value) in fields {
                    let restore = self.path.len();
                    if !self.path.is_empty() {
                        self.path.push('/');
                    }
                    self.path.push_str(key);
                    let value = self.resolve(value)?;
                    self.path.truncate(restore);
                    resolved.insert(key.clone(), value);
                }
                Ok(Value::Object(resolved))
            }
            Value::Array(items) => {
                let mut resolved = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    let restore = self.path.len();
                    self.path.push_str(&format!("[{index}]"));
                    resolved.push(self.resolve(item)?);
                    self.path.truncate(restore);
                }
                Ok(Value::Array(resolved))
            }
            literal => Ok(literal.clone()),
        }
    }
}

/// The opening of every cause about one expression.
fn field_sentence(body: &str, field: &str) -> String {
    if field.is_empty() {
        format!("The JSONata expression '{body}'")
    } else {
        format!("The JSONata expression '{body}' specified for the field '{field}'")
    }
}

/// Why an expression produced no value.
#[derive(Debug)]
enum Failure {
    /// Parsing or evaluation raised an error; JSONata's own message.
    Evaluation(String),
    /// The result is a function or a regular expression, which JSON cannot hold.
    UnsupportedResult,
    /// The JSONata library itself failed (it panicked).
    Internal,
}

impl Failure {
    /// The cause AWS writes after `sentence` (see [`field_sentence`]). A coded JSONata message
    /// is a sentence of its own (`… threw an error during evaluation. T0410: …`), a bare message
    /// follows a colon.
    fn cause(self, sentence: &str) -> String {
        match self {
            Failure::Evaluation(message) => {
                let separator = if has_error_code(&message) { ". " } else { ": " };
                format!("{sentence} threw an error during evaluation{separator}{message}")
            }
            Failure::UnsupportedResult => format!("{sentence} returned an unsupported result type."),
            // AWS follows this sentence with an id of its own for the failure.
            Failure::Internal => {
                format!("{sentence} threw an internal error during evaluation. {}", uuid::Uuid::new_v4())
            }
        }
    }
}

/// Whether `message` opens with a JSONata error code such as `T0410:` or `D3137:`.
fn has_error_code(message: &str) -> bool {
    let bytes = message.as_bytes();
    bytes.len() >= 6 && bytes[0].is_ascii_uppercase() && bytes[1..5].iter().all(u8::is_ascii_digit) && bytes[5] == b':'
}

/// The bindings of one field as JSONata values, each converted when an expression first reads
/// it and then shared by the field's other expressions.
struct Scope<'a> {
    bindings: &'a Bindings<'a>,
    variables: RefCell<HashMap<String, JValue>>,
    states_fields: RefCell<HashMap<String, JValue>>,
    whole_states: OnceCell<JValue>,
}

impl<'a> Scope<'a> {
    fn new(bindings: &'a Bindings<'a>) -> Self {
        Self {
            bindings,
            variables: RefCell::default(),
            states_fields: RefCell::default(),
            whole_states: OnceCell::new(),
        }
    }

    /// Binds what `reads` names: the variables, and `$states` whole or with only the fields
    /// read, so that an expression does not pay for converting data it never reads.
    fn bind(&self, reads: &syntax::Reads, context: &mut Context) {
        for name in &reads.variables {
            // `$states` is reserved and always means the state's own data.
            if name == "states" {
                continue;
            }
            if let Some(value) = self.bindings.variables.get(name) {
                let converted = cached(&self.variables, name, value);
                context.bind(name.clone(), converted);
            }
        }
        let states = if reads.whole_states {
            self.whole_states.get_or_init(|| JValue::from(self.bindings.states.clone())).clone()
        } else {
            let fields = reads.states_fields.iter().filter_map(|field| {
                let value = self.bindings.states.get(field)?;
                Some((field.clone(), cached(&self.states_fields, field, value)))
            });
            JValue::Object(Rc::new(fields.collect::<JMap>()))
        };
        context.bind("states".to_owned(), states);
    }

    /// The value at `path` when every step before the last lands on an object that has the
    /// next field. That is the most common expression (`$states.input.key`, `$var`), and
    /// reading it directly keeps 64-bit integers exact, as AWS does. Any other case (an
    /// array on the way, a missing field, an unknown variable) is left to the evaluator, whose
    /// path semantics then apply.
    fn follow(&self, path: &syntax::FieldPath) -> Option<&'a Value> {
        let root = if path.variable == "states" {
            self.bindings.states
        } else {
            self.bindings.variables.get(&path.variable)?
        };
        path.fields.iter().try_fold(root, |value, field| value.as_object()?.get(field))
    }
}

/// `value` as a JSONata value, converted once per `cache`.
fn cached(cache: &RefCell<HashMap<String, JValue>>, name: &str, value: &Value) -> JValue {
    cache.borrow_mut().entry(name.to_owned()).or_insert_with(|| JValue::from(value.clone())).clone()
}

/// A parsed expression body and what it reads.
struct Parsed {
    ast: AstNode,
    reads: syntax::Reads,
    /// The expression as a plain path, which is read straight from the bindings.
    field_path: Option<syntax::FieldPath>,
}

/// How many parsed expressions each thread keeps. A definition has a bounded number of
/// expressions, so this holds every expression of the machines a process typically runs.
const PARSED_CACHE_CAPACITY: usize = 4096;

thread_local! {
    /// Parsed expression bodies: each state runs its expressions many times (Map iterations,
    /// retries, executions), and parsing costs as much as evaluating a simple path.
    static PARSED: RefCell<HashMap<String, Rc<Parsed>>> = RefCell::new(HashMap::new());
}

fn parsed(body: &str) -> Result<Rc<Parsed>, String> {
    PARSED.with(|cache| {
        if let Some(parsed) = cache.borrow().get(body) {
            return Ok(Rc::clone(parsed));
        }
        let ast = jsonata_core::parser::parse(body).map_err(|error| error.to_string())?;
        let parsed = Rc::new(Parsed { reads: syntax::reads(&ast), field_path: syntax::field_path(&ast), ast });
        let mut cache = cache.borrow_mut();
        if cache.len() >= PARSED_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(body.to_owned(), Rc::clone(&parsed));
        Ok(parsed)
    })
}

/// Parses and evaluates one expression body in `scope`.
fn run(body: &str, scope: &Scope) -> Result<Option<Value>, Failure> {
    let parsed = parsed(body).map_err(Failure::Evaluation)?;
    if let Some(value) = parsed.field_path.as_ref().and_then(|path| scope.follow(path)) {
        return Ok(Some(convert::bound_value_to_json(value)));
    }
    let ast = &parsed.ast;
    let mut context = Context::new();
    scope.bind(&parsed.reads, &mut context);
    let options = EvaluatorOptions { timeout_ms: Some(EVALUATION_TIMEOUT_MS), ..EvaluatorOptions::default() };
    let mut evaluator = Evaluator::with_options(context, options);
    extensions::install(&mut evaluator).map_err(|error| Failure::Evaluation(error.message().to_owned()))?;
    // `$` has no meaning in Step Functions' JSONata: the state's data is reached through `$states`.
    let result = contain_panics(|| {
        evaluator
            .evaluate(ast, &JValue::Undefined)
            .map_err(|error| Failure::Evaluation(wording::jsonata_js_wording(error.message(), ast)))
    })?;
    convert::result_to_json(&result).map_err(|convert::NotJson| Failure::UnsupportedResult)
}

/// Runs `evaluation`, turning a panic inside the JSONata library into a failure of the state
/// rather than of the process: an expression is user input.
fn contain_panics<T>(evaluation: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    // Nothing outlives a failed evaluation: the evaluator and its values are dropped with it.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(evaluation)).unwrap_or(Err(Failure::Internal))
}

fn query_error(message: impl Into<String>) -> JsonataError {
    JsonataError { error: QUERY_EVALUATION_ERROR.to_owned(), message: message.into() }
}

#[cfg(test)]
mod tests;
