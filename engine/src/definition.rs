//! The definition model: a parsed, validated Amazon States Language document.
//!
//! Parsing compiles every path, intrinsic call and payload template once, so that running a
//! state does no parsing. Every problem found is reported as a [`Diagnostic`] with a JSON-pointer
//! location; a definition with an error diagnostic does not parse.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::jsonata;
use crate::path::Path;
use crate::retry::{Catcher, Retrier};
use crate::states::{choice, fail, map, parallel, pass, task, wait};
use crate::template::{self, Template};
use crate::validation::{Diagnostic, codes, has_errors, pointer_token};

/// The query language of a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryLanguage {
    JsonPath,
    Jsonata,
}

/// A parsed state machine definition.
#[derive(Debug)]
pub struct Definition {
    pub comment: Option<String>,
    pub query_language: QueryLanguage,
    /// `TimeoutSeconds` of the whole execution.
    pub timeout_seconds: Option<u64>,
    pub machine: Machine,
    /// Whether any field can read the context object; building it per state copies the
    /// execution input, so the executor skips it when nothing reads it.
    pub(crate) uses_context: bool,
    warnings: Vec<Diagnostic>,
}

/// `StartAt` + `States`: the top level, a Parallel branch or a Map's item processor.
#[derive(Debug)]
pub struct Machine {
    pub start_at: String,
    pub states: Vec<State>,
    index: HashMap<String, usize>,
}

impl Machine {
    /// The state called `name`.
    pub fn state(&self, name: &str) -> Option<&State> {
        self.index.get(name).map(|&i| &self.states[i])
    }
}

/// Where a state goes when it succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Next(String),
    End,
}

/// A value given literally, by a path or intrinsic (JSONPath mode) or by a JSONata expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr<T> {
    Literal(T),
    Dynamic(Template),
    Jsonata(String),
}

/// Where the output of a JSONPath field goes: the default `$`, a path, or `null` (discard).
pub type OptionalPath = Option<Path>;

/// One state.
#[derive(Debug)]
pub struct State {
    pub name: String,
    pub query_language: QueryLanguage,
    /// `None` for Choice, Succeed and Fail.
    pub transition: Option<Transition>,
    /// JSONPath `InputPath` (`None` = `null`: the input becomes `{}`).
    pub input_path: OptionalPath,
    /// JSONPath `OutputPath` (`None` = `null`: the output becomes `{}`).
    pub output_path: OptionalPath,
    /// JSONPath `Assign` as a template, or JSONata `Assign` as raw JSON.
    pub assign: Option<Payload>,
    /// JSONata `Output`.
    pub output: Option<Value>,
    pub kind: StateKind,
}

/// A payload in the state's query language.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    JsonPath(Template),
    Jsonata(Value),
}

/// The state-type-specific part of a state.
#[derive(Debug)]
pub enum StateKind {
    Pass(pass::Pass),
    Task(task::Task),
    Choice(choice::Choice),
    Wait(wait::Wait),
    Succeed,
    Fail(fail::Fail),
    Parallel(parallel::Parallel),
    Map(Box<map::Map>),
}

impl StateKind {
    /// The `Type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            StateKind::Pass(_) => "Pass",
            StateKind::Task(_) => "Task",
            StateKind::Choice(_) => "Choice",
            StateKind::Wait(_) => "Wait",
            StateKind::Succeed => "Succeed",
            StateKind::Fail(_) => "Fail",
            StateKind::Parallel(_) => "Parallel",
            StateKind::Map(_) => "Map",
        }
    }
}

