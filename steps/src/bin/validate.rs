//! The `validate` Lambda function.
use imgflow_steps::event::ObjectCreatedEvent;
use imgflow_steps::{lambda, validate};

#[global_allocator]
static ALLOCATOR: imgflow_steps::memory::HugePageAllocator = imgflow_steps::memory::HugePageAllocator;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = lambda::Environment::load().await?;
    let s3 = &env.s3();
    let limits = &env.config.limits;
    lambda::serve(|event: ObjectCreatedEvent| async move { validate::handle(s3, limits, &event).await }).await
}
