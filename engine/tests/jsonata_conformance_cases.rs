//! The JSONata evaluator against the AWS-recorded conformance cases whose whole machine is one
//! JSONata state that only evaluates expressions: a Pass state's `Output`, a Fail state's
//! `Error`/`Cause`, a Map state's `Items` over a pass-through processor. The full engine runs
//! every case elsewhere; this test pins the evaluator's share (values, undefined and type
//! failures, causes) without the rest of the interpreter.

use std::path::Path;

use imgflow_engine::jsonata::{Bindings, check_syntax, evaluate_field, is_expression, unexpected_type_error};
use serde_json::{Map, Value, json};

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/asl-conformance/cases");

/// What AWS recorded for one execution.
struct Expected<'a> {
    status: &'a str,
    output: Option<&'a Value>,
    error: Option<&'a str>,
    cause: Option<&'a str>,
}

/// The outcome of a case's single state, in the terms of [`Expected`].
#[derive(Debug, PartialEq)]
enum Outcome {
    Succeeded(Value),
    Failed { error: Option<String>, cause: Option<String> },
}

fn failed(error: Option<&str>, cause: Option<&str>) -> Outcome {
    Outcome::Failed { error: error.map(str::to_owned), cause: cause.map(str::to_owned) }
}

/// Runs the case's single state when it is one this test covers; `None` otherwise.
fn run_single_state(definition: &Value, input: &Value) -> Option<Outcome> {
    let states = definition["States"].as_object()?;
    let (_, state) = states.iter().next().filter(|_| states.len() == 1)?;
    let language = state["QueryLanguage"].as_str().or(definition["QueryLanguage"].as_str());
    if language != Some("JSONata") {
        return None;
    }
    let context = json!({"input": input});
    let variables = Map::new();
    let bindings = Bindings { states: &context, variables: &variables };
    let field = |name: &str| evaluate_field(name, &state[name], &bindings);
    Some(match state["Type"].as_str()? {
        "Pass" if state.get("Output").is_some() => match field("Output") {
            Ok(output) => Outcome::Succeeded(output),
            Err(error) => failed(Some(&error.error), Some(&error.message)),
        },
        "Fail" => {
            let text = |name: &str| match state.get(name) {
                None => Ok(None),
                Some(_) => field(name).map(|value| value.as_str().map(str::to_owned)),
            };
            match (text("Error"), text("Cause")) {
                (Ok(error), Ok(cause)) => Outcome::Failed { error, cause },
                (Err(error), _) | (_, Err(error)) => failed(Some(&error.error), Some(&error.message)),
            }
        }
        "Map" if is_pass_through(&state["ItemProcessor"]) => match field("Items") {
            Ok(items @ Value::Array(_)) => Outcome::Succeeded(items),
            Ok(other) => {
                let expression = state["Items"].as_str().filter(|s| is_expression(s))?;
                let error = unexpected_type_error("Items", expression, "array", &other);
                failed(Some(&error.error), Some(&error.message))
            }
            Err(error) => failed(Some(&error.error), Some(&error.message)),
        },
        _ => return None,
    })
}

/// An item processor that returns each item unchanged: one Pass state with no fields.
fn is_pass_through(processor: &Value) -> bool {
    let Some(states) = processor["States"].as_object() else {
        return false;
    };
    states.len() == 1
        && states.values().all(|state| {
            state["Type"] == "Pass"
                && state.as_object().is_some_and(|fields| fields.keys().all(|key| key == "Type" || key == "End"))
        })
}

/// AWS's comparison rules from the corpus README: exact output, exact error, cause by
/// containment (the engine adds the "An error occurred while executing the state …" opening).
fn matches(outcome: &Outcome, expected: &Expected) -> bool {
    match outcome {
        Outcome::Succeeded(output) => expected.status == "SUCCEEDED" && Some(output) == expected.output,
        Outcome::Failed { error, cause } => {
            expected.status == "FAILED"
                && error.as_deref() == expected.error
                && match (cause, expected.cause) {
                    (Some(cause), Some(recorded)) => recorded.contains(cause.as_str()),
                    (None, None) => true,
                    _ => false,
                }
        }
    }
}

