//! The Step Functions-compatible endpoint: the AWS JSON 1.0 protocol (`X-Amz-Target:
//! AWSStepFunctions.<Operation>`) in front of the ASL engine, so that aws-sdk-sfn and
//! `aws stepfunctions … --endpoint-url` work against the twin unchanged.
//!
//! The server routes a request here with [`handle`] and copies the [`SfnResponse`] into the HTTP
//! response. Request and response shapes follow the Step Functions API reference: camelCase
//! fields, dates as epoch seconds (JSON numbers with fractional milliseconds), errors as
//! `{"__type": "<Code>", "message": "…"}` with AWS's codes.

use chrono::{DateTime, Utc};
use imgflow_engine::{
    Engine, EngineError, ExecutionRecord, ExecutionStatus, HistoryEvent, Severity, StateMachineRecord,
    validation::has_errors,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// The Content-Type of every request and response of the protocol.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// The prefix of `X-Amz-Target` that names a Step Functions operation.
pub const TARGET_PREFIX: &str = "AWSStepFunctions.";

/// One answer of the endpoint, for the server to copy into its HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfnResponse {
    /// 200, or the HTTP status AWS gives the error (400 client errors, 500 internal).
    pub status: u16,
    /// The JSON body.
    pub body: Vec<u8>,
    /// The error code (`ExecutionDoesNotExist`, …), also sent as the `x-amzn-ErrorType` header.
    pub error_type: Option<String>,
}

/// An API error: AWS's code, HTTP status and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
struct ApiError {
    code: &'static str,
    status: u16,
    message: String,
}

impl ApiError {
    fn client(code: &'static str, message: impl Into<String>) -> Self {
        ApiError { code, status: 400, message: message.into() }
    }

    fn validation(message: impl Into<String>) -> Self {
        ApiError::client("ValidationException", message)
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        let status = if matches!(error, EngineError::Store(_)) { 500 } else { 400 };
        ApiError { code: error.code(), status, message: error.to_string() }
    }
}

/// Handles one AWS JSON 1.0 request: `operation` is what follows `AWSStepFunctions.` in
/// `X-Amz-Target`, `body` the raw request body.
pub async fn handle(engine: &Engine, operation: &str, body: &[u8]) -> SfnResponse {
    match dispatch(engine, operation, body).await {
        Ok(answer) => SfnResponse { status: 200, body: answer.to_string().into_bytes(), error_type: None },
        Err(error) => {
            if error.status >= 500 {
                tracing::error!(operation, %error, "Step Functions request failed");
            }
            SfnResponse {
                status: error.status,
                body: json!({"__type": error.code, "message": error.message}).to_string().into_bytes(),
                error_type: Some(error.code.to_owned()),
            }
        }
    }
}

async fn dispatch(engine: &Engine, operation: &str, body: &[u8]) -> Result<Value, ApiError> {
    match operation {
        "CreateStateMachine" => create_state_machine(engine, parse(body)?),
        "DeleteStateMachine" => delete_state_machine(engine, parse(body)?),
        "DescribeStateMachine" => describe_state_machine(engine, parse(body)?),
        "ListStateMachines" => list_state_machines(engine, parse(body)?),
        "ValidateStateMachineDefinition" => validate_definition(parse(body)?),
        "StartExecution" => start_execution(engine, parse(body)?).await,
        "DescribeExecution" => describe_execution(engine, parse(body)?),
        "ListExecutions" => list_executions(engine, parse(body)?),
        "GetExecutionHistory" => get_execution_history(engine, parse(body)?),
        "StopExecution" => stop_execution(engine, parse(body)?).await,
        "RedriveExecution" => redrive_execution(engine, parse(body)?).await,
        other => Err(ApiError::client(
            "UnknownOperationException",
            format!("The operation '{other}' is not supported by this endpoint"),
        )),
    }
}

/// Parses a request body; an empty body is an empty object, as the SDKs send for no parameters.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| ApiError::validation(format!("The request body is not valid: {e}")))
}

/// Dates as the protocol sends them: epoch seconds with milliseconds.
fn epoch_seconds(date: &DateTime<Utc>) -> Value {
    json!(date.timestamp_millis() as f64 / 1000.0)
}

/// `maxResults` is 0–1000 (0 means the default page size).
fn max_results(value: Option<i64>) -> Result<Option<usize>, ApiError> {
    match value {
        None => Ok(None),
        Some(n) if (0..=1000).contains(&n) => Ok(Some(n as usize)),
        Some(n) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: \
             Member must have value between 0 and 1000"
        ))),
    }
}

/// The ARN resource types this endpoint addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArnKind {
    StateMachine,
    Execution,
}

