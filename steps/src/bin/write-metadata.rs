//! The `write-metadata` Lambda function.
use imgflow_steps::lambda;
use imgflow_steps::metadata::dynamodb::DynamoMetadataStore;
use imgflow_steps::write_metadata::{self, SfnFailedStateLookup};

#[global_allocator]
static ALLOCATOR: imgflow_steps::memory::HugePageAllocator = imgflow_steps::memory::HugePageAllocator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = lambda::Environment::load().await?;
    let store = DynamoMetadataStore::new(aws_sdk_dynamodb::Client::new(&env.aws), env.config.table_name.clone());
    let lookup = SfnFailedStateLookup::new(aws_sdk_sfn::Client::new(&env.aws));
    let (store, lookup, config) = (&store, &lookup, &env.config);
    lambda::serve(|input: serde_json::Value| async move { write_metadata::handle(store, lookup, config, input).await })
        .await
}