/// The shared part of Task, Parallel and Map: result handling and error handling.
#[derive(Debug, Default)]
pub struct ResultHandling {
    /// JSONPath `ResultSelector`.
    pub result_selector: Option<Template>,
    /// JSONPath `ResultPath` (`None` = `null`: the result is discarded).
    pub result_path: OptionalPath,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

impl Definition {
    /// Parses and validates a definition given as JSON text.
    pub fn parse(text: &str) -> Result<Definition, Vec<Diagnostic>> {
        if text.trim().is_empty() {
            return Err(vec![Diagnostic::error(codes::MISSING_DESCRIPTION, "The definition is empty", "")]);
        }
        let value: Value = serde_json::from_str(text).map_err(|e| {
            vec![Diagnostic::error(
                codes::INVALID_JSON_DESCRIPTION,
                format!("The definition is not valid JSON: {e}"),
                "",
            )]
        })?;
        Definition::from_value(&value)
    }

    /// Parses and validates a definition given as a JSON value.
    pub fn from_value(value: &Value) -> Result<Definition, Vec<Diagnostic>> {
        let mut diagnostics = Vec::new();
        let Some(object) = value.as_object() else {
            return Err(vec![Diagnostic::error(
                codes::SCHEMA_VALIDATION_FAILED,
                "The definition must be a JSON object",
                "",
            )]);
        };
        let mut fields = Fields::new(object, String::new(), &mut diagnostics);
        let comment = fields.string("Comment");
        let query_language = fields.query_language().unwrap_or(QueryLanguage::JsonPath);
        let timeout_seconds = fields.positive_integer("TimeoutSeconds");
        fields.string("Version");
        fields.finish(&["StartAt", "States"]);
        let machine = parse_machine(object, "", query_language, &mut diagnostics);
        if has_errors(&diagnostics) {
            return Err(diagnostics);
        }
        let text = value.to_string();
        let uses_context = text.contains("$$") || text.contains("$states.context");
        Ok(Definition { comment, query_language, timeout_seconds, machine, uses_context, warnings: diagnostics })
    }

    /// Warnings found while parsing (errors prevent parsing).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }
}

/// Parses `StartAt` + `States` at `location`, checking transitions and reachability.
pub(crate) fn parse_machine(
    object: &Map<String, Value>,
    location: &str,
    inherited: QueryLanguage,
    diagnostics: &mut Vec<Diagnostic>,
) -> Machine {
    let start_at = match object.get("StartAt") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            diagnostics.push(schema(format!("{location}/StartAt"), "StartAt must be a string"));
            String::new()
        }
        None => {
            diagnostics.push(schema(location.to_owned(), "The field 'StartAt' is required"));
            String::new()
        }
    };
    let mut states = Vec::new();
    match object.get("States") {
        Some(Value::Object(map)) => {
            if map.is_empty() {
                diagnostics.push(schema(format!("{location}/States"), "States must not be empty"));
            }
            for (name, state) in map {
                let here = format!("{location}/States/{}", pointer_token(name));
                if name.is_empty() || name.chars().count() > 80 {
                    diagnostics.push(Diagnostic::error(
                        codes::INVALID_STATE_NAME,
                        format!("The state name '{name}' must be 1 to 80 characters long"),
                        here.clone(),
                    ));
                }
                if let Some(state) = parse_state(name, state, &here, inherited, diagnostics) {
                    states.push(state);
                }
            }
        }
        Some(_) => diagnostics.push(schema(format!("{location}/States"), "States must be an object")),
        None => diagnostics.push(schema(location.to_owned(), "The field 'States' is required")),
    }
    let index: HashMap<String, usize> = states.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect();
    let machine = Machine { start_at, states, index };
    check_graph(&machine, location, diagnostics);
    machine
}

