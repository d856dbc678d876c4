//! JSONPath-mode data flow: payload templates (`Parameters`, `ResultSelector`, `ItemSelector`,
//! `Assign`, with `.$` keys holding paths or intrinsic calls) and path lookups against `$`, `$$`
//! and workflow variables.

use serde_json::{Map, Value};

use crate::error::{Failure, names};
use crate::intrinsics::{self, Call, IntrinsicError, PathResolver};
use crate::path::{Path, PathLookupError, Root};
use crate::validation::{Diagnostic, codes, pointer_token};

/// Workflow variables visible to a state.
pub type Variables = Map<String, Value>;

/// What paths can see while a template is evaluated.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// What `$` is (state input, effective input, result or error output, depending on the field).
    pub data: &'a Value,
    /// The context object `$$`.
    pub context: &'a Value,
    /// Visible workflow variables (`$name`).
    pub variables: &'a Variables,
}

impl Scope<'_> {
    /// Resolves a path against the right root.
    pub fn lookup(&self, path: &Path) -> Result<Value, PathLookupError> {
        match path.root() {
            Root::Data => path.select(self.data),
            Root::Context => path.select(self.context),
            Root::Variable(name) => match self.variables.get(name) {
                Some(value) => path.select(value),
                None => Err(PathLookupError::UndefinedVariable(name.clone())),
            },
        }
    }

    /// Resolves a path for a field, with AWS's message when nothing is found.
    pub fn lookup_field(&self, path: &Path, field: &str) -> Result<Value, Failure> {
        self.lookup(path).map_err(|error| self.not_found(path, field, &error))
    }

    fn not_found(&self, path: &Path, field: &str, error: &PathLookupError) -> Failure {
        match error {
            PathLookupError::UndefinedVariable(name) => Failure::runtime(format!(
                "The JSONPath '{path}' specified for the field '{field}' references an undefined variable '{name}'"
            )),
            PathLookupError::Missing { .. } => {
                let searched = match path.root() {
                    Root::Context => self.context,
                    _ => self.data,
                };
                Failure::runtime(format!(
                    "The JSONPath '{path}' specified for the field '{field}' could not be found in the input '{searched}'"
                ))
            }
        }
    }
}

/// A compiled payload template.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// A value without any `.$` key inside: used as is.
    Constant(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    /// `"key.$": "$.path"`; `field` is the key as written, for error messages.
    Path {
        field: String,
        path: Path,
    },
    /// `"key.$": "States.Fn(…)"`.
    Call {
        field: String,
        call: Call,
    },
}

impl Template {
    /// Compiles a template, reporting bad paths and intrinsic calls at `location`.
    pub fn compile(value: &Value, location: &str, diagnostics: &mut Vec<Diagnostic>) -> Template {
        match value {
            Value::Object(fields) => {
                if !contains_dynamic_key(value) {
                    return Template::Constant(value.clone());
                }
                let mut out = Vec::with_capacity(fields.len());
                for (key, field_value) in fields {
                    let here = format!("{location}/{}", pointer_token(key));
                    match key.strip_suffix(".$") {
                        Some(name) => {
                            let compiled = match field_value {
                                Value::String(expression) => compile_expression(key, expression, &here, diagnostics),
                                _ => {
                                    diagnostics.push(Diagnostic::error(
                                        codes::SCHEMA_VALIDATION_FAILED,
                                        format!(
                                            "The value of the field '{key}' must be a JSONPath or an intrinsic function"
                                        ),
                                        here,
                                    ));
                                    Template::Constant(Value::Null)
                                }
                            };
                            out.push((name.to_owned(), compiled));
                        }
                        None => out.push((key.clone(), Template::compile(field_value, &here, diagnostics))),
                    }
                }
                Template::Object(out)
            }
            Value::Array(items) if contains_dynamic_key(value) => Template::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Template::compile(item, &format!("{location}/{i}"), diagnostics))
                    .collect(),
            ),
            other => Template::Constant(other.clone()),
        }
    }

    /// Produces the payload.
    pub fn evaluate(&self, scope: &Scope) -> Result<Value, Failure> {
        match self {
            Template::Constant(value) => Ok(value.clone()),
            Template::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (key, template) in fields {
                    out.insert(key.clone(), template.evaluate(scope)?);
                }
                Ok(Value::Object(out))
            }
            Template::Array(items) => {
                items.iter().map(|t| t.evaluate(scope)).collect::<Result<Vec<_>, _>>().map(Value::Array)
            }
            Template::Path { field, path } => scope.lookup_field(path, field),
            Template::Call { field, call } => evaluate_call(call, field, scope),
        }
    }
}