/// Checks the shape of a Step Functions ARN:
/// `arn:<partition>:states:<region>:<account>:stateMachine:<name>` or
/// `…:execution:<machine>:<name>`.
fn check_arn(arn: &str, kind: ArnKind) -> Result<(), ApiError> {
    let parts: Vec<&str> = arn.split(':').collect();
    let shaped = match kind {
        ArnKind::StateMachine => parts.len() == 7 && parts[5] == "stateMachine",
        ArnKind::Execution => parts.len() == 8 && parts[5] == "execution",
    };
    if shaped && parts[0] == "arn" && parts[2] == "states" && parts[6..].iter().all(|p| !p.is_empty()) {
        Ok(())
    } else {
        Err(ApiError::client("InvalidArn", format!("Invalid Arn: '{arn}'")))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateStateMachineRequest {
    name: String,
    definition: String,
    role_arn: String,
    #[serde(rename = "type")]
    machine_type: Option<String>,
}

fn create_state_machine(engine: &Engine, request: CreateStateMachineRequest) -> Result<Value, ApiError> {
    if let Some(other) = request.machine_type.as_deref().filter(|t| *t != "STANDARD") {
        return Err(ApiError::validation(format!(
            "State machine type '{other}' is not supported: the local twin runs STANDARD state machines"
        )));
    }
    let record = engine.create_state_machine(&request.name, &request.definition, &request.role_arn)?;
    Ok(json!({"stateMachineArn": record.arn, "creationDate": epoch_seconds(&record.creation_date)}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateMachineRequest {
    state_machine_arn: String,
}

fn delete_state_machine(engine: &Engine, request: StateMachineRequest) -> Result<Value, ApiError> {
    check_arn(&request.state_machine_arn, ArnKind::StateMachine)?;
    match engine.delete_state_machine(&request.state_machine_arn) {
        // AWS answers DeleteStateMachine for an unknown machine with success.
        Ok(()) | Err(EngineError::StateMachineDoesNotExist(_)) => Ok(json!({})),
        Err(other) => Err(other.into()),
    }
}

fn describe_state_machine(engine: &Engine, request: StateMachineRequest) -> Result<Value, ApiError> {
    check_arn(&request.state_machine_arn, ArnKind::StateMachine)?;
    let record = engine
        .state_machine(&request.state_machine_arn)
        .ok_or_else(|| EngineError::StateMachineDoesNotExist(request.state_machine_arn.clone()))?;
    Ok(json!({
        "stateMachineArn": record.arn,
        "name": record.name,
        "status": "ACTIVE",
        "definition": record.definition,
        "roleArn": record.role_arn,
        "type": "STANDARD",
        "creationDate": epoch_seconds(&record.creation_date),
        "loggingConfiguration": {"level": "OFF", "includeExecutionData": false},
        "tracingConfiguration": {"enabled": false},
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListStateMachinesRequest {
    max_results: Option<i64>,
    next_token: Option<String>,
}

fn list_state_machines(engine: &Engine, request: ListStateMachinesRequest) -> Result<Value, ApiError> {
    let machines = engine.list_state_machines();
    let (page, next_token) = page_of(&machines, max_results(request.max_results)?, request.next_token.as_deref())?;
    let items: Vec<Value> = page.iter().map(state_machine_item).collect();
    Ok(with_token(json!({"stateMachines": items}), next_token))
}

fn state_machine_item(record: &StateMachineRecord) -> Value {
    json!({
        "stateMachineArn": record.arn,
        "name": record.name,
        "type": "STANDARD",
        "creationDate": epoch_seconds(&record.creation_date),
    })
}

/// One page of an in-memory list; the token is the offset of the next page, as the engine's.
fn page_of<'a, T>(
    items: &'a [T],
    max_results: Option<usize>,
    next_token: Option<&str>,
) -> Result<(&'a [T], Option<String>), ApiError> {
    let start = match next_token {
        None => 0,
        Some(token) => token
            .parse::<usize>()
            .ok()
            .filter(|start| *start <= items.len())
            .ok_or_else(|| EngineError::InvalidToken(token.to_owned()))?,
    };
    let size = match max_results {
        None | Some(0) => 100,
        Some(n) => n,
    };
    let end = start.saturating_add(size).min(items.len());
    Ok((&items[start..end], (end < items.len()).then(|| end.to_string())))
}

fn with_token(mut answer: Value, next_token: Option<String>) -> Value {
    if let Some(token) = next_token {
        answer["nextToken"] = Value::String(token);
    }
    answer
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValidateDefinitionRequest {
    definition: String,
    #[serde(rename = "type")]
    machine_type: Option<String>,
    severity: Option<String>,
    max_results: Option<i64>,
}

fn validate_definition(request: ValidateDefinitionRequest) -> Result<Value, ApiError> {
    if let Some(other) = request.machine_type.as_deref().filter(|t| !matches!(*t, "STANDARD" | "EXPRESS")) {
        return Err(ApiError::validation(format!("Invalid state machine type '{other}'")));
    }
    // AWS returns errors only unless asked for warnings too.
    let include_warnings = match request.severity.as_deref() {
        None | Some("ERROR") => false,
        Some("WARNING") => true,
        Some(other) => return Err(ApiError::validation(format!("Invalid severity '{other}'"))),
    };
    let limit = match max_results(request.max_results)? {
        None | Some(0) => 100,
        Some(n) => n,
    };
    let diagnostics = imgflow_engine::validate(&request.definition);
    let result = if has_errors(&diagnostics) { "FAIL" } else { "OK" };
    let shown: Vec<_> = diagnostics.iter().filter(|d| include_warnings || d.severity == Severity::Error).collect();
    let truncated = shown.len() > limit;
    let items: Vec<Value> = shown
        .iter()
        .take(limit)
        .map(|d| json!({"severity": d.severity, "code": d.code, "message": d.message, "location": d.location}))
        .collect();
    Ok(json!({"result": result, "diagnostics": items, "truncated": truncated}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartExecutionRequest {
    state_machine_arn: String,
    name: Option<String>,
    input: Option<String>,
}

async fn start_execution(engine: &Engine, request: StartExecutionRequest) -> Result<Value, ApiError> {
    check_arn(&request.state_machine_arn, ArnKind::StateMachine)?;
    let started = engine.start_execution(&request.state_machine_arn, request.name, request.input.as_deref()).await?;
    Ok(json!({"executionArn": started.execution_arn, "startDate": epoch_seconds(&started.start_date)}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionRequest {
    execution_arn: String,
}

fn describe_execution(engine: &Engine, request: ExecutionRequest) -> Result<Value, ApiError> {
    check_arn(&request.execution_arn, ArnKind::Execution)?;
    let record = engine.describe_execution(&request.execution_arn)?;
    let mut answer = execution_item(&record);
    answer["input"] = Value::String(record.input.clone());
    answer["inputDetails"] = json!({"included": true});
    if let Some(output) = &record.output {
        answer["output"] = Value::String(output.clone());
        answer["outputDetails"] = json!({"included": true});
    }
    if let Some(error) = &record.error {
        answer["error"] = Value::String(error.clone());
    }
    if let Some(cause) = &record.cause {
        answer["cause"] = Value::String(cause.clone());
    }
    answer["redriveStatus"] = Value::String(redrive_status(&record).to_owned());
    Ok(answer)
}

/// DescribeExecution's `redriveStatus`: only ended, unsuccessful Standard executions can be
/// redriven (the engine applies the remaining rules when RedriveExecution is called).
fn redrive_status(record: &ExecutionRecord) -> &'static str {
    match record.status {
        ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted => "REDRIVABLE",
        _ => "NOT_REDRIVABLE",
    }
}

/// The fields ListExecutions and DescribeExecution share.
fn execution_item(record: &ExecutionRecord) -> Value {
    let mut item = json!({
        "executionArn": record.execution_arn,
        "stateMachineArn": record.state_machine_arn,
        "name": record.name,
        "status": record.status.as_str(),
        "startDate": epoch_seconds(&record.start_date),
        "redriveCount": record.redrive_count,
    });
    if let Some(stop) = &record.stop_date {
        item["stopDate"] = epoch_seconds(stop);
    }
    if let Some(redrive) = &record.redrive_date {
        item["redriveDate"] = epoch_seconds(redrive);
    }
    item
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListExecutionsRequest {
    state_machine_arn: Option<String>,
    status_filter: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

fn list_executions(engine: &Engine, request: ListExecutionsRequest) -> Result<Value, ApiError> {
    let arn = request
        .state_machine_arn
        .ok_or_else(|| ApiError::validation("Must provide a StateMachine ARN or a MapRun ARN"))?;
    check_arn(&arn, ArnKind::StateMachine)?;
    let status = match request.status_filter.as_deref() {
        None => None,
        Some(text) => Some(
            ExecutionStatus::parse(text)
                .ok_or_else(|| ApiError::validation(format!("Invalid status filter '{text}'")))?,
        ),
    };
    let page =
        engine.list_executions(&arn, status, max_results(request.max_results)?, request.next_token.as_deref())?;
    let items: Vec<Value> = page.executions.iter().map(execution_item).collect();
    Ok(with_token(json!({"executions": items}), page.next_token))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetExecutionHistoryRequest {
    execution_arn: String,
    max_results: Option<i64>,
    next_token: Option<String>,
    #[serde(default)]
    reverse_order: bool,
    include_execution_data: Option<bool>,
}

fn get_execution_history(engine: &Engine, request: GetExecutionHistoryRequest) -> Result<Value, ApiError> {
    check_arn(&request.execution_arn, ArnKind::Execution)?;
    let page = engine.get_execution_history(
        &request.execution_arn,
        max_results(request.max_results)?,
        request.next_token.as_deref(),
        request.reverse_order,
    )?;
    let include_data = request.include_execution_data.unwrap_or(true);
    let events: Vec<Value> = page.events.iter().map(|event| history_event(event, include_data)).collect();
    Ok(with_token(json!({"events": events}), page.next_token))
}

/// One history event as GetExecutionHistory shows it. Without execution data, the input and
/// output payloads are left out of the details, as AWS does.
fn history_event(event: &HistoryEvent, include_data: bool) -> Value {
    let mut item = Map::new();
    item.insert("timestamp".into(), epoch_seconds(&event.timestamp));
    item.insert("type".into(), Value::String(event.event_type.as_str().to_owned()));
    item.insert("id".into(), json!(event.id));
    item.insert("previousEventId".into(), json!(event.previous_event_id));
    for (key, details) in &event.details {
        let mut details = details.clone();
        if !include_data && let Value::Object(fields) = &mut details {
            for payload in ["input", "output"] {
                fields.remove(payload);
                if let Some(Value::Object(meta)) = fields.get_mut(&format!("{payload}Details")) {
                    meta.insert("truncated".into(), Value::Bool(false));
                }
            }
        }
        item.insert(key.clone(), details);
    }
    Value::Object(item)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopExecutionRequest {
    execution_arn: String,
    error: Option<String>,
    cause: Option<String>,
}

async fn stop_execution(engine: &Engine, request: StopExecutionRequest) -> Result<Value, ApiError> {
    check_arn(&request.execution_arn, ArnKind::Execution)?;
    let stop_date = engine.stop_execution(&request.execution_arn, request.error, request.cause).await?;
    Ok(json!({"stopDate": epoch_seconds(&stop_date)}))
}

async fn redrive_execution(engine: &Engine, request: ExecutionRequest) -> Result<Value, ApiError> {
    check_arn(&request.execution_arn, ArnKind::Execution)?;
    let redrive_date = engine.redrive_execution(&request.execution_arn).await?;
    Ok(json!({"redriveDate": epoch_seconds(&redrive_date)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_are_checked_by_shape() {
        let machine = "arn:aws:states:us-east-1:123456789012:stateMachine:m";
        let execution = "arn:aws:states:us-east-1:123456789012:execution:m:e";
        assert!(check_arn(machine, ArnKind::StateMachine).is_ok());
        assert!(check_arn(execution, ArnKind::Execution).is_ok());
        assert_eq!(check_arn(execution, ArnKind::StateMachine).unwrap_err().code, "InvalidArn");
        assert_eq!(check_arn("nonsense", ArnKind::Execution).unwrap_err().code, "InvalidArn");
        assert_eq!(
            check_arn("arn:aws:states:us-east-1:1:execution:m:", ArnKind::Execution).unwrap_err().code,
            "InvalidArn"
        );
    }

    #[test]
    fn pages_carry_the_offset_of_the_next_one() {
        let items = [1, 2, 3, 4, 5];
        let (first, token) = page_of(&items, Some(2), None).unwrap();
        assert_eq!((first, token.as_deref()), (&[1, 2][..], Some("2")));
        let (last, token) = page_of(&items, Some(4), Some("2")).unwrap();
        assert_eq!((last, token), (&[3, 4, 5][..], None));
        assert_eq!(page_of(&items, None, Some("x")).unwrap_err().code, "InvalidToken");
        assert_eq!(page_of(&items, None, Some("9")).unwrap_err().code, "InvalidToken");
    }

    #[test]
    fn dates_are_epoch_seconds_with_milliseconds() {
        let date = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        assert_eq!(epoch_seconds(&date).to_string(), "1700000000.123");
    }

    #[test]
    fn history_without_data_drops_payloads() {
        let event = HistoryEvent {
            timestamp: DateTime::from_timestamp_millis(0).unwrap(),
            event_type: imgflow_engine::EventType::new("ExecutionStarted"),
            id: 1,
            previous_event_id: 0,
            details: serde_json::from_value(json!({
                "executionStartedEventDetails": {"input": "{}", "inputDetails": {"truncated": false}, "roleArn": "r"}
            }))
            .unwrap(),
        };
        let shown = history_event(&event, false);
        assert_eq!(
            shown["executionStartedEventDetails"],
            json!({"inputDetails": {"truncated": false}, "roleArn": "r"})
        );
        assert_eq!(history_event(&event, true)["executionStartedEventDetails"]["input"], "{}");
    }
}