fn check_graph(machine: &Machine, location: &str, diagnostics: &mut Vec<Diagnostic>) {
    if !machine.start_at.is_empty() && machine.state(&machine.start_at).is_none() {
        diagnostics.push(schema(
            format!("{location}/StartAt"),
            format!("Missing 'Next' target: {} (StartAt)", machine.start_at),
        ));
    }
    let mut has_terminal = false;
    for state in &machine.states {
        let here = format!("{location}/States/{}", pointer_token(&state.name));
        for (target, field) in successors(state) {
            if machine.state(target).is_none() {
                diagnostics.push(schema(format!("{here}/{field}"), format!("Missing '{field}' target: {target}")));
            }
        }
        has_terminal |=
            matches!(state.transition, Some(Transition::End) | None) && !matches!(state.kind, StateKind::Choice(_));
    }
    if !machine.states.is_empty() && !has_terminal {
        diagnostics.push(Diagnostic::error(
            codes::MISSING_END_STATE,
            "The workflow does not have a terminal state",
            format!("{location}/States"),
        ));
    }
    // Reachability from StartAt.
    let mut reached = HashSet::new();
    let mut stack = vec![machine.start_at.as_str()];
    while let Some(name) = stack.pop() {
        if !reached.insert(name) {
            continue;
        }
        if let Some(state) = machine.state(name) {
            stack.extend(successors(state).into_iter().map(|(t, _)| t));
        }
    }
    for state in &machine.states {
        if !reached.contains(state.name.as_str()) {
            diagnostics.push(schema(
                format!("{location}/States/{}", pointer_token(&state.name)),
                format!("State '{}' is not reachable", state.name),
            ));
        }
    }
}

/// Every state a state can go to, with the field that names it.
fn successors(state: &State) -> Vec<(&str, &'static str)> {
    let mut out = Vec::new();
    if let Some(Transition::Next(next)) = &state.transition {
        out.push((next.as_str(), "Next"));
    }
    let handling = match &state.kind {
        StateKind::Task(t) => Some(&t.handling),
        StateKind::Parallel(p) => Some(&p.handling),
        StateKind::Map(m) => Some(&m.handling),
        StateKind::Choice(c) => {
            out.extend(c.rules.iter().map(|r| (r.next.as_str(), "Next")));
            if let Some(default) = &c.default {
                out.push((default.as_str(), "Default"));
            }
            None
        }
        _ => None,
    };
    if let Some(handling) = handling {
        out.extend(handling.catch.iter().map(|c| (c.next.as_str(), "Next")));
    }
    out
}

fn schema(location: String, message: impl Into<String>) -> Diagnostic {
    Diagnostic::error(codes::SCHEMA_VALIDATION_FAILED, message, location)
}

