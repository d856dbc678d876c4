//! `imgflow asl …`: validate and run ASL definitions with the engine.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use async_trait::async_trait;
use clap::{Args, Subcommand};
use imgflow_engine::{
    Engine, EngineConfig, EngineError, ExecutionStatus, MemoryStore, RealClock, Severity, TaskError, TaskInvoker,
    TaskRequest, TaskTarget,
};
use serde_json::{Map, Value, json};

/// Exit code for SUCCEEDED.
const EXIT_SUCCEEDED: u8 = 0;
/// Exit code for FAILED, TIMED_OUT or ABORTED.
const EXIT_FAILED: u8 = 1;
/// Exit code for an invalid definition or bad usage.
const EXIT_INVALID: u8 = 2;

#[derive(Subcommand)]
pub enum AslCommand {
    /// Validate a definition; prints diagnostics, exits 0 when valid and 2 when not.
    Validate(ValidateArgs),
    /// Run a definition locally and print {"status", "output"} or {"status", "error", "cause"}.
    Run(RunArgs),
}

#[derive(Args)]
pub struct ValidateArgs {
    /// The ASL definition (JSON).
    file: PathBuf,
    /// Replace `${KEY}` placeholders before validating, as DefinitionSubstitutions do.
    #[arg(long = "sub", value_name = "KEY=VALUE")]
    substitutions: Vec<String>,
}

#[derive(Args)]
pub struct RunArgs {
    /// The ASL definition (JSON).
    file: PathBuf,
    /// Execution input: JSON text, or @FILE to read it from a file.
    #[arg(long, default_value = "{}")]
    input: String,
    /// Run a Lambda function as a shell command: payload on stdin, result on stdout. Repeatable.
    #[arg(long = "lambda", value_name = "ARN_OR_NAME=COMMAND")]
    lambdas: Vec<String>,
    /// Answer Task states from an AWS Step Functions Local MockConfigFile.
    #[arg(long, requires = "test_case")]
    mock_config: Option<PathBuf>,
    /// The test case of the mock config to use.
    #[arg(long, requires = "mock_config")]
    test_case: Option<String>,
    /// Also print the execution history.
    #[arg(long)]
    history: bool,
    /// Replace `${KEY}` placeholders before running, as DefinitionSubstitutions do.
    #[arg(long = "sub", value_name = "KEY=VALUE")]
    substitutions: Vec<String>,
}

pub async fn run(command: AslCommand) -> anyhow::Result<u8> {
    match command {
        AslCommand::Validate(args) => validate(args),
        AslCommand::Run(args) => run_definition(args).await,
    }
}

fn read_definition(file: &PathBuf, substitutions: &[String]) -> anyhow::Result<String> {
    let mut text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    for substitution in substitutions {
        let (key, value) =
            substitution.split_once('=').with_context(|| format!("--sub expects KEY=VALUE, got '{substitution}'"))?;
        text = text.replace(&format!("${{{key}}}"), value);
    }
    Ok(text)
}

fn validate(args: ValidateArgs) -> anyhow::Result<u8> {
    let text = read_definition(&args.file, &args.substitutions)?;
    let diagnostics = imgflow_engine::validate(&text);
    for diagnostic in &diagnostics {
        println!("{diagnostic}");
    }
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        Ok(EXIT_INVALID)
    } else {
        println!("valid");
        Ok(EXIT_SUCCEEDED)
    }
}

async fn run_definition(args: RunArgs) -> anyhow::Result<u8> {
    let text = read_definition(&args.file, &args.substitutions)?;
    let input = match args.input.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?,
        None => args.input.clone(),
    };
    let mut commands = HashMap::new();
    for lambda in &args.lambdas {
        let (function, command) =
            lambda.split_once('=').with_context(|| format!("--lambda expects ARN_OR_NAME=COMMAND, got '{lambda}'"))?;
        commands.insert(function.to_owned(), command.to_owned());
    }
    let mocks = match (&args.mock_config, &args.test_case) {
        (Some(path), Some(test_case)) => Some(MockConfig::load(path, test_case)?),
        _ => None,
    };
    let invoker = CliInvoker { commands, mocks, invocations: Mutex::new(HashMap::new()) };
    let engine =
        Engine::new(Arc::new(MemoryStore::new()), Arc::new(invoker), Arc::new(RealClock), EngineConfig::default())?;
    let name = args.file.file_stem().and_then(|s| s.to_str()).filter(|s| imgflow_engine::engine::is_valid_name(s));
    let machine = match engine.create_state_machine(
        name.unwrap_or("local"),
        &text,
        "arn:aws:iam::123456789012:role/imgflow-local",
    ) {
        Ok(machine) => machine,
        Err(EngineError::InvalidDefinition(diagnostics)) => {
            for diagnostic in &diagnostics {
                eprintln!("{diagnostic}");
            }
            return Ok(EXIT_INVALID);
        }
        Err(error) => return Err(error.into()),
    };
    let started = match engine.start_execution(&machine.arn, None, Some(&input)).await {
        Ok(started) => started,
        Err(error @ EngineError::InvalidExecutionInput(_)) => {
            eprintln!("error: {error}");
            return Ok(EXIT_INVALID);
        }
        Err(error) => return Err(error.into()),
    };
    let execution = engine.wait_for_completion(&started.execution_arn).await?;
    let mut result = Map::new();
    result.insert("status".into(), json!(execution.status.as_str()));
    if execution.status == ExecutionStatus::Succeeded {
        let output: Value = serde_json::from_str(execution.output.as_deref().unwrap_or("null"))?;
        result.insert("output".into(), output);
    } else {
        result.insert("error".into(), json!(execution.error));
        result.insert("cause".into(), json!(execution.cause));
    }
    if args.history {
        let history = engine.get_execution_history(&started.execution_arn, None, None, false)?;
        result.insert("history".into(), serde_json::to_value(&history.events)?);
    }
    println!("{}", Value::Object(result));
    Ok(if execution.status == ExecutionStatus::Succeeded { EXIT_SUCCEEDED } else { EXIT_FAILED })
}

