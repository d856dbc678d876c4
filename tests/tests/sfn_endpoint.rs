//! The Step Functions-compatible endpoint of the twin, driven by the real clients: aws-sdk-sfn
//! for every operation and error, raw HTTP for what the SDK cannot send, and `aws stepfunctions`
//! (awscli, found through `$IMGFLOW_AWS_CLI` or `PATH`) when it is installed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType, ValidateStateMachineDefinitionResultCode};
use imgflow_engine::{Engine, EngineConfig, MemoryStore, NoTasks, RealClock};
use imgflow_tests::sfn_server::SfnServer;
use serde_json::{Value, json};

const ROLE: &str = "arn:aws:iam::123456789012:role/imgflow-tests";

/// Four states then Succeed: Pass, Choice, Pass, Pass.
const PASS_CHOICE: &str = r#"{
  "StartAt": "A",
  "States": {
    "A": {"Type": "Pass", "Parameters": {"x.$": "$.x"}, "Next": "C"},
    "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericGreaterThan": 0, "Next": "B"}], "Default": "N"},
    "B": {"Type": "Pass", "Result": "positive", "ResultPath": "$.sign", "Next": "S"},
    "N": {"Type": "Fail", "Error": "NotPositive", "Cause": "x must be positive"},
    "S": {"Type": "Succeed"}
  }
}"#;

/// Waits long enough to be stopped while running.
const WAITING: &str = r#"{
  "StartAt": "Hold",
  "States": {
    "Hold": {"Type": "Wait", "Seconds": 600, "Next": "Done"},
    "Done": {"Type": "Succeed"}
  }
}"#;

async fn start_server() -> (SfnServer, aws_sdk_sfn::Client) {
    let engine =
        Engine::new(Arc::new(MemoryStore::new()), Arc::new(NoTasks), Arc::new(RealClock), EngineConfig::default())
            .expect("the engine starts");
    let server = SfnServer::start(engine).await.expect("the endpoint starts");
    let client = server.client();
    (server, client)
}

async fn create(client: &aws_sdk_sfn::Client, name: &str, definition: &str) -> String {
    client
        .create_state_machine()
        .name(name)
        .definition(definition)
        .role_arn(ROLE)
        .send()
        .await
        .expect("CreateStateMachine")
        .state_machine_arn
}