fn parse_state(
    name: &str,
    value: &Value,
    location: &str,
    inherited: QueryLanguage,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<State> {
    let Some(object) = value.as_object() else {
        diagnostics.push(schema(location.to_owned(), "A state must be a JSON object"));
        return None;
    };
    let mut fields = Fields::new(object, location.to_owned(), diagnostics);
    let type_name = fields.required_string("Type")?;
    fields.string("Comment");
    let query_language = fields.query_language().unwrap_or(inherited);
    if inherited == QueryLanguage::Jsonata && query_language == QueryLanguage::JsonPath {
        fields.error("QueryLanguage", "A state cannot use JSONPath when the state machine uses JSONata");
    }
    fields.query_language = query_language;
    let jsonpath = query_language == QueryLanguage::JsonPath;

    let has_transition = !matches!(type_name.as_str(), "Choice" | "Succeed" | "Fail");
    let transition = if has_transition {
        let next = fields.string("Next");
        let end = fields.boolean("End").unwrap_or(false);
        match (next, end) {
            (Some(_), true) => {
                fields.error("End", "A state cannot have both 'Next' and 'End'");
                None
            }
            (Some(next), false) => Some(Transition::Next(next)),
            (None, true) => Some(Transition::End),
            (None, false) => {
                fields.error_here("A state must have either 'Next' or 'End: true'");
                None
            }
        }
    } else {
        None
    };
    let (input_path, output_path) = if jsonpath && type_name != "Fail" {
        (fields.optional_path("InputPath"), fields.optional_path("OutputPath"))
    } else {
        (Some(Path::whole()), Some(Path::whole()))
    };
    let assign = if matches!(type_name.as_str(), "Succeed" | "Fail") { None } else { fields.assign("Assign") };
    let output = if !jsonpath && type_name != "Fail" { fields.jsonata_template("Output") } else { None };

    let kind = match type_name.as_str() {
        "Pass" => StateKind::Pass(pass::Pass::parse(&mut fields)),
        "Task" => StateKind::Task(task::Task::parse(&mut fields)),
        "Choice" => StateKind::Choice(choice::Choice::parse(&mut fields)),
        "Wait" => StateKind::Wait(wait::Wait::parse(&mut fields)),
        "Succeed" => StateKind::Succeed,
        "Fail" => StateKind::Fail(fail::Fail::parse(&mut fields)),
        "Parallel" => StateKind::Parallel(parallel::Parallel::parse(&mut fields)),
        "Map" => StateKind::Map(Box::new(map::Map::parse(&mut fields))),
        other => {
            fields.error("Type", format!("Unknown state type '{other}'"));
            return None;
        }
    };
    fields.finish(&[]);
    Some(State { name: name.to_owned(), query_language, transition, input_path, output_path, assign, output, kind })
}

/// Reads the fields of one JSON object, reporting type errors and (at the end) unknown fields.
pub(crate) struct Fields<'a> {
    object: &'a Map<String, Value>,
    pub(crate) location: String,
    pub(crate) diagnostics: &'a mut Vec<Diagnostic>,
    used: HashSet<&'a str>,
    /// The query language of the state being read.
    pub(crate) query_language: QueryLanguage,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(object: &'a Map<String, Value>, location: String, diagnostics: &'a mut Vec<Diagnostic>) -> Self {
        Fields { object, location, diagnostics, used: HashSet::new(), query_language: QueryLanguage::JsonPath }
    }

    pub(crate) fn is_jsonata(&self) -> bool {
        self.query_language == QueryLanguage::Jsonata
    }

    pub(crate) fn at(&self, key: &str) -> String {
        format!("{}/{}", self.location, pointer_token(key))
    }

    pub(crate) fn error(&mut self, key: &str, message: impl Into<String>) {
        let location = self.at(key);
        self.diagnostics.push(schema(location, message));
    }

    pub(crate) fn error_here(&mut self, message: impl Into<String>) {
        let location = self.location.clone();
        self.diagnostics.push(schema(location, message));
    }

    /// Marks a field as known and returns it.
    pub(crate) fn get(&mut self, key: &str) -> Option<&'a Value> {
        let (k, v) = self.object.get_key_value(key)?;
        self.used.insert(k.as_str());
        Some(v)
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.object.contains_key(key)
    }

    pub(crate) fn string(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.error(key, format!("The field '{key}' must be a string"));
                None
            }
        }
    }

    pub(crate) fn required_string(&mut self, key: &str) -> Option<String> {
        if !self.has(key) {
            self.error_here(format!("The field '{key}' is required"));
            return None;
        }
        self.string(key)
    }

    pub(crate) fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.error(key, format!("The field '{key}' must be a boolean"));
                None
            }
        }
    }

    pub(crate) fn positive_integer(&mut self, key: &str) -> Option<u64> {
        match self.get(key)? {
            Value::Number(n) if n.as_u64().is_some_and(|n| n > 0) => n.as_u64(),
            _ => {
                self.error(key, format!("The field '{key}' must be a positive integer"));
                None
            }
        }
    }

    pub(crate) fn number(&mut self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::Number(n) => n.as_f64(),
            _ => {
                self.error(key, format!("The field '{key}' must be a number"));
                None
            }
        }
    }

    pub(crate) fn query_language(&mut self) -> Option<QueryLanguage> {
        match self.string("QueryLanguage")?.as_str() {
            "JSONPath" => Some(QueryLanguage::JsonPath),
            "JSONata" => Some(QueryLanguage::Jsonata),
            other => {
                self.error("QueryLanguage", format!("QueryLanguage must be 'JSONPath' or 'JSONata', not '{other}'"));
                None
            }
        }
    }

    /// A JSONPath field: absent → `$`, `null` → `None`.
    pub(crate) fn optional_path(&mut self, key: &str) -> OptionalPath {
        match self.get(key) {
            None => Some(Path::whole()),
            Some(Value::Null) => None,
            Some(Value::String(s)) => self.parse_path(key, s).or_else(|| Some(Path::whole())),
            Some(_) => {
                self.error(key, format!("The field '{key}' must be a string or null"));
                Some(Path::whole())
            }
        }
    }

    /// A `…Path` field holding a path (or, where AWS allows it, an intrinsic call).
    pub(crate) fn dynamic(&mut self, key: &str) -> Option<Template> {
        match self.get(key)? {
            Value::String(s) => {
                let location = self.at(key);
                Some(template::compile_expression(key, s, &location, self.diagnostics))
            }
            _ => {
                self.error(key, format!("The field '{key}' must be a string"));
                None
            }
        }
    }

    pub(crate) fn parse_path(&mut self, key: &str, s: &str) -> Option<Path> {
        match Path::parse(s) {
            Ok(path) => Some(path),
            Err(e) => {
                self.error(key, format!("The value for the field '{key}' must be a valid JSONPath: {e}"));
                None
            }
        }
    }

    /// A JSONPath template field (Parameters, ResultSelector, ItemSelector).
    pub(crate) fn template(&mut self, key: &str) -> Option<Template> {
        let value = self.get(key)?;
        if !value.is_object() {
            self.error(key, format!("The field '{key}' must be an object"));
            return None;
        }
        let location = self.at(key);
        template::warn_missing_dollar(value, &location, self.diagnostics);
        Some(Template::compile(value, &location, self.diagnostics))
    }

    /// A JSONata template field (Arguments, Output, ItemSelector in JSONata mode).
    pub(crate) fn jsonata_template(&mut self, key: &str) -> Option<Value> {
        let value = self.get(key)?;
        let location = self.at(key);
        check_jsonata_strings(value, &location, self.diagnostics);
        Some(value.clone())
    }

    /// `Assign` in the state's query language.
    pub(crate) fn assign(&mut self, key: &str) -> Option<Payload> {
        if !self.get(key).is_some_and(Value::is_object) {
            if self.has(key) {
                self.error(key, format!("The field '{key}' must be an object"));
            }
            return None;
        }
        if self.is_jsonata() {
            self.jsonata_template(key).map(Payload::Jsonata)
        } else {
            self.template(key).map(Payload::JsonPath)
        }
    }

    /// A value that is a literal of type `T`, a `…Path` field, or a JSONata string.
    pub(crate) fn expr<T>(
        &mut self,
        key: &str,
        path_key: Option<&str>,
        literal: impl FnOnce(&Value) -> Option<T>,
        expected: &str,
    ) -> Option<Expr<T>> {
        if let Some(path_key) = path_key
            && self.has(path_key)
        {
            if self.has(key) {
                self.error(path_key, format!("Only one of '{key}' and '{path_key}' is allowed"));
            }
            if self.is_jsonata() {
                self.error(path_key, format!("The field '{path_key}' is not supported in JSONata mode"));
            }
            return self.dynamic(path_key).map(Expr::Dynamic);
        }
        let value = self.get(key)?;
        if self.is_jsonata()
            && let Value::String(s) = value
            && jsonata::is_expression(s)
        {
            let location = self.at(key);
            check_jsonata_strings(value, &location, self.diagnostics);
            return Some(Expr::Jsonata(s.clone()));
        }
        match literal(value) {
            Some(v) => Some(Expr::Literal(v)),
            None => {
                self.error(key, format!("The field '{key}' must be {expected}"));
                None
            }
        }
    }

    /// Reports every field not read by the parser and not in `extra`.
    pub(crate) fn finish(&mut self, extra: &[&str]) {
        let unknown: Vec<&String> =
            self.object.keys().filter(|k| !self.used.contains(k.as_str()) && !extra.contains(&k.as_str())).collect();
        for key in unknown {
            let location = self.at(key);
            let mode = match self.query_language {
                QueryLanguage::JsonPath => "JSONPath",
                QueryLanguage::Jsonata => "JSONata",
            };
            self.diagnostics
                .push(schema(location, format!("The field '{key}' is not supported here (query language {mode})")));
        }
    }
}

