//! The shipped state machine, run by the engine with the real step handlers on the embedded S3
//! endpoint and moto's DynamoDB: the success path, a rejection, and a transient failure that is
//! recorded FAILED at its step and then redriven to success.

use std::sync::Arc;

use imgflow_engine::{Engine, EngineConfig, ExecutionStatus, InstantClock, MemoryStore};
use imgflow_local::functions::{EngineFailedStates, Faults, StepFunctions, substitute, substitutions};
use imgflow_steps::StepConfig;
use imgflow_steps::metadata::dynamodb::DynamoMetadataStore;
use imgflow_steps::metadata::{ImageStatus, MetadataStore};
use imgflow_steps::objects::S3Objects;
use imgflow_steps::write_metadata::{self, STATUS_CHANGE_DETAIL_TYPE};
use imgflow_tests::{Moto, S3Fixture, fixtures};
use serde_json::{Value, json};

struct Pipeline {
    s3: S3Fixture,
    _moto: Moto,
    store: Arc<DynamoMetadataStore>,
    failed_states: Arc<EngineFailedStates>,
    faults: Arc<Faults>,
    engine: Engine,
    machine: String,
    config: StepConfig,
}

impl Pipeline {
    async fn start() -> Pipeline {
        let s3 = S3Fixture::start().await;
        let moto = Moto::start();
        let store = Arc::new(DynamoMetadataStore::new(moto.dynamodb(), "ImageMetadata"));
        store.create_table().await.unwrap();
        let config = StepConfig { public_base_url: Some(format!("{}/images", s3.url())), ..StepConfig::default() };
        let failed_states = Arc::new(EngineFailedStates::default());
        let faults = Arc::new(Faults::default());
        let functions = StepFunctions {
            s3: S3Objects::new(s3.client.clone()),
            store: store.clone(),
            failed_states: failed_states.clone(),
            config: config.clone(),
            faults: faults.clone(),
        };
        let engine_config = EngineConfig::default();
        let engine = Engine::new(
            Arc::new(MemoryStore::new()),
            Arc::new(functions),
            Arc::new(InstantClock::new()),
            engine_config.clone(),
        )
        .unwrap();
        failed_states.set_engine(engine.clone());
        let definition = include_str!("../../statemachine/image-pipeline.asl.json");
        let definition =
            substitute(definition, &substitutions(&engine_config.region, &engine_config.account_id)).unwrap();
        let machine =
            engine.create_state_machine("imgflow", &definition, "arn:aws:iam::123456789012:role/imgflow").unwrap().arn;
        Pipeline { s3, _moto: moto, store, failed_states, faults, engine, machine, config }
    }

    /// Uploads, runs the execution to its end, and (as the EventBridge rule does on AWS) hands
    /// a FAILED / TIMED_OUT / ABORTED end to write-metadata.
    async fn run(&self, key: &str, bytes: Vec<u8>) -> (String, ExecutionStatus, Value) {
        let event = self.s3.upload(key, bytes).await;
        let input = serde_json::to_string(&event).unwrap();
        let started = self.engine.start_execution(&self.machine, None, Some(&input)).await.unwrap();
        let arn = started.execution_arn;
        let status = self.finish(&arn).await;
        let output =
            serde_json::from_str(&self.engine.describe_execution(&arn).unwrap().output.unwrap_or("null".into()))
                .unwrap();
        (arn, status, output)
    }

    async fn finish(&self, arn: &str) -> ExecutionStatus {
        let execution = self.engine.wait_for_completion(arn).await.unwrap();
        if matches!(execution.status, ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted) {
            let change = json!({
                "version": "0", "id": "x", "detail-type": STATUS_CHANGE_DETAIL_TYPE, "source": "aws.states",
                "account": "123456789012", "time": "2026-11-25T00:00:00Z", "region": "us-east-1", "resources": [arn],
                "detail": {"executionArn": arn, "stateMachineArn": self.machine, "name": execution.name,
                           "status": execution.status.as_str(), "input": execution.input,
                           "error": execution.error, "cause": execution.cause}
            });
            write_metadata::handle(self.store.as_ref(), self.failed_states.as_ref(), &self.config, change)
                .await
                .unwrap();
        }
        execution.status
    }
}

