//! The client commands with `--aws`, against moto (the real AWS protocols): the stack's Outputs
//! from CloudFormation, executions from Step Functions, images from DynamoDB.
//!
//! moto has no RedriveExecution (it answers 500), so `--mode redrive` is tested for its error
//! report only; the redrive itself is tested against the twin (client_twin.rs). Uploads through
//! API Gateway cannot run on moto; the API's routes are the twin's, where `upload` is tested.

mod support;

use std::time::Duration;

use imgflow_steps::metadata::dynamodb::DynamoMetadataStore;
use imgflow_steps::metadata::{ImageRecord, ImageStatus, MetadataStore};
use imgflow_tests::{ACCESS_KEY, Moto, REGION, SECRET_KEY};
use serde_json::{Value, json};
use support::{Run, field, imgflow, run};

const STACK: &str = "imgflow-cli-test";

/// A stand-in for the pipeline: the input says how the execution ends.
fn definition() -> String {
    json!({
        "StartAt": "Route",
        "States": {
            "Route": {"Type": "Choice", "Choices": [
                {"Variable": "$.outcome", "StringEquals": "fail", "Next": "Resize"},
                {"Variable": "$.outcome", "StringEquals": "reject", "Next": "Rejected"}
            ], "Default": "Done"},
            "Resize": {"Type": "Fail", "Error": "TransientError", "Cause": "the resize step kept failing"},
            "Rejected": {"Type": "Fail", "Error": "InvalidImage", "Cause": "not a JPEG: truncated"},
            "Done": {"Type": "Succeed"}
        }
    })
    .to_string()
}

/// The parts of the SAM template the CLI reads: the table (with its status index) and the
/// Outputs. moto's CloudFormation does not register state machines with its executor, so the
/// machine is created through Step Functions and passed in as a parameter.
fn template() -> String {
    let attribute = |name: &str| json!({"AttributeName": name, "AttributeType": "S"});
    json!({
        "Parameters": {"PipelineArn": {"Type": "String"}},
        "Resources": {"ImageMetadata": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [attribute("ImageID"), attribute("Status"), attribute("UploadedAt")],
            "KeySchema": [{"AttributeName": "ImageID", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{"IndexName": "StatusUploadedAt", "KeySchema": [
                {"AttributeName": "Status", "KeyType": "HASH"},
                {"AttributeName": "UploadedAt", "KeyType": "RANGE"}
            ], "Projection": {"ProjectionType": "ALL"}}]
        }}},
        "Outputs": {
            "TableName": {"Value": {"Ref": "ImageMetadata"}},
            "StateMachineArn": {"Value": {"Ref": "PipelineArn"}}
        }
    })
    .to_string()
}

fn record(image_id: &str, status: ImageStatus, uploaded_at: &str) -> ImageRecord {
    let failed = status != ImageStatus::Succeeded;
    ImageRecord {
        image_id: image_id.into(),
        status,
        bucket: "images".into(),
        key: format!("uploads/{image_id}"),
        version_id: None,
        original_url: None,
        content_type: Some("image/jpeg".into()),
        format: (!failed).then(|| "jpeg".into()),
        bytes: Some(1234),
        width: (!failed).then_some(640),
        height: (!failed).then_some(480),
        sha256: None,
        uploaded_at: uploaded_at.into(),
        processed_at: uploaded_at.into(),
        exif: None,
        warnings: vec![],
        renditions: vec![],
        execution_arn: None,
        error: failed.then(|| "TransientError".into()),
        cause: failed.then(|| "the resize step kept failing".into()),
        failed_state: failed.then(|| "Resize".into()),
    }
}

/// `imgflow ARGS… --aws` configured the standard way, for moto.
fn imgflow_aws(moto: &Moto, args: &[&str]) -> std::process::Command {
    let mut command = imgflow();
    let home = std::env::temp_dir().join("imgflow-cli-test-no-aws-config");
    command
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", REGION)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(args)
        .arg("--aws");
    command
}

