//! Runs every case of the AWS-recorded conformance corpus (`../shared/asl-conformance`) through
//! the engine, with the corpus's Lambda mocks, compares as its README says and prints the pass
//! count. Skipped when the corpus is absent.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use imgflow_engine::{
    Engine, EngineConfig, ExecutionStatus, InstantClock, MemoryStore, TaskError, TaskInvoker, TaskRequest, TaskTarget,
};
use serde_json::{Value, json};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/asl-conformance");

/// The number of cases known to pass; the test fails if fewer do (raise it as the engine improves).
const MIN_PASSING: usize = 202;

/// Placeholder tokens of LocalStack's snapshot normaliser (see the corpus README).
const PLACEHOLDER_TOKENS: &[&str] = &[
    "<uuid:",
    "<ArnPart_0idx>",
    "<ExecArnPart_0idx>",
    "<region>",
    "<partition>",
    "<json-input:",
    "<timestamp>",
    "<request_id>",
    "<lambda_function_name>",
    "111111111111",
];
const PLACEHOLDER_STRINGS: &[&str] =
    &["date", "timestamp", "start-time", "entered-time", "snf_role_arn", "generated-uuid", "RandomNumberGenerated"];

/// The corpus's mocked Lambda functions, by ARN and by function name.
struct Mocks {
    behaviours: BTreeMap<String, String>,
}

impl Mocks {
    fn behaviour(&self, function: &str) -> Option<&str> {
        let name = function.split(':').nth(6).unwrap_or(function);
        self.behaviours.get(function).or_else(|| self.behaviours.get(name)).map(String::as_str)
    }
}

fn python_error(error_type: &str, message: &str) -> TaskError {
    let cause = json!({
        "errorMessage": message,
        "errorType": error_type,
        "requestId": uuid::Uuid::new_v4().to_string(),
        "stackTrace": ["  File \"/var/task/handler.py\", line 2, in handler\n    raise Exception(\"Some exception was raised.\")\n"],
    });
    TaskError::from_lambda_error(&cause)
}

#[async_trait]
impl TaskInvoker for Mocks {
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError> {
        let function = match &request.target {
            TaskTarget::LambdaFunction { function_arn } => function_arn.clone(),
            TaskTarget::LambdaInvoke { function_name } => function_name.clone(),
            TaskTarget::Other { resource } => {
                return Err(TaskError::new("States.Runtime", format!("unsupported resource {resource}")));
            }
        };
        match self.behaviour(&function) {
            Some("identity") => Ok(request.payload),
            Some("raise") => Err(python_error("Exception", "Some exception was raised.")),
            Some("raise_custom") => Err(python_error("CustomException", "Some custom exception was raised.")),
            _ => {
                let arn = if function.starts_with("arn:") {
                    function.clone()
                } else {
                    format!("arn:aws:lambda:us-east-1:111111111111:function:{function}")
                };
                Err(TaskError::new(
                    "Lambda.ResourceNotFoundException",
                    format!(
                        "Function not found: {arn}:$LATEST (Service: AWSLambda; Status Code: 404; Error Code: ResourceNotFoundException; Request ID: {}; Proxy: null)",
                        uuid::Uuid::new_v4()
                    ),
                ))
            }
        }
    }
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| numbers_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| numbers_equal(v, w)))
        }
        _ => a == b,
    }
}

fn is_placeholder(expected: &str) -> bool {
    PLACEHOLDER_TOKENS.iter().any(|t| expected.contains(t)) || PLACEHOLDER_STRINGS.contains(&expected)
}

/// Equality where expected strings holding placeholders match anything.
fn matches_with_placeholders(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(e), _) if is_placeholder(e) => true,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| matches_with_placeholders(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| matches_with_placeholders(v, w)))
        }
        _ => numbers_equal(expected, actual),
    }
}

fn normalise_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cause_matches(expected: &str, actual: Option<&str>, placeholders: bool) -> bool {
    if placeholders && is_placeholder(expected) {
        return true;
    }
    let Some(actual) = actual else {
        return false;
    };
    if normalise_whitespace(actual).contains(&normalise_whitespace(expected)) {
        return true;
    }
    matches!(
        (serde_json::from_str::<Value>(expected), serde_json::from_str::<Value>(actual)),
        (Ok(e), Ok(a)) if numbers_equal(&e, &a)
    )
}