#[tokio::test]
async fn an_upload_ends_succeeded_with_its_renditions_and_metadata() {
    let pipeline = Pipeline::start().await;
    let (_, status, output) = pipeline.run("uploads/photo-1", fixtures::jpeg(2000, 1000)).await;
    assert_eq!(status, ExecutionStatus::Succeeded);
    assert_eq!(output["record"], json!({"imageId": "photo-1", "status": "SUCCEEDED", "written": true}));
    let record = pipeline.store.get("photo-1").await.unwrap().unwrap();
    assert_eq!(record.status, ImageStatus::Succeeded);
    assert_eq!((record.width, record.height, record.format.as_deref()), (Some(2000), Some(1000), Some("jpeg")));
    let renditions: Vec<(&str, u32, u32)> =
        record.renditions.iter().map(|r| (r.name.as_str(), r.width, r.height)).collect();
    assert_eq!(renditions, vec![("thumb", 256, 128), ("medium", 1280, 640)]);
    assert!(pipeline.s3.object("processed/photo-1/medium.jpg").await.is_some());
    assert_eq!(record.renditions[0].url, format!("{}/images/processed/photo-1/thumb.jpg", pipeline.s3.url()));
    // No state carries image bytes: the whole final state is small.
    assert!(output.to_string().len() < 4096, "{}", output.to_string().len());
}

#[tokio::test]
async fn a_corrupt_upload_is_rejected_with_its_error() {
    let pipeline = Pipeline::start().await;
    let jpeg = fixtures::jpeg(300, 300);
    let (arn, status, _) = pipeline.run("uploads/broken", jpeg[..jpeg.len() / 3].to_vec()).await;
    assert_eq!(status, ExecutionStatus::Failed);
    let execution = pipeline.engine.describe_execution(&arn).unwrap();
    assert_eq!(execution.error.as_deref(), Some("InvalidImage"));
    let record = pipeline.store.get("broken").await.unwrap().unwrap();
    assert_eq!(record.status, ImageStatus::Rejected, "the Fail state's status change must not turn it FAILED");
    assert_eq!(record.error.as_deref(), Some("InvalidImage"));
    assert!(record.cause.as_deref().is_some_and(|c| !c.contains("errorType")), "{:?}", record.cause);
    assert!(pipeline.s3.object("processed/broken/thumb.jpg").await.is_none());
}

#[tokio::test]
async fn transient_failures_are_retried_then_recorded_failed_and_a_redrive_succeeds() {
    let pipeline = Pipeline::start().await;
    // One failure is absorbed by the retries.
    pipeline.faults.add("read-exif=Lambda.ServiceException").unwrap();
    let (_, status, _) = pipeline.run("uploads/retried", fixtures::jpeg(400, 300)).await;
    assert_eq!(status, ExecutionStatus::Succeeded);

    // More failures than retries: the execution fails at Resize, uncaught.
    pipeline.faults.add("resize=TransientError*6").unwrap();
    let (arn, status, _) = pipeline.run("uploads/flaky", fixtures::jpeg(400, 300)).await;
    assert_eq!(status, ExecutionStatus::Failed);
    let record = pipeline.store.get("flaky").await.unwrap().unwrap();
    assert_eq!(record.status, ImageStatus::Failed);
    assert_eq!(record.error.as_deref(), Some("TransientError"));
    assert_eq!(record.failed_state.as_deref(), Some("Resize"));

    // The cause is gone: a redrive resumes at Resize and the image ends SUCCEEDED.
    pipeline.engine.redrive_execution(&arn).await.unwrap();
    assert_eq!(pipeline.finish(&arn).await, ExecutionStatus::Succeeded);
    let record = pipeline.store.get("flaky").await.unwrap().unwrap();
    assert_eq!(record.status, ImageStatus::Succeeded);
    assert_eq!(record.error, None);
    assert_eq!(record.renditions.len(), 2);
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let pipeline = Pipeline::start().await;
    pipeline.faults.add("validate=ImageTooLarge").unwrap();
    pipeline.faults.add("validate=TransientError*2").unwrap();
    let (arn, status, _) = pipeline.run("uploads/big", fixtures::jpeg(64, 64)).await;
    assert_eq!(status, ExecutionStatus::Failed);
    assert_eq!(pipeline.engine.describe_execution(&arn).unwrap().error.as_deref(), Some("ImageTooLarge"));
    assert_eq!(pipeline.store.get("big").await.unwrap().unwrap().status, ImageStatus::Rejected);
    // ImageTooLarge was not retried, so both TransientError faults are still armed: the next
    // upload's validate fails twice, is retried, and succeeds.
    let (arn, status, _) = pipeline.run("uploads/after", fixtures::jpeg(64, 64)).await;
    assert_eq!(status, ExecutionStatus::Succeeded);
    let history = pipeline.engine.get_execution_history(&arn, None, None, false).unwrap();
    let failures = history.events.iter().filter(|e| e.event_type.0 == "LambdaFunctionFailed").count();
    assert_eq!(failures, 2);
}