fn names_and_statuses(listing: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = listing
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["status"].as_str().unwrap().to_owned()))
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_reads_a_stack_on_aws() {
    let moto = Moto::start();
    moto.execute_state_machines();
    let sfn = moto.stepfunctions();
    let machine = sfn
        .create_state_machine()
        .name("ImagePipeline-Abc123")
        .definition(definition())
        .role_arn("arn:aws:iam::123456789012:role/pipeline")
        .send()
        .await
        .expect("state machine created")
        .state_machine_arn
        .clone();
    let cloudformation = aws_sdk_cloudformation::Client::from_conf(
        aws_sdk_cloudformation::Config::builder()
            .behavior_version(aws_sdk_cloudformation::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudformation::config::Region::new(REGION))
            .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "tests",
            ))
            .endpoint_url(&moto.endpoint)
            .http_client(imgflow_steps::https_client())
            .build(),
    );
    cloudformation
        .create_stack()
        .stack_name(STACK)
        .template_body(template())
        .parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key("PipelineArn")
                .parameter_value(&machine)
                .build(),
        )
        .send()
        .await
        .expect("stack created");
    let outputs = cloudformation.describe_stacks().stack_name(STACK).send().await.expect("stack described");
    let table = outputs.stacks()[0]
        .outputs()
        .iter()
        .find(|o| o.output_key() == Some("TableName"))
        .and_then(|o| o.output_value())
        .expect("a TableName output")
        .to_owned();

    let store = DynamoMetadataStore::new(moto.dynamodb(), &table);
    store.put(&record("img-old", ImageStatus::Succeeded, "2026-11-20T10:00:00.000Z")).await.unwrap();
    store.put(&record("img-new", ImageStatus::Succeeded, "2026-11-21T10:00:00.000Z")).await.unwrap();
    store.put(&record("img-bad", ImageStatus::Failed, "2026-11-22T10:00:00.000Z")).await.unwrap();

    for (name, outcome) in [("ok-1", "ok"), ("fail-1", "fail"), ("fail-2", "fail"), ("rejected-1", "reject")] {
        sfn.start_execution()
            .state_machine_arn(&machine)
            .name(name)
            .input(json!({"outcome": outcome}).to_string())
            .send()
            .await
            .expect("execution started");
    }
    // moto runs them in the background.
    for _ in 0..100 {
        let running = sfn
            .list_executions()
            .state_machine_arn(&machine)
            .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
            .send()
            .await
            .unwrap();
        if running.executions().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // executions list: everything, then only the failed ones.
    let all =
        run(imgflow_aws(&moto, &["executions", "list", "--stack", STACK, "--output", "json"])).await.expect_code(0);
    assert_eq!(
        names_and_statuses(&all.json()),
        [
            ("fail-1".to_owned(), "FAILED".to_owned()),
            ("fail-2".to_owned(), "FAILED".to_owned()),
            ("ok-1".to_owned(), "SUCCEEDED".to_owned()),
            ("rejected-1".to_owned(), "FAILED".to_owned()),
        ]
    );
    let failed =
        run(imgflow_aws(&moto, &["executions", "list", "--status", "failed", "--stack", STACK])).await.expect_code(0);
    assert!(failed.stdout.starts_with("NAME"), "{}", failed.stdout);
    assert_eq!(failed.stdout.lines().count(), 4, "{}", failed.stdout);
    assert!(!failed.stdout.contains("ok-1"), "{}", failed.stdout);

    // executions show: by name, with the state it failed in, error and cause.
    let shown = run(imgflow_aws(&moto, &["executions", "show", "fail-1", "--stack", STACK])).await.expect_code(0);
    for expected in
        ["Status     FAILED", "Failed in  Resize", "Error      TransientError", "the resize step kept failing"]
    {
        assert!(shown.stdout.contains(expected), "{expected:?} in\n{}", shown.stdout);
    }
    let shown = run(imgflow_aws(
        &moto,
        &["executions", "show", "rejected-1", "--state-machine-arn", &machine, "--output", "json"],
    ))
    .await
    .expect_code(0)
    .json();
    assert_eq!(shown["failedState"], "Rejected");
    assert_eq!(shown["error"], "InvalidImage");
    assert_eq!(shown["input"], json!({"outcome": "reject"}));

    // replay --mode restart: the failed ones start again under new names; the rejected one is
    // skipped with its reason. (They fail again: the input still says so.)
    let replay = run(imgflow_aws(
        &moto,
        &["replay", "--all-failed", "--mode", "restart", "--wait", "--output", "json", "--stack", STACK],
    ))
    .await
    .expect_code(1);
    let outcomes = replay.json();
    let by_name = |name: &str| outcomes.as_array().unwrap().iter().find(|o| o["name"] == name).cloned().unwrap();
    for name in ["fail-1", "fail-2"] {
        let outcome = by_name(name);
        assert_eq!(outcome["action"], "restarted", "{outcome}");
        assert_eq!(outcome["finalStatus"], "FAILED", "{outcome}");
        let new_arn = outcome["newExecutionArn"].as_str().unwrap();
        assert!(new_arn.contains(&format!(":{name}-restart-")), "{new_arn}");
    }
    let rejected = by_name("rejected-1");
    assert_eq!(rejected["action"], "skipped");
    let reason = rejected["reason"].as_str().unwrap();
    assert!(reason.contains("REJECTED") && reason.contains("InvalidImage"), "{reason}");
    assert_eq!(outcomes.as_array().unwrap().len(), 3, "{outcomes}");
    assert!(replay.stderr.contains("2 restarted, 1 skipped; then 2 FAILED"), "{}", replay.stderr);

    // replay --dry-run changes nothing.
    let before = sfn.list_executions().state_machine_arn(&machine).send().await.unwrap().executions().len();
    let dry =
        run(imgflow_aws(&moto, &["replay", "fail-1", "ok-1", "--mode", "restart", "--dry-run", "--stack", STACK]))
            .await
            .expect_code(0);
    assert!(dry.stdout.contains("would restart"), "{}", dry.stdout);
    assert!(dry.stdout.contains("SUCCEEDED: nothing to replay"), "{}", dry.stdout);
    let after = sfn.list_executions().state_machine_arn(&machine).send().await.unwrap().executions().len();
    assert_eq!(before, after);

    // replay --mode redrive: moto has no RedriveExecution; the failure is reported per execution.
    let redrive = run(imgflow_aws(&moto, &["replay", "fail-1", "--stack", STACK])).await.expect_code(1);
    assert!(redrive.stdout.contains("fail-1") && redrive.stdout.contains("RedriveExecution"), "{}", redrive.stdout);

    // images: DynamoDB Query on the status index, newest first, and GetItem.
    let listed =
        run(imgflow_aws(&moto, &["images", "list", "--status", "SUCCEEDED", "--output", "json", "--stack", STACK]))
            .await
            .expect_code(0)
            .json();
    let ids: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|i| i["imageId"].as_str().unwrap()).collect();
    assert_eq!(ids, ["img-new", "img-old"]);
    let one = run(imgflow_aws(&moto, &["images", "get", "img-bad", "--table-name", &table])).await.expect_code(0);
    assert_eq!(field(&one.stdout, "Status"), Some("FAILED"), "{}", one.stdout);
    assert_eq!(field(&one.stdout, "Failed in"), Some("Resize"), "{}", one.stdout);
    assert_eq!(field(&one.stdout, "Error"), Some("TransientError"), "{}", one.stdout);
    let missing = run(imgflow_aws(&moto, &["images", "get", "nope", "--table-name", &table])).await.expect_code(1);
    assert!(missing.stderr.contains("no image nope"), "{}", missing.stderr);

    // Without the stack, the table must be named.
    let unnamed = run(imgflow_aws(&moto, &["images", "list"])).await.expect_code(2);
    assert!(unnamed.stderr.contains("--table-name or --stack"), "{}", unnamed.stderr);
    let no_stack = run(imgflow_aws(&moto, &["executions", "list", "--stack", "no-such-stack"])).await.expect_code(2);
    assert!(no_stack.stderr.contains("no-such-stack"), "{}", no_stack.stderr);
}

#[tokio::test]
async fn aws_only_flags_need_aws() {
    let refused: Run = run({
        let mut command = imgflow();
        command.args(["executions", "list", "--stack", "prod"]);
        command
    })
    .await
    .expect_code(2);
    assert!(refused.stderr.contains("--stack applies to AWS: add --aws"), "{}", refused.stderr);
}