/// The function a Lambda task calls, as an ARN or a name.
fn function_of(target: &TaskTarget) -> Option<&str> {
    match target {
        TaskTarget::LambdaFunction { function_arn } => Some(function_arn),
        TaskTarget::LambdaInvoke { function_name } => Some(function_name),
        TaskTarget::Other { .. } => None,
    }
}

/// The name part of a function ARN (`arn:aws:lambda:r:a:function:NAME[:qualifier]`), or the name.
fn function_name(function: &str) -> &str {
    function.split(':').nth(6).unwrap_or(function)
}

/// Answers tasks from the mock config first, then from `--lambda` commands.
struct CliInvoker {
    commands: HashMap<String, String>,
    mocks: Option<MockConfig>,
    /// How many times each state has been invoked (mocked responses are indexed by it).
    invocations: Mutex<HashMap<String, usize>>,
}

#[async_trait]
impl TaskInvoker for CliInvoker {
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError> {
        if let Some(mocks) = &self.mocks
            && let Some(responses) = mocks.responses_for(&request.state_name)
        {
            let index = {
                let mut invocations = self.invocations.lock().unwrap_or_else(|p| p.into_inner());
                let count = invocations.entry(request.state_name.clone()).or_insert(0);
                *count += 1;
                *count - 1
            };
            return mocks.respond(responses, index, &request);
        }
        let command = function_of(&request.target)
            .and_then(|function| self.commands.get(function).or_else(|| self.commands.get(function_name(function))));
        match command {
            Some(command) => run_command(command, &request.payload).await,
            None => Err(TaskError::new(
                "States.Runtime",
                format!(
                    "No --lambda command or mocked response for the resource '{}' (state '{}')",
                    request.resource, request.state_name
                ),
            )),
        }
    }
}

/// Runs `command` through the shell with the payload on stdin (on a blocking thread).
async fn run_command(command: &str, payload: &Value) -> Result<Value, TaskError> {
    let command = command.to_owned();
    let payload = payload.to_string();
    tokio::task::spawn_blocking(move || run_command_blocking(&command, &payload))
        .await
        .map_err(|e| TaskError::new("Lambda.ServiceException", e.to_string()))?
}