fn check_jsonata_strings(value: &Value, location: &str, diagnostics: &mut Vec<Diagnostic>) {
    match value {
        Value::String(s) if jsonata::is_expression(s) => {
            if let Err(e) = jsonata::check_syntax(s) {
                diagnostics.push(schema(location.to_owned(), format!("Invalid JSONata expression {s}: {}", e.message)));
            }
        }
        Value::Object(fields) => {
            for (k, v) in fields {
                check_jsonata_strings(v, &format!("{location}/{}", pointer_token(k)), diagnostics);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_jsonata_strings(v, &format!("{location}/{i}"), diagnostics);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes_and_locations(text: &str) -> Vec<(String, String)> {
        crate::validation::validate(text).into_iter().map(|d| (d.code, d.location)).collect()
    }

    #[test]
    fn a_simple_definition_parses() {
        let definition =
            Definition::parse(r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"B"},"B":{"Type":"Succeed"}}}"#)
                .unwrap();
        assert_eq!(definition.machine.start_at, "A");
        assert_eq!(definition.machine.states.len(), 2);
    }

    #[test]
    fn transitions_and_reachability_are_checked() {
        let found = codes_and_locations(
            r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"Nope"},"B":{"Type":"Pass","End":true,"Next":"A"}}}"#,
        );
        assert!(found.contains(&("SCHEMA_VALIDATION_FAILED".into(), "/States/A/Next".into())));
        assert!(found.contains(&("SCHEMA_VALIDATION_FAILED".into(), "/States/B/End".into())));
        assert!(found.contains(&("SCHEMA_VALIDATION_FAILED".into(), "/States/B".into())));
    }

    #[test]
    fn fields_are_checked_per_query_language() {
        let found = codes_and_locations(
            r#"{"QueryLanguage":"JSONata","StartAt":"A","States":{"A":{"Type":"Pass","InputPath":"$.x","End":true}}}"#,
        );
        assert_eq!(found, vec![("SCHEMA_VALIDATION_FAILED".into(), "/States/A/InputPath".into())]);
        let found =
            codes_and_locations(r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Result":1,"Bogus":2,"End":true}}}"#);
        assert_eq!(found, vec![("SCHEMA_VALIDATION_FAILED".into(), "/States/A/Bogus".into())]);
    }

    #[test]
    fn states_all_must_be_alone_and_last() {
        let found = codes_and_locations(
            r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:1:function:f","End":true,
                "Retry":[{"ErrorEquals":["States.ALL","X"]}],
                "Catch":[{"ErrorEquals":["States.ALL"],"Next":"T"},{"ErrorEquals":["Y"],"Next":"T"}]}}}"#,
        );
        assert!(found.contains(&("SCHEMA_VALIDATION_FAILED".into(), "/States/T/Retry/0/ErrorEquals".into())));
        assert!(found.contains(&("SCHEMA_VALIDATION_FAILED".into(), "/States/T/Catch".into())));
    }

    #[test]
    fn bad_paths_and_intrinsics_are_located() {
        let found = codes_and_locations(
            r#"{"StartAt":"P","States":{"P":{"Type":"Pass","InputPath":"$.a[","Parameters":{"x.$":"States.Format("},"End":true}}}"#,
        );
        assert!(found.contains(&("SCHEMA_VALIDATION_FAILED".into(), "/States/P/InputPath".into())));
        assert!(found.contains(&("SCHEMA_VALIDATION_FAILED".into(), "/States/P/Parameters/x.$".into())));
    }

    #[test]
    fn bad_json_is_reported() {
        assert_eq!(codes_and_locations("{")[0].0, "INVALID_JSON_DESCRIPTION");
        assert_eq!(codes_and_locations("")[0].0, "MISSING_DESCRIPTION");
    }
}