/// Compiles a `.$` value: an intrinsic call or a path.
pub fn compile_expression(
    field: &str,
    expression: &str,
    location: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Template {
    if intrinsics::looks_like_call(expression) {
        match Call::parse(expression) {
            Ok(call) => Template::Call { field: field.to_owned(), call },
            Err(error) => {
                diagnostics.push(Diagnostic::error(codes::SCHEMA_VALIDATION_FAILED, error.to_string(), location));
                Template::Constant(Value::Null)
            }
        }
    } else {
        match Path::parse(expression) {
            Ok(path) => Template::Path { field: field.to_owned(), path },
            Err(error) => {
                diagnostics.push(Diagnostic::error(
                    codes::SCHEMA_VALIDATION_FAILED,
                    format!("The value for the field '{field}' must be a valid JSONPath or a valid intrinsic function call: {error}"),
                    location,
                ));
                Template::Constant(Value::Null)
            }
        }
    }
}

struct ScopeResolver<'s, 'a> {
    scope: &'s Scope<'a>,
    field: &'s str,
}

impl PathResolver for ScopeResolver<'_, '_> {
    fn resolve(&self, path: &Path) -> Result<Value, IntrinsicError> {
        self.scope
            .lookup_field(path, self.field)
            .map_err(|failure| IntrinsicError::Path(failure.cause.unwrap_or_default()))
    }
}

/// Evaluates an intrinsic call for a field.
pub fn evaluate_call(call: &Call, field: &str, scope: &Scope) -> Result<Value, Failure> {
    call.evaluate(&ScopeResolver { scope, field }).map_err(|error| match error {
        IntrinsicError::Path(cause) => Failure::runtime(cause),
        IntrinsicError::Failure(cause) => Failure::about_state(names::INTRINSIC_FAILURE, cause),
    })
}

/// Warns (NO_DOLLAR) about keys without `.$` whose value looks like a path or an intrinsic call:
/// they are passed on literally, which is rarely what was meant.
pub(crate) fn warn_missing_dollar(value: &Value, location: &str, diagnostics: &mut Vec<Diagnostic>) {
    match value {
        Value::Object(fields) => {
            for (key, field_value) in fields {
                let here = format!("{location}/{}", pointer_token(key));
                match field_value {
                    Value::String(s)
                        if !key.ends_with(".$")
                            && (s.starts_with("$.") || s.starts_with("$$.") || intrinsics::looks_like_call(s)) =>
                    {
                        diagnostics.push(Diagnostic::warning(
                            codes::NO_DOLLAR,
                            format!("The value of '{key}' looks like a JSONPath or an intrinsic function, but the key does not end with '.$': it is passed on literally"),
                            here,
                        ));
                    }
                    other => warn_missing_dollar(other, &here, diagnostics),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                warn_missing_dollar(item, &format!("{location}/{i}"), diagnostics);
            }
        }
        _ => {}
    }
}

fn contains_dynamic_key(value: &Value) -> bool {
    match value {
        Value::Object(fields) => fields.iter().any(|(k, v)| k.ends_with(".$") || contains_dynamic_key(v)),
        Value::Array(items) => items.iter().any(contains_dynamic_key),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(template: Value, data: Value) -> Result<Value, Failure> {
        let mut diagnostics = Vec::new();
        let compiled = Template::compile(&template, "/Parameters", &mut diagnostics);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let context = json!({"State": {"Name": "S"}});
        let mut variables = Variables::new();
        variables.insert("v".into(), json!({"x": 7}));
        compiled.evaluate(&Scope { data: &data, context: &context, variables: &variables })
    }

    #[test]
    fn dynamic_keys_are_resolved_at_every_depth() {
        let out = run(
            json!({"a.$": "$.x", "b": {"c.$": "$$.State.Name", "d": [{"e.$": "$v.x"}]}, "f": 1,
                   "g.$": "States.Array($.x, 2)"}),
            json!({"x": 1}),
        )
        .unwrap();
        assert_eq!(out, json!({"a": 1, "b": {"c": "S", "d": [{"e": 7}]}, "f": 1, "g": [1, 2]}));
    }

    #[test]
    fn a_missing_path_names_the_field() {
        let failure = run(json!({"value.$": "$.nope"}), json!({"int": 0})).unwrap_err();
        assert_eq!(failure.error.as_deref(), Some("States.Runtime"));
        assert_eq!(
            failure.cause.as_deref(),
            Some(
                "The JSONPath '$.nope' specified for the field 'value.$' could not be found in the input '{\"int\":0}'"
            )
        );
    }

    #[test]
    fn literal_paths_without_dollar_keys_are_warned_about() {
        let mut diagnostics = Vec::new();
        warn_missing_dollar(
            &json!({"a": "$.x", "b": {"c": "States.Array(1)"}, "d.$": "$.y", "e": "x"}),
            "/P",
            &mut diagnostics,
        );
        let locations: Vec<&str> = diagnostics.iter().map(|d| d.location.as_str()).collect();
        assert_eq!(locations, vec!["/P/a", "/P/b/c"]);
        assert!(diagnostics.iter().all(|d| d.code == "NO_DOLLAR"));
    }

    #[test]
    fn bad_expressions_are_diagnosed() {
        let mut diagnostics = Vec::new();
        Template::compile(&json!({"a.$": "States.Nope()", "b.$": "$.["}), "/P", &mut diagnostics);
        assert_eq!(diagnostics.len(), 2);
        assert_eq!(diagnostics[0].location, "/P/a.$");
    }
}