fn run_command_blocking(command: &str, payload: &str) -> Result<Value, TaskError> {
    let failure = |cause: String| TaskError::new("Lambda.ServiceException", cause);
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| failure(format!("cannot run '{command}': {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input closes the pipe early; that is not an error.
        let _ = stdin.write_all(payload.as_bytes());
    }
    let output = child.wait_with_output().map_err(|e| failure(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let parsed: Option<Value> = serde_json::from_str(stdout.trim()).ok();
    if output.status.success() {
        return parsed.ok_or_else(|| {
            TaskError::new("Lambda.Unknown", format!("The command's output is not JSON: {}", stdout.trim()))
        });
    }
    match parsed {
        Some(error) if error.get("errorType").is_some() => Err(TaskError::from_lambda_error(&error)),
        _ => Err(TaskError::new(
            "Lambda.Unknown",
            format!("The command exited with {} and printed: {}", output.status, stdout.trim()),
        )),
    }
}

/// An AWS Step Functions Local MockConfigFile, narrowed to one test case.
struct MockConfig {
    /// State name → mocked response name.
    states: HashMap<String, String>,
    /// Mocked response name → its responses object (`"0"`, `"1-2"`, … → Return/Throw).
    responses: Map<String, Value>,
}

impl MockConfig {
    fn load(path: &PathBuf, test_case: &str) -> anyhow::Result<MockConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let config: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
        let machines = config["StateMachines"].as_object().context("the mock config has no StateMachines")?;
        let case = machines
            .values()
            .find_map(|machine| machine["TestCases"].get(test_case))
            .with_context(|| format!("no test case '{test_case}' in the mock config"))?;
        let states = case
            .as_object()
            .context("a test case must map state names to mocked responses")?
            .iter()
            .map(|(state, response)| {
                response
                    .as_str()
                    .map(|r| (state.clone(), r.to_owned()))
                    .with_context(|| format!("the mocked response of '{state}' must be a name"))
            })
            .collect::<anyhow::Result<HashMap<_, _>>>()?;
        let responses = config["MockedResponses"].as_object().cloned().unwrap_or_default();
        for (state, response) in &states {
            if !responses.contains_key(response) {
                bail!("state '{state}' uses the mocked response '{response}', which is not defined");
            }
        }
        Ok(MockConfig { states, responses })
    }

    fn responses_for(&self, state: &str) -> Option<&Value> {
        self.states.get(state).and_then(|name| self.responses.get(name))
    }

    /// The response for the `index`-th invocation: keys are `"N"` or `"N-M"` ranges.
    fn respond(&self, responses: &Value, index: usize, request: &TaskRequest) -> Result<Value, TaskError> {
        let entry = responses.as_object().and_then(|entries| {
            entries.iter().find_map(|(key, value)| {
                let (from, to) = key.split_once('-').unwrap_or((key, key));
                let (from, to) = (from.trim().parse::<usize>().ok()?, to.trim().parse::<usize>().ok()?);
                (from..=to).contains(&index).then_some(value)
            })
        });
        let Some(entry) = entry else {
            return Err(TaskError::new(
                "States.Runtime",
                format!("The mocked responses of state '{}' have no entry for invocation {index}", request.state_name),
            ));
        };
        if let Some(thrown) = entry.get("Throw") {
            return Err(TaskError::new(
                thrown["Error"].as_str().unwrap_or("States.TaskFailed"),
                thrown["Cause"].as_str().unwrap_or_default(),
            ));
        }
        let returned = entry.get("Return").cloned().unwrap_or(Value::Null);
        // A mocked lambda:invoke response is the whole service response; the engine adds the
        // wrapper itself, so only its Payload is the function's result.
        Ok(match (&request.target, returned) {
            (TaskTarget::LambdaInvoke { .. }, Value::Object(mut response)) if response.contains_key("Payload") => {
                response.remove("Payload").unwrap_or(Value::Null)
            }
            (_, returned) => returned,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(state: &str, target: TaskTarget) -> TaskRequest {
        TaskRequest {
            target,
            resource: "arn:aws:states:::lambda:invoke".into(),
            payload: json!({"x": 1}),
            execution_arn: "arn:e".into(),
            state_name: state.into(),
            attempt: 0,
        }
    }

    #[test]
    fn mocked_responses_follow_their_invocation_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mocks.json");
        std::fs::write(
            &path,
            json!({
                "StateMachines": {"M": {"TestCases": {"Flaky": {"Resize": "ResizeFlaky"}}}},
                "MockedResponses": {"ResizeFlaky": {
                    "0-1": {"Throw": {"Error": "TransientError", "Cause": "down"}},
                    "2": {"Return": {"StatusCode": 200, "Payload": {"ok": true}}}
                }}
            })
            .to_string(),
        )
        .unwrap();
        let mocks = MockConfig::load(&path, "Flaky").unwrap();
        let responses = mocks.responses_for("Resize").unwrap();
        let invoke = request("Resize", TaskTarget::LambdaInvoke { function_name: "resize".into() });
        assert_eq!(mocks.respond(responses, 0, &invoke).unwrap_err().error, "TransientError");
        assert_eq!(mocks.respond(responses, 1, &invoke).unwrap_err().cause, "down");
        assert_eq!(mocks.respond(responses, 2, &invoke).unwrap(), json!({"ok": true}));
        assert!(mocks.respond(responses, 3, &invoke).is_err());
        assert!(mocks.responses_for("Other").is_none());
        assert!(MockConfig::load(&path, "Missing").is_err());
    }

    #[test]
    fn commands_answer_like_lambda_functions() {
        assert_eq!(run_command_blocking("cat", r#"{"a":1}"#).unwrap(), json!({"a": 1}));
        let error =
            run_command_blocking(r#"echo '{"errorType":"InvalidImage","errorMessage":"not an image"}'; exit 1"#, "{}")
                .unwrap_err();
        assert_eq!(error.error, "InvalidImage");
        assert!(error.cause.contains("not an image"));
        assert_eq!(run_command_blocking("exit 3", "{}").unwrap_err().error, "Lambda.Unknown");
        assert_eq!(run_command_blocking("echo nope", "{}").unwrap_err().error, "Lambda.Unknown");
    }

    #[test]
    fn function_names_come_from_arns() {
        assert_eq!(function_name("arn:aws:lambda:us-east-1:1:function:resize"), "resize");
        assert_eq!(function_name("arn:aws:lambda:us-east-1:1:function:resize:live"), "resize");
        assert_eq!(function_name("resize"), "resize");
    }
}
