//! The AWS side of [`Backend`]: the standard AWS configuration, the stack's Outputs, the
//! deployed API for uploads and single reads, DynamoDB for listing.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use aws_config::BehaviorVersion;
use imgflow_steps::metadata::dynamodb::DynamoMetadataStore;
use imgflow_steps::metadata::{ImageStatus, ListQuery, MetadataStore};
use serde_json::Value;

use super::{Backend, ClientArgs, HttpApi, ImageList, ImageService, UploadAccepted};

pub(super) async fn connect(args: &ClientArgs) -> Result<Backend> {
    let config =
        aws_config::defaults(BehaviorVersion::latest()).http_client(imgflow_steps::https_client()).load().await;
    if config.region().is_none() {
        bail!("no AWS region configured: set AWS_REGION or a profile's region");
    }
    let outputs = match &args.stack {
        Some(stack) => stack_outputs(&aws_sdk_cloudformation::Client::new(&config), stack).await?,
        None => HashMap::new(),
    };
    let setting = |explicit: &Option<String>, output: &str| explicit.clone().or_else(|| outputs.get(output).cloned());
    let api = setting(&args.api_url, "ApiUrl").map(|url| HttpApi::new(&url, args.api_key.clone())).transpose()?;
    let table = setting(&args.table_name, "TableName")
        .map(|table| DynamoMetadataStore::new(aws_sdk_dynamodb::Client::new(&config), table));
    Ok(Backend {
        sfn: aws_sdk_sfn::Client::new(&config),
        images: Box::new(AwsImages { api, table }),
        description: match &args.stack {
            Some(stack) => format!("AWS stack {stack}"),
            None => "AWS".to_owned(),
        },
        state_machine_arn: setting(&args.state_machine_arn, "StateMachineArn"),
    })
}

/// The Outputs (`OutputKey` → `OutputValue`) of a CloudFormation stack.
async fn stack_outputs(client: &aws_sdk_cloudformation::Client, stack: &str) -> Result<HashMap<String, String>> {
    let answer = client
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(aws_sdk_cloudformation::Error::from)
        .with_context(|| format!("reading the Outputs of stack {stack}"))?;
    let Some(found) = answer.stacks().first() else {
        bail!("stack {stack} does not exist");
    };
    Ok(found
        .outputs()
        .iter()
        .filter_map(|output| Some((output.output_key()?.to_owned(), output.output_value()?.to_owned())))
        .collect())
}

/// Images on AWS: uploads and reads through API Gateway when its URL is known; reads and
/// listings from the table.
struct AwsImages {
    api: Option<HttpApi>,
    table: Option<DynamoMetadataStore>,
}

impl AwsImages {
    fn table(&self) -> Result<&DynamoMetadataStore> {
        self.table.as_ref().context("no ImageMetadata table: pass --table-name or --stack")
    }
}

#[async_trait]
impl ImageService for AwsImages {
    async fn upload(&self, body: Vec<u8>, content_type: &str) -> Result<UploadAccepted> {
        let api = self.api.as_ref().context("no API to upload to: pass --api-url (and --api-key) or --stack")?;
        api.upload(body, content_type).await
    }

    async fn image(&self, image_id: &str) -> Result<Option<Value>> {
        if let Some(api) = &self.api {
            return api.image(image_id).await;
        }
        let record = self.table()?.get(image_id).await.with_context(|| format!("reading image {image_id}"))?;
        record.map(|record| serde_json::to_value(record).context("serialising the image record")).transpose()
    }

    async fn list_images(
        &self,
        status: Option<ImageStatus>,
        limit: u32,
        next_token: Option<String>,
    ) -> Result<ImageList> {
        let query = ListQuery { status, limit, next_token };
        let page = self.table()?.list(&query).await.context("listing images")?;
        let items = page.items.iter().map(serde_json::to_value).collect::<Result<_, _>>()?;
        Ok(ImageList { items, next_token: page.next_token })
    }
}