/// The two time-relative inputs are rebuilt from the current time, as their notes ask.
fn regenerate_input(name: &str, input: Value) -> Value {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    match name {
        "wait-timestamppath" => json!({"start_at": now}),
        "wait-timestamppath-000000" => json!({"start_at": format!("{now}.000000")}),
        _ => input,
    }
}

async fn run_case(case: &Value) -> Result<(), String> {
    let name = case["name"].as_str().unwrap_or_default();
    let mocks = Mocks {
        behaviours: case["mocks"]
            .as_object()
            .map(|m| {
                m.iter()
                    .flat_map(|(arn, mock)| {
                        let behaviour = mock["behaviour"].as_str().unwrap_or_default().to_owned();
                        let function = mock["function_name"].as_str().unwrap_or_default().to_owned();
                        [(arn.clone(), behaviour.clone()), (function, behaviour)]
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    let engine = Engine::new(
        Arc::new(MemoryStore::new()),
        Arc::new(mocks),
        Arc::new(InstantClock::new()),
        EngineConfig::default(),
    )
    .map_err(|e| e.to_string())?;
    let machine = engine
        .create_state_machine("conformance", &case["definition"].to_string(), "arn:aws:iam::000000000000:role/x")
        .map_err(|e| format!("definition rejected: {e}"))?;
    let input = regenerate_input(name, case["input"].clone()).to_string();
    let started =
        engine.start_execution(&machine.arn, Some("run".into()), Some(&input)).await.map_err(|e| e.to_string())?;
    let finished =
        tokio::time::timeout(std::time::Duration::from_secs(20), engine.wait_for_completion(&started.execution_arn))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
    let expected = &case["expected"];
    let placeholders = expected["placeholders"].as_bool().unwrap_or(false);
    let status = finished.status.as_str();
    if status != expected["status"].as_str().unwrap_or_default() {
        return Err(format!(
            "status {status} (error {:?}, cause {:?}, output {:?})",
            finished.error, finished.cause, finished.output
        ));
    }
    if finished.status == ExecutionStatus::Succeeded {
        let output: Value =
            serde_json::from_str(finished.output.as_deref().unwrap_or("null")).map_err(|e| e.to_string())?;
        let ok = if placeholders {
            matches_with_placeholders(&expected["output"], &output)
        } else {
            numbers_equal(&expected["output"], &output)
        };
        if !ok {
            return Err(format!("output {output}, expected {}", expected["output"]));
        }
    } else {
        if expected["error"].as_str() != finished.error.as_deref() {
            return Err(format!(
                "error {:?}, expected {:?} (cause {:?})",
                finished.error, expected["error"], finished.cause
            ));
        }
        if let Some(cause) = expected["cause"].as_str()
            && !cause_matches(cause, finished.cause.as_deref(), placeholders)
        {
            return Err(format!("cause {:?}, expected {cause:?}", finished.cause));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_corpus() {
    let cases_dir = Path::new(CORPUS).join("cases");
    if !cases_dir.is_dir() {
        println!("skipped: the conformance corpus is not at {}", cases_dir.display());
        return;
    }
    let mut paths: Vec<_> = std::fs::read_dir(&cases_dir)
        .expect("the cases folder is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let only = std::env::var("CONFORMANCE_ONLY").ok();
    let mut passed = 0;
    let mut failures = Vec::new();
    let mut by_category: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for path in &paths {
        let case: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("case readable")).expect("case is JSON");
        let name = case["name"].as_str().unwrap_or_default().to_owned();
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let category = case["category"].as_str().unwrap_or_default().to_owned();
        let entry = by_category.entry(category).or_default();
        entry.1 += 1;
        match run_case(&case).await {
            Ok(()) => {
                passed += 1;
                entry.0 += 1;
            }
            Err(reason) => failures.push(format!("{name}: {reason}")),
        }
    }
    for failure in &failures {
        println!("FAIL {failure}");
    }
    for (category, (ok, total)) in &by_category {
        println!("{category:>18}: {ok}/{total}");
    }
    let total = passed + failures.len();
    println!("conformance: {passed}/{total} cases pass");
    if only.is_none() {
        assert!(passed >= MIN_PASSING, "only {passed} cases pass, expected at least {MIN_PASSING}");
    }
}
