//! The DynamoDB metadata store and the write-metadata modes against moto's DynamoDB (real protocol).

use imgflow_steps::StepConfig;
use imgflow_steps::metadata::dynamodb::DynamoMetadataStore;
use imgflow_steps::metadata::{ImageStatus, ListQuery, MetadataStore};
use imgflow_steps::write_metadata::{self, STATUS_CHANGE_DETAIL_TYPE, SfnFailedStateLookup};
use imgflow_tests::Moto;
use serde_json::{Value, json};

/// Runs, in moto's Step Functions, an execution that passes through Validate and fails in
/// Resize, so the FAILED mode looks the failed state up in a real execution history.
async fn failed_execution(moto: &Moto, name: &str) -> String {
    moto.execute_state_machines();
    let sfn = moto.stepfunctions();
    let definition = json!({"StartAt": "Validate", "States": {
        "Validate": {"Type": "Pass", "Next": "Resize"},
        "Resize": {"Type": "Fail", "Error": "TransientError", "Cause": "S3 said SlowDown"}}});
    let machine = sfn
        .create_state_machine()
        .name(format!("imgflow-{name}"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/imgflow")
        .send()
        .await
        .unwrap()
        .state_machine_arn;
    let execution = sfn.start_execution().state_machine_arn(machine).name(name).input("{}").send().await.unwrap();
    for _ in 0..100 {
        let described = sfn.describe_execution().execution_arn(&execution.execution_arn).send().await.unwrap();
        if described.status.as_str() == "FAILED" {
            return execution.execution_arn;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("moto's execution did not fail");
}

fn s3_event(key: &str, time: &str) -> Value {
    json!({
        "version": "0", "id": "e1", "detail-type": "Object Created", "source": "aws.s3",
        "account": "000000000000", "time": time, "region": "us-east-1",
        "resources": ["arn:aws:s3:::images"],
        "detail": {"version": "0", "bucket": {"name": "images"},
                   "object": {"key": key, "size": 1234, "etag": "abc", "sequencer": "01"},
                   "request-id": "r1", "requester": "000000000000", "source-ip-address": "127.0.0.1",
                   "reason": "PutObject"}
    })
}

fn succeeded_request(id: &str, time: &str, execution: &str) -> Value {
    json!({
        "mode": "SUCCEEDED",
        "image": {"imageId": id, "bucket": "images", "key": format!("uploads/{id}"), "etag": "abc",
                  "contentType": "image/jpeg", "format": "jpeg", "width": 4032, "height": 3024,
                  "orientation": 1, "bytes": 1234, "sha256": "00ff", "uploadedAt": time},
        "exif": {"exif": {"make": "Google", "model": "Pixel 5", "iso": 100, "fNumber": 1.8}, "warnings": []},
        "renditions": [{"name": "thumb", "key": format!("processed/{id}/thumb.jpg"), "width": 256,
                        "height": 192, "bytes": 9000, "contentType": "image/jpeg"}],
        "executionArn": execution
    })
}

fn status_change(id: &str, time: &str, execution: &str, status: &str) -> Value {
    json!({
        "version": "0", "id": "s1", "detail-type": STATUS_CHANGE_DETAIL_TYPE, "source": "aws.states",
        "account": "000000000000", "time": time, "region": "us-east-1", "resources": [execution],
        "detail": {"executionArn": execution, "stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:imgflow",
                   "name": "x", "status": status, "startDate": 1, "stopDate": 2,
                   "input": s3_event(&format!("uploads/{id}"), time).to_string(),
                   "error": "TransientError", "cause": "{\"errorType\":\"TransientError\",\"errorMessage\":\"S3 said SlowDown\"}"}
    })
}

async fn store(moto: &Moto) -> DynamoMetadataStore {
    let store = DynamoMetadataStore::new(moto.dynamodb(), "ImageMetadata");
    store.create_table().await.unwrap();
    store
}

#[tokio::test]
async fn the_three_modes_converge_as_replays_and_late_events_arrive() {
    let moto = Moto::start();
    let store = store(&moto).await;
    let config = StepConfig { public_base_url: Some("http://127.0.0.1:4566/images".into()), ..StepConfig::default() };
    let lookup = SfnFailedStateLookup::new(moto.stepfunctions());
    let t1 = "2026-11-25T10:00:00Z";
    let e1 = failed_execution(&moto, "e1").await;

    // The first run fails at Resize: FAILED with the error, cause and state.
    let out = write_metadata::handle(&store, &lookup, &config, status_change("img1", t1, &e1, "FAILED")).await.unwrap();
    assert!(out.written);
    let failed = store.get("img1").await.unwrap().unwrap();
    assert_eq!(failed.status, ImageStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("TransientError"));
    assert_eq!(failed.cause.as_deref(), Some("S3 said SlowDown"));
    assert_eq!(failed.failed_state.as_deref(), Some("Resize"));
    assert_eq!(failed.key, "uploads/img1");

    // The redrive succeeds: SUCCEEDED replaces FAILED.
    let out = write_metadata::handle(&store, &lookup, &config, succeeded_request("img1", t1, &e1)).await.unwrap();
    assert!(out.written);
    let succeeded = store.get("img1").await.unwrap().unwrap();
    assert_eq!(succeeded.status, ImageStatus::Succeeded);
    assert_eq!(succeeded.width, Some(4032));
    assert_eq!(succeeded.exif.as_ref().and_then(|e| e.model.clone()).as_deref(), Some("Pixel 5"));
    assert_eq!(succeeded.renditions[0].url, "http://127.0.0.1:4566/images/processed/img1/thumb.jpg");
    assert_eq!(succeeded.original_url.as_deref(), Some("http://127.0.0.1:4566/images/uploads/img1"));
    assert_eq!(succeeded.error, None);

    // A late duplicate of the first failure event changes nothing.
    let out = write_metadata::handle(&store, &lookup, &config, status_change("img1", t1, &e1, "FAILED")).await.unwrap();
    assert!(!out.written);
    assert_eq!(store.get("img1").await.unwrap().unwrap().status, ImageStatus::Succeeded);

    // Replaying the success converges to the same item (but for ProcessedAt).
    write_metadata::handle(&store, &lookup, &config, succeeded_request("img1", t1, &e1)).await.unwrap();
    let replayed = store.get("img1").await.unwrap().unwrap();
    assert_eq!(
        imgflow_steps::metadata::ImageRecord { processed_at: succeeded.processed_at.clone(), ..replayed },
        succeeded
    );
}

#[tokio::test]
async fn rejections_record_the_caught_error() {
    let moto = Moto::start();
    let store = store(&moto).await;
    let mut state = s3_event("uploads/bad", "2026-11-25T10:00:00Z");
    state["error"] = json!({"Error": "InvalidImage", "Cause": "{\"errorType\":\"InvalidImage\",\"errorMessage\":\"invalid image: JPEG ends early\"}"});
    let e2 = failed_execution(&moto, "e2").await;
    let request = json!({"mode": "REJECTED", "event": state, "error": state["error"], "executionArn": e2});
    let lookup = SfnFailedStateLookup::new(moto.stepfunctions());
    let out = write_metadata::handle(&store, &lookup, &StepConfig::default(), request).await.unwrap();
    assert_eq!((out.image_id.as_str(), out.status), ("bad", ImageStatus::Rejected));
    let record = store.get("bad").await.unwrap().unwrap();
    assert_eq!(record.error.as_deref(), Some("InvalidImage"));
    assert_eq!(record.cause.as_deref(), Some("invalid image: JPEG ends early"));
    // The Fail state after RecordRejected fails the execution; its status change must not
    // turn the rejection into a failure.
    let out = write_metadata::handle(
        &store,
        &lookup,
        &StepConfig::default(),
        status_change("bad", "2026-11-25T10:00:00Z", &e2, "FAILED"),
    )
    .await
    .unwrap();
    assert!(!out.written);
    assert_eq!(store.get("bad").await.unwrap().unwrap().status, ImageStatus::Rejected);
}

#[tokio::test]
async fn list_by_status_is_newest_first_and_paginated() {
    let moto = Moto::start();
    let store = store(&moto).await;
    let lookup = SfnFailedStateLookup::new(moto.stepfunctions());
    let f = failed_execution(&moto, "f").await;
    for i in 0..5 {
        let time = format!("2026-11-25T10:00:0{i}Z");
        let request = succeeded_request(&format!("img{i}"), &time, &format!("arn:s{i}"));
        write_metadata::handle(&store, &lookup, &StepConfig::default(), request).await.unwrap();
    }
    write_metadata::handle(
        &store,
        &lookup,
        &StepConfig::default(),
        status_change("other", "2026-11-25T11:00:00Z", &f, "TIMED_OUT"),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut query = ListQuery { status: Some(ImageStatus::Succeeded), limit: 2, next_token: None };
    loop {
        let page = store.list(&query).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|r| r.image_id.clone()));
        match page.next_token {
            Some(token) => query.next_token = Some(token),
            None => break,
        }
    }
    assert_eq!(seen, vec!["img4", "img3", "img2", "img1", "img0"]);
    let failed = store.list(&ListQuery { status: Some(ImageStatus::Failed), ..ListQuery::default() }).await.unwrap();
    assert_eq!(failed.items.len(), 1);
    assert_eq!(failed.items[0].error.as_deref(), Some("TransientError"));
    let bad_token = ListQuery { next_token: Some("not-a-token".into()), ..ListQuery::default() };
    assert_eq!(store.list(&bad_token).await.unwrap_err().asl_name(), "InvalidInput");
}

#[tokio::test]
async fn a_missing_table_is_not_retried_but_fails_loudly() {
    let moto = Moto::start();
    let store = DynamoMetadataStore::new(moto.dynamodb(), "NoSuchTable");
    let error = write_metadata::handle(
        &store,
        &SfnFailedStateLookup::new(moto.stepfunctions()),
        &StepConfig::default(),
        succeeded_request("a", "2026-11-25T10:00:00Z", "arn:x"),
    )
    .await
    .unwrap_err();
    assert_eq!(error.asl_name(), "InternalError", "{error}");
}
