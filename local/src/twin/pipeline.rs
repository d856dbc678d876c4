//! What AWS does between a stored object and the state machine: the EventBridge rule (objects
//! under `uploads/` in the pipeline's bucket) and StartExecution, with the event as input.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use imgflow_engine::{Engine, EngineError, ExecutionRecord};
use imgflow_steps::event::{ObjectCreatedEvent, UPLOADS_PREFIX, UploadedObject, image_id_for_key};
use imgflow_steps::pipeline::{StoredObject, object_created_event};
use s3s::{S3Result, s3_error};

use crate::s3::ObjectEvents;

/// An image whose execution is running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processing {
    pub image_id: String,
    pub key: String,
    pub execution_arn: String,
    pub started: DateTime<Utc>,
}

/// The rule and target: objects stored under `uploads/` of `bucket` start the state machine.
pub struct Pipeline {
    engine: Engine,
    state_machine_arn: String,
    bucket: String,
    /// Running executions by image id, for `GET /images/{id}` while an image is processed.
    processing: Mutex<HashMap<String, Processing>>,
}

impl Pipeline {
    pub fn new(engine: Engine, state_machine_arn: String, bucket: String) -> Pipeline {
        Pipeline { engine, state_machine_arn, bucket, processing: Mutex::new(HashMap::new()) }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn state_machine_arn(&self) -> &str {
        &self.state_machine_arn
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Whether the rule matches: the pipeline's bucket, a key under `uploads/` (not a folder).
    pub fn matches(&self, bucket: &str, key: &str) -> bool {
        bucket == self.bucket && key.starts_with(UPLOADS_PREFIX) && !key.ends_with('/')
    }

    /// The execution an object starts: named after the image and the write's sequencer, so every
    /// version of an object gets its own execution and a repeated delivery of the same event is
    /// recognised (ExecutionAlreadyExists).
    pub fn execution_name(object: &StoredObject) -> String {
        let id: String = image_id_for_key(&object.key).chars().take(61).collect();
        format!("{id}-{}", object.sequencer.as_deref().unwrap_or("0"))
    }

    pub fn execution_arn(&self, object: &StoredObject) -> String {
        let prefix = self.state_machine_arn.replacen(":stateMachine:", ":execution:", 1);
        format!("{prefix}:{}", Pipeline::execution_name(object))
    }

    /// Starts the execution for a stored object (durably: once this returns, a restart resumes it).
    pub async fn start(&self, object: &StoredObject) -> Result<String, EngineError> {
        let event = object_created_event(object, &uuid::Uuid::new_v4().to_string());
        let input = serde_json::to_string(&event).map_err(|e| EngineError::InvalidExecutionInput(e.to_string()))?;
        let started = self
            .engine
            .start_execution(&self.state_machine_arn, Some(Pipeline::execution_name(object)), Some(&input))
            .await?;
        tracing::info!(key = %object.key, execution = %started.execution_arn, "upload: execution started");
        self.track(Processing {
            image_id: image_id_for_key(&object.key),
            key: object.key.clone(),
            execution_arn: started.execution_arn.clone(),
            started: started.start_date,
        });
        Ok(started.execution_arn)
    }

    /// The running execution of an image, if any.
    pub fn processing(&self, image_id: &str) -> Option<Processing> {
        self.lock().get(image_id).cloned()
    }

    /// Follows an execution's status: running ones are tracked, ended ones forgotten.
    pub fn observe(&self, execution: &ExecutionRecord) {
        let Some(upload) = uploaded_object(execution) else { return };
        if execution.status == imgflow_engine::ExecutionStatus::Running {
            self.track(Processing {
                image_id: upload.image_id,
                key: upload.key,
                execution_arn: execution.execution_arn.clone(),
                started: execution.redrive_date.unwrap_or(execution.start_date),
            });
        } else {
            let mut processing = self.lock();
            if processing.get(&upload.image_id).is_some_and(|p| p.execution_arn == execution.execution_arn) {
                processing.remove(&upload.image_id);
            }
        }
    }

    /// Forgets every tracked execution (before they are listed again from the engine).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn track(&self, entry: Processing) {
        self.lock().insert(entry.image_id.clone(), entry);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Processing>> {
        self.processing.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The uploaded object an execution of the pipeline processes, from its input event.
pub fn uploaded_object(execution: &ExecutionRecord) -> Option<UploadedObject> {
    let event: ObjectCreatedEvent = serde_json::from_str(&execution.input).ok()?;
    UploadedObject::from_event(&event).ok()
}

#[async_trait::async_trait]
impl ObjectEvents for Pipeline {
    fn admit(&self, bucket: &str, key: &str) -> S3Result<()> {
        if self.matches(bucket, key) && self.engine.at_open_limit() {
            return Err(s3_error!(
                SlowDown,
                "{} executions are open, the limit of the twin; retry shortly",
                self.engine.open_executions()
            ));
        }
        Ok(())
    }

    async fn stored(&self, object: StoredObject) -> S3Result<()> {
        if !self.matches(&object.bucket, &object.key) {
            return Ok(());
        }
        match self.start(&object).await {
            Ok(_) => Ok(()),
            Err(EngineError::ExecutionLimitExceeded(open)) => {
                Err(s3_error!(SlowDown, "{open} executions are open, the limit of the twin; retry shortly"))
            }
            Err(error) => {
                tracing::error!(key = %object.key, %error, "upload: the execution did not start");
                Err(s3_error!(InternalError, "the object is stored but its processing did not start: {error}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use imgflow_engine::{EngineConfig, InstantClock, MemoryStore, TaskError, TaskInvoker, TaskRequest};
    use s3s::S3ErrorCode;
    use serde_json::Value;

    use super::*;

    /// A step that never answers: executions stay open.
    struct Hanging;

    #[async_trait::async_trait]
    impl TaskInvoker for Hanging {
        async fn invoke(&self, _request: TaskRequest) -> Result<Value, TaskError> {
            std::future::pending().await
        }
    }

    fn object(key: &str, sequencer: &str) -> StoredObject {
        StoredObject {
            bucket: "images".into(),
            key: key.into(),
            size: 1,
            etag: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
            version_id: None,
            sequencer: Some(sequencer.into()),
            request_id: None,
            reason: "PutObject".into(),
            time: Utc::now(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
        }
    }

    #[tokio::test]
    async fn uploads_start_one_execution_per_version_and_are_refused_beyond_the_open_limit() {
        let config = EngineConfig { max_concurrent_executions: 1, max_open_executions: 2, ..EngineConfig::default() };
        let engine =
            Engine::new(Arc::new(MemoryStore::new()), Arc::new(Hanging), Arc::new(InstantClock::new()), config)
                .unwrap();
        let task = r#"{"StartAt":"Work","States":{"Work":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:123456789012:function:imgflow-validate","End":true}}}"#;
        let machine = engine.create_state_machine("pipeline", task, "arn:aws:iam::123456789012:role/r").unwrap();
        let pipeline = Pipeline::new(engine.clone(), machine.arn.clone(), "images".into());

        // Only uploads/ of the pipeline's bucket: folders, processed/ and other buckets start nothing.
        pipeline.stored(object("processed/a/thumb.jpg", "01")).await.unwrap();
        pipeline.stored(object("uploads/", "02")).await.unwrap();
        pipeline.stored(StoredObject { bucket: "other".into(), ..object("uploads/x", "03") }).await.unwrap();
        assert_eq!(engine.open_executions(), 0);

        pipeline.stored(object("uploads/abc", "0A")).await.unwrap();
        // The same key written again is another version: another execution.
        pipeline.stored(object("uploads/abc", "0B")).await.unwrap();
        let expected = pipeline.execution_arn(&object("uploads/abc", "0B"));
        assert!(expected.ends_with(":execution:pipeline:abc-0B"), "{expected}");
        assert_eq!(pipeline.processing("abc").unwrap().execution_arn, expected);
        assert_eq!(engine.open_executions(), 2);

        // At the limit: refused before anything is stored, and after, if a write raced past.
        let refused = pipeline.admit("images", "uploads/def").unwrap_err();
        assert_eq!(*refused.code(), S3ErrorCode::SlowDown);
        assert!(pipeline.admit("images", "processed/def/thumb.jpg").is_ok());
        let refused = pipeline.stored(object("uploads/def", "0C")).await.unwrap_err();
        assert_eq!(*refused.code(), S3ErrorCode::SlowDown);
    }
}
