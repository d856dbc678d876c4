//! What the four Lambda binaries share: configuration, AWS clients, logging, and the runtime
//! loop that turns a handler's `StepError` into a Lambda error whose `errorType` is the ASL name.

use std::future::Future;

use lambda_runtime::{LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::StepConfig;
use crate::error::StepError;

/// Configuration and AWS SDK configuration, loaded once per cold start.
pub struct Environment {
    pub config: StepConfig,
    pub aws: aws_config::SdkConfig,
}

impl Environment {
    pub async fn load() -> Result<Self, lambda_runtime::Error> {
        init_tracing();
        let config = StepConfig::from_env()?;
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(Environment { config, aws })
    }

    pub fn s3(&self) -> crate::objects::S3Objects {
        crate::objects::S3Objects::new(aws_sdk_s3::Client::new(&self.aws))
    }
}

/// JSON logs, one object per line, as CloudWatch Logs Insights reads them. `RUST_LOG` filters.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // The runtime may already have a subscriber in tests; a second init is not an error worth failing on.
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).with_current_span(false).without_time().try_init();
}

/// Runs the Lambda loop around `handler`. The payload is parsed here so that bad input is a typed
/// `InvalidInput` error instead of the runtime's deserialisation error.
pub async fn serve<I, O, F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned,
    O: Serialize,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<O, StepError>>,
{
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let input: I = serde_json::from_value(event.payload)
            .map_err(|error| StepError::InvalidInput(format!("the step input does not match: {error}")))?;
        let result = handler(input).await;
        if let Err(error) = &result {
            tracing::warn!(error_type = error.asl_name(), %error, "step failed");
        }
        result
    }))
    .await
}
