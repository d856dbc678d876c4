//! The `resize` Lambda function.
use imgflow_steps::validate::ValidatedImage;
use imgflow_steps::{lambda, resize};

#[global_allocator]
static ALLOCATOR: imgflow_steps::memory::HugePageAllocator = imgflow_steps::memory::HugePageAllocator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = lambda::Environment::load().await?;
    let s3 = &env.s3();
    let config = &env.config;
    lambda::serve(|image: ValidatedImage| async move {
        resize::handle(s3, &config.limits, &config.renditions, &config.cache_control, &image).await
    })
    .await
}
