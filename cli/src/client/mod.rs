//! Where the client commands (upload, executions, replay, images) send their requests: the local
//! twin (`imgflow serve`) by default, or an AWS deployment with `--aws`.
//!
//! One [`Backend`] serves both. The Step Functions side is the same code for both (aws-sdk-sfn,
//! pointed at the twin's URL with dummy credentials or at AWS with the standard configuration);
//! only the image side differs, behind [`ImageService`]: the twin answers every image request
//! over HTTP, while on AWS uploads and single reads go through the deployed API and listing goes
//! to DynamoDB (the API has no list route).

mod aws;
mod http;
pub mod sfn;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use clap::{Args, ValueEnum};
use imgflow_steps::metadata::ImageStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::http::HttpApi;

/// The twin's address when nothing else is said (`imgflow serve`'s default).
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4566";

/// The name the twin gives the pipeline's state machine.
pub const PIPELINE_NAME: &str = "imgflow-image-pipeline";

/// The options every client command shares: where to connect and how to print.
#[derive(Args, Clone, Debug)]
pub struct ClientArgs {
    /// The local twin's URL (`imgflow serve`).
    #[arg(long, env = "IMGFLOW_ENDPOINT", default_value = DEFAULT_ENDPOINT, global = true)]
    pub endpoint: String,
    /// Talk to an AWS deployment instead of the twin, with the standard AWS configuration
    /// (profiles, environment variables, AWS_ENDPOINT_URL).
    #[arg(long, global = true)]
    pub aws: bool,
    /// With --aws: the CloudFormation stack whose Outputs name the API, table and state machine.
    #[arg(long, global = true)]
    pub stack: Option<String>,
    /// With --aws: the pipeline's state machine (overrides the stack's StateMachineArn).
    #[arg(long, global = true)]
    pub state_machine_arn: Option<String>,
    /// With --aws: the API's base URL (overrides the stack's ApiUrl).
    #[arg(long, global = true)]
    pub api_url: Option<String>,
    /// With --aws: the API key sent as `x-api-key`.
    #[arg(long, env = "IMGFLOW_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// With --aws: the ImageMetadata table (overrides the stack's TableName).
    #[arg(long, global = true)]
    pub table_name: Option<String>,
    /// How results are printed.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table, global = true)]
    pub output: OutputFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// JSON on stdout for scripts.
    Json,
}

/// An image status as the CLI accepts it (`--status failed`).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ImageStatusArg {
    Succeeded,
    Rejected,
    Failed,
}

impl From<ImageStatusArg> for ImageStatus {
    fn from(status: ImageStatusArg) -> Self {
        match status {
            ImageStatusArg::Succeeded => ImageStatus::Succeeded,
            ImageStatusArg::Rejected => ImageStatus::Rejected,
            ImageStatusArg::Failed => ImageStatus::Failed,
        }
    }
}

/// The answer to an accepted upload (`202`), from the twin or the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadAccepted {
    pub image_id: String,
    pub key: String,
    /// The twin starts the execution itself and names it; API Gateway cannot know it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
}

/// A page of image metadata items, newest first. Items stay JSON so that `--output json`
/// passes on every field the server sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageList {
    pub items: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// The image side of a deployment.
#[async_trait]
pub trait ImageService: Send + Sync {
    /// Uploads one image; the pipeline starts from the stored object.
    async fn upload(&self, body: Vec<u8>, content_type: &str) -> Result<UploadAccepted>;
    /// The metadata item of one image, or `None` when the image is unknown (on AWS: also while
    /// it is still being processed).
    async fn image(&self, image_id: &str) -> Result<Option<Value>>;
    /// One page of metadata items.
    async fn list_images(
        &self,
        status: Option<ImageStatus>,
        limit: u32,
        next_token: Option<String>,
    ) -> Result<ImageList>;
}

/// The twin answers everything over its own HTTP API.
#[async_trait]
impl ImageService for HttpApi {
    async fn upload(&self, body: Vec<u8>, content_type: &str) -> Result<UploadAccepted> {
        HttpApi::upload(self, body, content_type).await
    }

    async fn image(&self, image_id: &str) -> Result<Option<Value>> {
        HttpApi::image(self, image_id).await
    }

    async fn list_images(
        &self,
        status: Option<ImageStatus>,
        limit: u32,
        next_token: Option<String>,
    ) -> Result<ImageList> {
        HttpApi::list_images(self, status, limit, next_token).await
    }
}

/// A connection to the twin or to AWS.
pub struct Backend {
    pub sfn: aws_sdk_sfn::Client,
    pub images: Box<dyn ImageService>,
    /// What to call the deployment in messages (the twin's URL, or "AWS").
    pub description: String,
    state_machine_arn: Option<String>,
}

impl Backend {
    /// Connects as `args` say. Nothing is requested yet, except the stack's Outputs with --stack.
    pub async fn connect(args: &ClientArgs) -> Result<Backend> {
        if args.aws {
            aws::connect(args).await
        } else {
            let aws_only = [
                ("--stack", args.stack.is_some()),
                ("--state-machine-arn", args.state_machine_arn.is_some()),
                ("--api-url", args.api_url.is_some()),
                ("--table-name", args.table_name.is_some()),
            ];
            if let Some((flag, _)) = aws_only.iter().find(|(_, given)| *given) {
                bail!("{flag} applies to AWS: add --aws (without it, imgflow talks to the twin at --endpoint)");
            }
            Ok(twin(&args.endpoint)?)
        }
    }

    /// The pipeline's state machine: as configured, or else the one named
    /// [`PIPELINE_NAME`] that ListStateMachines finds.
    pub async fn state_machine_arn(&self) -> Result<String> {
        if let Some(arn) = &self.state_machine_arn {
            return Ok(arn.clone());
        }
        let mut pages = self.sfn.list_state_machines().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.with_context(|| format!("listing the state machines of {}", self.description))?;
            if let Some(machine) = page.state_machines().iter().find(|m| m.name() == PIPELINE_NAME) {
                return Ok(machine.state_machine_arn().to_owned());
            }
        }
        bail!(
            "{} has no state machine named {PIPELINE_NAME}; pass --state-machine-arn or --stack (with --aws)",
            self.description
        )
    }
}

/// The twin at `endpoint`: its HTTP API and its Step Functions endpoint on the same address.
fn twin(endpoint: &str) -> Result<Backend> {
    let api = HttpApi::new(endpoint, None)?;
    // The twin accepts any signature; the SDK insists on signing with something.
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(aws_sdk_sfn::config::BehaviorVersion::latest())
        .region(aws_sdk_sfn::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sfn::config::Credentials::new("test", "test", None, None, "imgflow-twin"))
        .endpoint_url(api.base_url())
        .http_client(imgflow_steps::https_client())
        .build();
    Ok(Backend {
        sfn: aws_sdk_sfn::Client::from_conf(config),
        description: format!("the twin at {}", api.base_url()),
        images: Box::new(api),
        state_machine_arn: None,
    })
}