async fn wait_until_done(
    client: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    for _ in 0..500 {
        let described =
            client.describe_execution().execution_arn(execution_arn).send().await.expect("DescribeExecution");
        if described.status != ExecutionStatus::Running {
            return described;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{execution_arn} still runs after 5 s");
}

async fn wait_until_state_entered(client: &aws_sdk_sfn::Client, execution_arn: &str, event: HistoryEventType) {
    for _ in 0..500 {
        let history = client.get_execution_history().execution_arn(execution_arn).send().await.expect("history");
        if history.events.iter().any(|e| e.r#type == event) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{execution_arn} never logged {event:?}");
}

#[tokio::test]
async fn state_machines_are_created_described_listed_and_deleted() {
    let (_server, client) = start_server().await;
    let arn = create(&client, "first", PASS_CHOICE).await;
    assert_eq!(arn, "arn:aws:states:us-east-1:123456789012:stateMachine:first");
    // The same definition again is idempotent; another one under the same name is refused.
    assert_eq!(create(&client, "first", PASS_CHOICE).await, arn);
    let err = client.create_state_machine().name("first").definition(WAITING).role_arn(ROLE).send().await.unwrap_err();
    assert!(err.into_service_error().is_state_machine_already_exists());

    let described = client.describe_state_machine().state_machine_arn(&arn).send().await.expect("DescribeStateMachine");
    assert_eq!(described.name, "first");
    assert_eq!(described.definition, PASS_CHOICE);
    assert_eq!(described.role_arn, ROLE);
    assert_eq!(described.r#type, aws_sdk_sfn::types::StateMachineType::Standard);
    assert_eq!(described.status, Some(aws_sdk_sfn::types::StateMachineStatus::Active));
    let age = chrono::Utc::now().timestamp_millis() as f64 / 1000.0 - described.creation_date.as_secs_f64();
    assert!((0.0..60.0).contains(&age), "creationDate is {age} s old");

    create(&client, "second", WAITING).await;
    create(&client, "third", WAITING).await;
    let first_page = client.list_state_machines().max_results(2).send().await.expect("ListStateMachines");
    let names: Vec<_> = first_page.state_machines.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);
    let token = first_page.next_token.expect("a second page");
    let second_page = client.list_state_machines().max_results(2).next_token(token).send().await.expect("page 2");
    let names: Vec<_> = second_page.state_machines.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["third"]);
    assert_eq!(second_page.next_token, None);
    let all = client.list_state_machines().into_paginator().items().send().collect::<Result<Vec<_>, _>>().await;
    assert_eq!(all.expect("paginated list").len(), 3);

    client.delete_state_machine().state_machine_arn(&arn).send().await.expect("DeleteStateMachine");
    let err = client.describe_state_machine().state_machine_arn(&arn).send().await.unwrap_err();
    assert!(err.into_service_error().is_state_machine_does_not_exist());
    let err = client.start_execution().state_machine_arn(&arn).send().await.unwrap_err();
    assert!(err.into_service_error().is_state_machine_does_not_exist());
}

#[tokio::test]
async fn bad_state_machines_names_and_arns_are_refused_with_aws_errors() {
    let (_server, client) = start_server().await;
    let err = client
        .create_state_machine()
        .name("broken")
        .definition(r#"{"StartAt": "Nowhere", "States": {"A": {"Type": "Succeed"}}}"#)
        .role_arn(ROLE)
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert!(err.is_invalid_definition(), "{err:?}");
    assert!(err.meta().message().is_some_and(|m| m.contains("Nowhere")), "{err:?}");

    let err = client.create_state_machine().name("has space").definition(PASS_CHOICE).role_arn(ROLE).send().await;
    assert!(err.unwrap_err().into_service_error().is_invalid_name());

    let err = client.describe_state_machine().state_machine_arn("not-an-arn").send().await.unwrap_err();
    assert!(err.into_service_error().is_invalid_arn());
    let err = client.describe_execution().execution_arn("arn:aws:states:us-east-1:1:stateMachine:m").send().await;
    assert!(err.unwrap_err().into_service_error().is_invalid_arn());
}

#[tokio::test]
async fn definitions_are_validated_with_diagnostics() {
    let (_server, client) = start_server().await;
    let ok = client.validate_state_machine_definition().definition(PASS_CHOICE).send().await.expect("validate");
    assert_eq!(ok.result, ValidateStateMachineDefinitionResultCode::Ok);
    assert!(ok.diagnostics.is_empty());

    let fail = client
        .validate_state_machine_definition()
        .definition(r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Missing"}}}"#)
        .send()
        .await
        .expect("validate");
    assert_eq!(fail.result, ValidateStateMachineDefinitionResultCode::Fail);
    let diagnostic = fail.diagnostics.first().expect("a diagnostic");
    assert_eq!(diagnostic.severity, aws_sdk_sfn::types::ValidateStateMachineDefinitionSeverity::Error);
    assert!(!diagnostic.code.is_empty());
    assert!(diagnostic.message.contains("Missing"), "{diagnostic:?}");
    assert!(diagnostic.location.as_deref().is_some_and(|l| l.starts_with("/States/A")), "{diagnostic:?}");

    let not_json = client.validate_state_machine_definition().definition("{").send().await.expect("validate");
    assert_eq!(not_json.result, ValidateStateMachineDefinitionResultCode::Fail);
    assert_eq!(not_json.diagnostics[0].code, "INVALID_JSON_DESCRIPTION");
}

#[tokio::test]
async fn executions_start_run_and_describe_like_aws() {
    let (_server, client) = start_server().await;
    let machine = create(&client, "pass-choice", PASS_CHOICE).await;
    let started = client
        .start_execution()
        .state_machine_arn(&machine)
        .name("one")
        .input(r#"{"x": 3}"#)
        .send()
        .await
        .expect("StartExecution");
    assert_eq!(started.execution_arn, "arn:aws:states:us-east-1:123456789012:execution:pass-choice:one");

    let done = wait_until_done(&client, &started.execution_arn).await;
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.name.as_deref(), Some("one"));
    assert_eq!(done.state_machine_arn, machine);
    assert_eq!(done.input.as_deref(), Some(r#"{"x": 3}"#));
    assert!(done.input_details.as_ref().is_some_and(|d| d.included));
    assert!(done.output_details.as_ref().is_some_and(|d| d.included));
    let output: Value = serde_json::from_str(done.output.as_deref().expect("an output")).expect("JSON output");
    assert_eq!(output, json!({"x": 3, "sign": "positive"}));
    assert_eq!(done.start_date, started.start_date);
    assert!(done.stop_date.expect("a stop date").as_secs_f64() >= done.start_date.as_secs_f64());
    assert_eq!(done.redrive_count, Some(0));
    assert_eq!(done.redrive_status, Some(aws_sdk_sfn::types::ExecutionRedriveStatus::NotRedrivable));
    assert!(done.error.is_none() && done.cause.is_none());

    let failed =
        client.start_execution().state_machine_arn(&machine).input(r#"{"x": -1}"#).send().await.expect("start");
    let failed = wait_until_done(&client, &failed.execution_arn).await;
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("NotPositive"));
    assert_eq!(failed.cause.as_deref(), Some("x must be positive"));
    assert!(failed.output.is_none());

    // A name cannot be reused with another input.
    let err = client.start_execution().state_machine_arn(&machine).name("one").input(r#"{"x": 4}"#).send().await;
    assert!(err.unwrap_err().into_service_error().is_execution_already_exists());
    let err = client.start_execution().state_machine_arn(&machine).input("not json").send().await;
    assert!(err.unwrap_err().into_service_error().is_invalid_execution_input());
    let err = client.start_execution().state_machine_arn(&machine).name("a/b").send().await;
    assert!(err.unwrap_err().into_service_error().is_invalid_name());
    let missing = "arn:aws:states:us-east-1:123456789012:execution:pass-choice:missing";
    let err = client.describe_execution().execution_arn(missing).send().await.unwrap_err();
    assert!(err.into_service_error().is_execution_does_not_exist());
}

#[tokio::test]
async fn the_same_name_and_input_while_running_is_the_same_execution() {
    let (_server, client) = start_server().await;
    let machine = create(&client, "waiting", WAITING).await;
    let first =
        client.start_execution().state_machine_arn(&machine).name("once").input("{}").send().await.expect("start");
    let again =
        client.start_execution().state_machine_arn(&machine).name("once").input("{}").send().await.expect("again");
    assert_eq!(first.execution_arn, again.execution_arn);
    assert_eq!(first.start_date, again.start_date);
    let other = client.start_execution().state_machine_arn(&machine).name("once").input(r#"{"a":1}"#).send().await;
    assert!(other.unwrap_err().into_service_error().is_execution_already_exists());
}

#[tokio::test]
async fn executions_are_listed_newest_first_filtered_and_paginated() {
    let (_server, client) = start_server().await;
    let machine = create(&client, "pass-choice", PASS_CHOICE).await;
    let mut started = Vec::new();
    for i in 0..5 {
        let x = if i % 2 == 0 { 1 } else { -1 };
        let execution = client
            .start_execution()
            .state_machine_arn(&machine)
            .name(format!("run-{i}"))
            .input(json!({"x": x}).to_string())
            .send()
            .await
            .expect("start");
        wait_until_done(&client, &execution.execution_arn).await;
        started.push(execution.execution_arn);
        // Distinct start dates, so that "newest first" has one answer.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_executions()
            .state_machine_arn(&machine)
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .expect("ListExecutions");
        assert!(page.executions.len() <= 2);
        listed.extend(page.executions.iter().map(|e| e.execution_arn.clone()));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    let newest_first: Vec<_> = started.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first);

    let succeeded = client
        .list_executions()
        .state_machine_arn(&machine)
        .status_filter(ExecutionStatus::Succeeded)
        .send()
        .await
        .expect("filtered");
    let names: Vec<_> = succeeded.executions.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["run-4", "run-2", "run-0"]);
    let item = &succeeded.executions[0];
    assert_eq!(item.status, ExecutionStatus::Succeeded);
    assert_eq!(item.state_machine_arn, machine);
    assert!(item.stop_date.is_some());
    assert_eq!(item.redrive_count, Some(0));

    let failed = client.list_executions().state_machine_arn(&machine).status_filter(ExecutionStatus::Failed).send();
    assert_eq!(failed.await.expect("filtered").executions.len(), 2);

    let err = client.list_executions().state_machine_arn(&machine).next_token("garbage").send().await;
    assert!(err.unwrap_err().into_service_error().is_invalid_token());
    let unknown = "arn:aws:states:us-east-1:123456789012:stateMachine:unknown";
    let err = client.list_executions().state_machine_arn(unknown).send().await;
    assert!(err.unwrap_err().into_service_error().is_state_machine_does_not_exist());
    // Neither a state machine nor a map run: the request itself is invalid.
    let err = client.list_executions().send().await.unwrap_err().into_service_error();
    assert!(err.meta().code() == Some("ValidationException"), "{err:?}");
}

#[tokio::test]
async fn history_pages_forwards_and_backwards_with_or_without_data() {
    let (_server, client) = start_server().await;
    let machine = create(&client, "pass-choice", PASS_CHOICE).await;
    let execution = client.start_execution().state_machine_arn(&machine).input(r#"{"x": 2}"#).send().await.unwrap();
    wait_until_done(&client, &execution.execution_arn).await;

    let full = client.get_execution_history().execution_arn(&execution.execution_arn).send().await.expect("history");
    let types: Vec<_> = full.events.iter().map(|e| e.r#type.clone()).collect();
    use HistoryEventType as T;
    assert_eq!(
        types,
        [
            T::ExecutionStarted,
            T::PassStateEntered,
            T::PassStateExited,
            T::ChoiceStateEntered,
            T::ChoiceStateExited,
            T::PassStateEntered,
            T::PassStateExited,
            T::SucceedStateEntered,
            T::SucceedStateExited,
            T::ExecutionSucceeded,
        ]
    );
    for (index, event) in full.events.iter().enumerate() {
        assert_eq!(event.id, index as i64 + 1);
        assert_eq!(event.previous_event_id, index as i64);
    }
    let started = full.events[0].execution_started_event_details.as_ref().expect("started details");
    assert_eq!(started.input.as_deref(), Some(r#"{"x": 2}"#));
    assert_eq!(started.role_arn.as_deref(), Some(ROLE));
    let entered = full.events[1].state_entered_event_details.as_ref().expect("entered details");
    assert_eq!(entered.name, "A");
    let succeeded = full.events[9].execution_succeeded_event_details.as_ref().expect("succeeded details");
    assert!(succeeded.output.as_deref().is_some_and(|o| o.contains("positive")));

    let mut paged = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .get_execution_history()
            .execution_arn(&execution.execution_arn)
            .max_results(3)
            .set_next_token(token)
            .send()
            .await
            .expect("page");
        assert!(page.events.len() <= 3);
        paged.extend(page.events.iter().map(|e| e.id));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(paged, (1..=10).collect::<Vec<i64>>());

    let reversed = client
        .get_execution_history()
        .execution_arn(&execution.execution_arn)
        .reverse_order(true)
        .max_results(4)
        .send()
        .await
        .expect("reversed");
    let ids: Vec<_> = reversed.events.iter().map(|e| e.id).collect();
    assert_eq!(ids, [10, 9, 8, 7]);
    assert!(reversed.next_token.is_some());

    let bare = client
        .get_execution_history()
        .execution_arn(&execution.execution_arn)
        .include_execution_data(false)
        .send()
        .await
        .expect("without data");
    assert_eq!(bare.events.len(), 10);
    assert!(bare.events[0].execution_started_event_details.as_ref().is_some_and(|d| d.input.is_none()));
    assert!(bare.events[1].state_entered_event_details.as_ref().is_some_and(|d| d.input.is_none() && d.name == "A"));

    let err = client.get_execution_history().execution_arn(&execution.execution_arn).next_token("99").send().await;
    assert!(err.unwrap_err().into_service_error().is_invalid_token());
    let missing = "arn:aws:states:us-east-1:123456789012:execution:pass-choice:missing";
    let err = client.get_execution_history().execution_arn(missing).send().await;
    assert!(err.unwrap_err().into_service_error().is_execution_does_not_exist());
}

#[tokio::test]
async fn stopped_executions_abort_and_redrive_from_where_they_stopped() {
    let (_server, client) = start_server().await;
    let machine = create(&client, "waiting", WAITING).await;
    let execution = client.start_execution().state_machine_arn(&machine).send().await.expect("start");
    let arn = execution.execution_arn;
    wait_until_state_entered(&client, &arn, HistoryEventType::WaitStateEntered).await;

    let stopped = client
        .stop_execution()
        .execution_arn(&arn)
        .error("Operator")
        .cause("stopped by the test")
        .send()
        .await
        .expect("StopExecution");
    let described = client.describe_execution().execution_arn(&arn).send().await.expect("describe");
    assert_eq!(described.status, ExecutionStatus::Aborted);
    assert_eq!(described.error.as_deref(), Some("Operator"));
    assert_eq!(described.cause.as_deref(), Some("stopped by the test"));
    assert_eq!(described.stop_date, Some(stopped.stop_date));
    assert_eq!(described.redrive_status, Some(aws_sdk_sfn::types::ExecutionRedriveStatus::Redrivable));
    let history = client.get_execution_history().execution_arn(&arn).reverse_order(true).max_results(1).send();
    let last = history.await.expect("history").events.remove(0);
    assert_eq!(last.r#type, HistoryEventType::ExecutionAborted);
    let aborted = last.execution_aborted_event_details.expect("aborted details");
    assert_eq!(aborted.error.as_deref(), Some("Operator"));

    let redriven = client.redrive_execution().execution_arn(&arn).send().await.expect("RedriveExecution");
    let described = client.describe_execution().execution_arn(&arn).send().await.expect("describe");
    assert_eq!(described.status, ExecutionStatus::Running);
    assert_eq!(described.redrive_count, Some(1));
    assert_eq!(described.redrive_date, Some(redriven.redrive_date));
    wait_until_state_entered(&client, &arn, HistoryEventType::ExecutionRedriven).await;

    // A running execution cannot be redriven.
    let err = client.redrive_execution().execution_arn(&arn).send().await.unwrap_err().into_service_error();
    assert!(err.is_execution_not_redrivable(), "{err:?}");
    assert!(err.meta().message().is_some_and(|m| m.contains("RUNNING")), "{err:?}");
    client.stop_execution().execution_arn(&arn).send().await.expect("stop again");

    let pass = create(&client, "pass-choice", PASS_CHOICE).await;
    let succeeded = client.start_execution().state_machine_arn(&pass).input(r#"{"x": 1}"#).send().await.unwrap();
    wait_until_done(&client, &succeeded.execution_arn).await;
    let err = client.redrive_execution().execution_arn(&succeeded.execution_arn).send().await.unwrap_err();
    let err = err.into_service_error();
    assert!(err.is_execution_not_redrivable(), "{err:?}");
    assert!(err.meta().message().is_some_and(|m| m.contains("SUCCEEDED")), "{err:?}");

    let missing = "arn:aws:states:us-east-1:123456789012:execution:waiting:missing";
    let err = client.stop_execution().execution_arn(missing).send().await.unwrap_err();
    assert!(err.into_service_error().is_execution_does_not_exist());
    let err = client.redrive_execution().execution_arn(missing).send().await.unwrap_err();
    assert!(err.into_service_error().is_execution_does_not_exist());
}

/// One raw HTTP/1.1 request; returns the status, the `x-amzn-ErrorType` header and the body.
fn raw_request(server: &SfnServer, target: &str, body: &str) -> (u16, Option<String>, Value) {
    let mut stream = TcpStream::connect(server.address).expect("connect");
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nX-Amz-Target: {target}\r\nContent-Type: application/x-amz-json-1.0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        server.address,
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("receive");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    let error_type = head
        .lines()
        .find_map(|line| line.split_once(": ").filter(|(name, _)| name.eq_ignore_ascii_case("x-amzn-errortype")))
        .map(|(_, value)| value.to_owned());
    (status, error_type, serde_json::from_str(body).expect("a JSON body"))
}

#[tokio::test]
async fn unknown_operations_and_bad_bodies_get_protocol_errors() {
    let (server, _client) = start_server().await;
    let server = Arc::new(server);
    let requests = [
        ("AWSStepFunctions.SendTaskSuccess", "{}", "UnknownOperationException"),
        ("AWSStepFunctions.StartExecution", "{not json", "ValidationException"),
        ("AWSStepFunctions.StartExecution", "{}", "ValidationException"),
        ("AWSStepFunctions.ListStateMachines", r#"{"maxResults": 5000}"#, "ValidationException"),
    ];
    for (target, body, expected) in requests {
        let server = Arc::clone(&server);
        let (status, error_type, body) =
            tokio::task::spawn_blocking(move || raw_request(&server, target, body)).await.expect("request");
        assert_eq!(status, 400, "{target} {body}");
        assert_eq!(error_type.as_deref(), Some(expected), "{target} {body}");
        assert_eq!(body["__type"], expected);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
    // An empty body is an empty request, as the SDKs send it.
    let server = Arc::clone(&server);
    let (status, _, body) =
        tokio::task::spawn_blocking(move || raw_request(&server, "AWSStepFunctions.ListStateMachines", ""))
            .await
            .expect("request");
    assert_eq!((status, body), (200, json!({"stateMachines": []})));
}

/// The `aws` binary: `$IMGFLOW_AWS_CLI`, or `aws` on `PATH`.
fn aws_cli() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("IMGFLOW_AWS_CLI") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join("aws")).find(|p| p.is_file())
}

async fn run_aws(aws: &Path, server: &SfnServer, args: &[&str]) -> (bool, Value, String) {
    let mut command = std::process::Command::new(aws);
    command
        .args(["stepfunctions", "--endpoint-url", &server.url(), "--region", "us-east-1", "--output", "json"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "imgflow-test")
        .env("AWS_SECRET_ACCESS_KEY", "imgflow-test-secret")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_PAGER", "");
    // The CLI blocks; the endpoint keeps serving on the runtime meanwhile.
    let output = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("the aws CLI runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value =
        if stdout.trim().is_empty() { Value::Null } else { serde_json::from_str(&stdout).expect("JSON output") };
    (output.status.success(), value, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn the_aws_cli_drives_the_endpoint() {
    let Some(aws) = aws_cli() else {
        eprintln!("skipped: no `aws` binary (set IMGFLOW_AWS_CLI or put awscli on PATH)");
        return;
    };
    let (server, client) = start_server().await;
    let machine = create(&client, "pass-choice", PASS_CHOICE).await;

    let (ok, listed, stderr) = run_aws(&aws, &server, &["list-state-machines"]).await;
    assert!(ok, "{stderr}");
    assert_eq!(listed["stateMachines"][0]["stateMachineArn"], machine.as_str());

    let args = ["start-execution", "--state-machine-arn", &machine, "--name", "cli", "--input", r#"{"x": 5}"#];
    let (ok, started, stderr) = run_aws(&aws, &server, &args).await;
    assert!(ok, "{stderr}");
    let arn = started["executionArn"].as_str().expect("an execution ARN").to_owned();
    wait_until_done(&client, &arn).await;

    let (ok, described, stderr) = run_aws(&aws, &server, &["describe-execution", "--execution-arn", &arn]).await;
    assert!(ok, "{stderr}");
    assert_eq!(described["status"], "SUCCEEDED");
    assert_eq!(serde_json::from_str::<Value>(described["output"].as_str().unwrap()).unwrap()["sign"], "positive");

    let (ok, history, stderr) =
        run_aws(&aws, &server, &["get-execution-history", "--execution-arn", &arn, "--reverse-order"]).await;
    assert!(ok, "{stderr}");
    assert_eq!(history["events"][0]["type"], "ExecutionSucceeded");

    let missing = "arn:aws:states:us-east-1:123456789012:execution:pass-choice:missing";
    let (ok, _, stderr) = run_aws(&aws, &server, &["describe-execution", "--execution-arn", missing]).await;
    assert!(!ok);
    assert!(stderr.contains("ExecutionDoesNotExist"), "{stderr}");
}