#[test]
fn single_state_jsonata_cases_match_aws() {
    let cases = Path::new(CASES);
    if !cases.is_dir() {
        eprintln!("skipped: {} is absent", cases.display());
        return;
    }
    let mut paths: Vec<_> = std::fs::read_dir(cases)
        .expect("the cases folder is readable")
        .map(|entry| entry.expect("a readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    let (mut covered, mut mismatches) = (0, Vec::new());
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("a readable case");
        let case: Value = serde_json::from_str(&text).expect("a case is JSON");
        if case["queryLanguage"] != "JSONata" {
            continue;
        }
        let Some(outcome) = run_single_state(&case["definition"], &case["input"]) else {
            continue;
        };
        covered += 1;
        let recorded = &case["expected"];
        let expected = Expected {
            status: recorded["status"].as_str().unwrap_or_default(),
            output: recorded.get("output"),
            error: recorded["error"].as_str(),
            cause: recorded["cause"].as_str(),
        };
        if !matches(&outcome, &expected) {
            mismatches.push(format!("{}: got {outcome:?}, AWS recorded {recorded}", case["name"]));
        }
    }
    println!("JSONata single-state conformance cases: {} of {covered} match AWS", covered - mismatches.len());
    assert!(covered >= 10, "only {covered} cases were covered");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Every `{% … %}` string of the JSONata states of `machine` (and of the machines nested in its
/// Map and Parallel states), with its location.
fn jsonata_expressions(machine: &Value, inherited: Option<&str>, location: &str, found: &mut Vec<(String, String)>) {
    let machine_language = machine["QueryLanguage"].as_str().or(inherited);
    let Some(states) = machine["States"].as_object() else {
        return;
    };
    for (name, state) in states {
        let state_location = format!("{location}/States/{name}");
        let language = state["QueryLanguage"].as_str().or(machine_language);
        for (field, value) in state.as_object().into_iter().flatten() {
            match field.as_str() {
                "ItemProcessor" | "Iterator" => {
                    jsonata_expressions(value, machine_language, &format!("{state_location}/{field}"), found)
                }
                "Branches" => {
                    for (index, branch) in value.as_array().into_iter().flatten().enumerate() {
                        jsonata_expressions(
                            branch,
                            machine_language,
                            &format!("{state_location}/Branches/{index}"),
                            found,
                        );
                    }
                }
                _ if language == Some("JSONata") => {
                    expression_strings(value, &format!("{state_location}/{field}"), found)
                }
                _ => {}
            }
        }
    }
}

fn expression_strings(value: &Value, location: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) if is_expression(s) => found.push((location.to_owned(), s.clone())),
        Value::Object(fields) => {
            fields.iter().for_each(|(key, value)| expression_strings(value, &format!("{location}/{key}"), found))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(index, value)| expression_strings(value, &format!("{location}/{index}"), found)),
        _ => {}
    }
}

/// AWS accepted every definition of the corpus, so every expression in it passes validation.
#[test]
fn every_expression_aws_accepted_passes_validation() {
    let cases = Path::new(CASES);
    if !cases.is_dir() {
        eprintln!("skipped: {} is absent", cases.display());
        return;
    }
    let mut expressions = Vec::new();
    for entry in std::fs::read_dir(cases).expect("the cases folder is readable") {
        let path = entry.expect("a readable entry").path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let case: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("a readable case")).expect("a case is JSON");
        jsonata_expressions(&case["definition"], None, &case["name"].to_string(), &mut expressions);
    }
    let refused: Vec<String> = expressions
        .iter()
        .filter_map(|(location, expression)| {
            check_syntax(expression)
                .err()
                .map(|error| format!("{location}: {expression}: {} {}", error.error, error.message))
        })
        .collect();
    println!("JSONata expressions in AWS-accepted definitions: {} checked", expressions.len());
    assert!(expressions.len() >= 40, "only {} expressions found", expressions.len());
    assert!(refused.is_empty(), "{}", refused.join("\n"));
}
