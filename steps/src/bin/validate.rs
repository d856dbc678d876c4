//! The `validate` Lambda function.
use imgflow_steps::event::ObjectCreatedEvent;
use imgflow_steps::{lambda, validate};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let env = lambda::Environment::load().await?;
    let s3 = env.s3();
    lambda::serve(|event: ObjectCreatedEvent| validate::handle(&s3, &env.config.limits, &event)).await
}
