//! What the four Lambda binaries share: configuration, AWS clients, logging, and the runtime
//! loop that turns a handler's `StepError` into a Lambda error whose `errorType` is the ASL name.

use std::future::Future;

use aws_config::environment::{EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider};
use aws_config::meta::region::ProvideRegion;
use aws_sdk_s3::config::SharedCredentialsProvider;
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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
        crate::memory::reuse_freed_memory();
        let config = StepConfig::from_env()?;
        let aws = lambda_sdk_config().await?;
        Ok(Environment { config, aws })
    }

    pub fn s3(&self) -> crate::objects::S3Objects {
        crate::objects::S3Objects::new(aws_sdk_s3::Client::new(&self.aws))
    }
}

/// The SDK configuration from what the Lambda runtime sets: the region (`AWS_REGION`), the
/// execution role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`) and, when set, `AWS_ENDPOINT_URL`. `aws_config::defaults(..).load()`
/// would find the same values but link its whole provider chain (profiles, SSO, STS, web
/// identity, ECS, IMDS) into every Lambda binary, about 0.3 MB that a Lambda never runs.
async fn lambda_sdk_config() -> Result<aws_config::SdkConfig, lambda_runtime::Error> {
    let region = EnvironmentVariableRegionProvider::new()
        .region()
        .await
        .ok_or("neither AWS_REGION nor AWS_DEFAULT_REGION is set (the Lambda runtime sets AWS_REGION)")?;
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(region)
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
        .http_client(crate::https_client());
    builder.set_endpoint_url(std::env::var("AWS_ENDPOINT_URL").ok());
    Ok(builder.build())
}

/// JSON logs, one object per line, as CloudWatch Logs Insights reads them. `RUST_LOG` filters
/// with `target=level` lists (`Targets`: `EnvFilter`'s span and field filters would bring a regex
/// engine into every Lambda binary).
fn init_tracing() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(Level::INFO));
    let logs = tracing_subscriber::fmt::layer().json().with_current_span(false).without_time();
    // The runtime may already have a subscriber in tests; a second init is not an error worth failing on.
    let _ = tracing_subscriber::registry().with(logs).with(filter).try_init();
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

#[cfg(test)]
mod tests {
    use aws_sdk_s3::config::ProvideCredentials;

    use super::*;

    /// Which case a child process of `the_sdk_config_is_the_lambda_environment` checks.
    const CASE: &str = "IMGFLOW_LAMBDA_CONFIG_CASE";

    /// The environment is the process's: each case runs in a child process of this test binary,
    /// with its variables set there, running this same test.
    #[tokio::test]
    async fn the_sdk_config_is_the_lambda_environment() {
        match std::env::var(CASE).as_deref() {
            Ok("lambda") => {
                let config = lambda_sdk_config().await.unwrap();
                assert_eq!(config.region().map(|region| region.as_ref()), Some("eu-west-3"));
                assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:4566"));
                let credentials = config.credentials_provider().unwrap().provide_credentials().await.unwrap();
                assert_eq!(
                    (credentials.access_key_id(), credentials.secret_access_key(), credentials.session_token()),
                    ("AKIDLAMBDA", "lambda-secret", Some("lambda-session"))
                );
                return;
            }
            Ok("no-region") => {
                let error = lambda_sdk_config().await.unwrap_err();
                assert!(error.to_string().contains("AWS_REGION"), "{error}");
                return;
            }
            _ => {}
        }
        let run = |case: &str, variables: &[(&str, &str)]| {
            let mut child = std::process::Command::new(std::env::current_exe().unwrap());
            child.args(["--exact", "lambda::tests::the_sdk_config_is_the_lambda_environment"]);
            for name in [
                "AWS_REGION",
                "AWS_DEFAULT_REGION",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_ENDPOINT_URL",
            ] {
                child.env_remove(name);
            }
            let output = child.env(CASE, case).envs(variables.iter().copied()).output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            // Passed, and ran: a filter that matched nothing would pass too.
            assert!(output.status.success() && stdout.contains("1 passed"), "{case}: {stdout}");
        };
        run(
            "lambda",
            &[
                ("AWS_REGION", "eu-west-3"),
                ("AWS_ACCESS_KEY_ID", "AKIDLAMBDA"),
                ("AWS_SECRET_ACCESS_KEY", "lambda-secret"),
                ("AWS_SESSION_TOKEN", "lambda-session"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ],
        );
        run("no-region", &[]);
    }
}
