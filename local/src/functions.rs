//! The four step functions, called in-process by the engine for the Lambda ARNs that the local
//! substitutions of the state machine's `${…}` placeholders produce.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use imgflow_engine::{Engine, TaskError, TaskInvoker, TaskRequest, TaskTarget};
use imgflow_steps::event::ObjectCreatedEvent;
use imgflow_steps::metadata::MetadataStore;
use imgflow_steps::objects::S3Objects;
use imgflow_steps::validate::ValidatedImage;
use imgflow_steps::write_metadata::{self, FailedStateLookup};
use imgflow_steps::{StepConfig, StepError, read_exif, resize, validate};
use serde::Serialize;
use serde_json::Value;

/// The state machine's placeholders and the functions behind them.
pub const FUNCTIONS: [(&str, &str); 4] = [
    ("ValidateFunctionArn", "validate"),
    ("ReadExifFunctionArn", "read-exif"),
    ("ResizeFunctionArn", "resize"),
    ("WriteMetadataFunctionArn", "write-metadata"),
];

/// The Lambda ARN a step gets locally.
pub fn function_arn(region: &str, account: &str, function: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:function:imgflow-{function}")
}

/// The `DefinitionSubstitutions` of the local twin.
pub fn substitutions(region: &str, account: &str) -> HashMap<String, String> {
    FUNCTIONS
        .iter()
        .map(|(placeholder, function)| ((*placeholder).to_owned(), function_arn(region, account, function)))
        .collect()
}

#[derive(Debug, thiserror::Error)]
#[error("the definition uses ${{{0}}}, which has no substitution")]
pub struct MissingSubstitution(pub String);

/// Replaces every `${Name}` as CloudFormation's DefinitionSubstitutions do; a placeholder without
/// a value is an error, not a silent leftover.
pub fn substitute(definition: &str, values: &HashMap<String, String>) -> Result<String, MissingSubstitution> {
    let mut out = String::with_capacity(definition.len());
    let mut rest = definition;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let value = values.get(name).ok_or_else(|| MissingSubstitution(name.to_owned()))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Injected failures, for trying the retry, failure and replay paths on purpose. Any error name
/// works, the steps' own (`TransientError`, `InvalidImage`, …) or Lambda's (`Lambda.ServiceException`):
/// `resize=TransientError*6,validate=InternalError` makes the next six calls of resize fail with
/// `TransientError` and the next call of validate with `InternalError` (`*N` defaults to 1).
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FaultRule {
    function: String,
    error: String,
    remaining: u32,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid fault rule {0:?}: expected FUNCTION=ERROR or FUNCTION=ERROR*COUNT, FUNCTION one of validate, read-exif, resize, write-metadata"
)]
pub struct InvalidFault(pub String);

impl Faults {
    pub fn parse(spec: &str) -> Result<Faults, InvalidFault> {
        let faults = Faults::default();
        for rule in spec.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            faults.add(rule)?;
        }
        Ok(faults)
    }

    /// Adds one rule (`FUNCTION=ERROR[*COUNT]`).
    pub fn add(&self, rule: &str) -> Result<(), InvalidFault> {
        let invalid = || InvalidFault(rule.to_owned());
        let (function, error) = rule.split_once('=').ok_or_else(invalid)?;
        let (error, count) = match error.split_once('*') {
            Some((error, count)) => (error, count.trim().parse::<u32>().map_err(|_| invalid())?),
            None => (error, 1),
        };
        let (function, error) = (function.trim(), error.trim());
        if !FUNCTIONS.iter().any(|(_, f)| *f == function) || error.is_empty() || count == 0 {
            return Err(invalid());
        }
        self.lock().push(FaultRule { function: function.to_owned(), error: error.to_owned(), remaining: count });
        Ok(())
    }

    /// The error to fail this call of `function` with, if a rule says so (and counts it down).
    fn take(&self, function: &str) -> Option<String> {
        let mut rules = self.lock();
        let index = rules.iter().position(|r| r.function == function)?;
        let error = rules[index].error.clone();
        rules[index].remaining -= 1;
        if rules[index].remaining == 0 {
            rules.remove(index);
        }
        Some(error)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs the step handlers for the engine.
pub struct StepFunctions {
    pub s3: S3Objects,
    pub store: Arc<dyn MetadataStore>,
    pub failed_states: Arc<dyn FailedStateLookup>,
    pub config: StepConfig,
    pub faults: Arc<Faults>,
}

impl StepFunctions {
    async fn run(&self, function: &str, payload: Value) -> Result<Value, StepError> {
        let config = &self.config;
        match function {
            "validate" => {
                let event: ObjectCreatedEvent = parse(payload)?;
                json(validate::handle(&self.s3, &config.limits, &event).await?)
            }
            "read-exif" => {
                let image: ValidatedImage = parse(payload)?;
                json(read_exif::handle(&self.s3, config.limits.max_bytes, config.keep_gps, &image).await?)
            }
            "resize" => {
                let image: ValidatedImage = parse(payload)?;
                json(resize::handle(&self.s3, &config.limits, &config.renditions, &config.cache_control, &image).await?)
            }
            "write-metadata" => {
                json(write_metadata::handle(self.store.as_ref(), self.failed_states.as_ref(), config, payload).await?)
            }
            other => Err(StepError::InternalError(format!("no step function is called {other}"))),
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(payload: Value) -> Result<T, StepError> {
    serde_json::from_value(payload).map_err(|e| StepError::InvalidInput(format!("the step input does not match: {e}")))
}

fn json<T: Serialize>(output: T) -> Result<Value, StepError> {
    serde_json::to_value(output)
        .map_err(|e| StepError::InternalError(format!("the step output cannot be encoded: {e}")))
}

#[async_trait]
impl TaskInvoker for StepFunctions {
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError> {
        let function_ref = match &request.target {
            TaskTarget::LambdaFunction { function_arn } => function_arn.as_str(),
            TaskTarget::LambdaInvoke { function_name } => function_name.as_str(),
            TaskTarget::Other { resource } => {
                return Err(TaskError::new(
                    "States.Runtime",
                    format!("the local twin cannot run the resource '{resource}'"),
                ));
            }
        };
        // A name, a partial ARN or a full ARN: the function name is the last `:` part.
        let name = function_ref.rsplit(':').next().unwrap_or(function_ref);
        let Some(function) = name.strip_prefix("imgflow-") else {
            return Err(TaskError::new(
                "Lambda.ResourceNotFoundException",
                format!("Function not found: {function_ref}"),
            ));
        };
        self.call(function, request.payload).await
    }
}

impl StepFunctions {
    /// Invokes a step function as Lambda would (`validate`, `read-exif`, `resize`,
    /// `write-metadata`), injected faults included.
    pub async fn call(&self, function: &str, payload: Value) -> Result<Value, TaskError> {
        if let Some(error) = self.faults.take(function) {
            tracing::warn!(function, error, "injected fault");
            let payload =
                serde_json::json!({"errorType": error, "errorMessage": format!("fault injected into {function}")});
            return Err(TaskError::from_lambda_error(&payload));
        }
        self.run(function, payload).await.map_err(|error| TaskError::from_lambda_error(&error.to_lambda_error()))
    }
}

/// The twin's answer to "which state failed": the last state entered, from the engine's history.
/// The engine is set once it exists (it needs the step functions first).
#[derive(Default)]
pub struct EngineFailedStates(OnceLock<Engine>);

impl EngineFailedStates {
    pub fn set_engine(&self, engine: Engine) {
        let _ = self.0.set(engine);
    }
}

#[async_trait]
impl FailedStateLookup for EngineFailedStates {
    async fn failed_state(&self, execution_arn: &str) -> Result<Option<String>, StepError> {
        let engine = self.0.get().ok_or_else(|| StepError::InternalError("the engine is not running yet".into()))?;
        let page = engine
            .get_execution_history(execution_arn, None, None, true)
            .map_err(|e| StepError::InternalError(format!("history of {execution_arn}: {e}")))?;
        Ok(page
            .events
            .iter()
            .filter(|event| event.event_type.0.ends_with("StateEntered"))
            .max_by_key(|event| event.id)
            .and_then(|event| event.detail()?.get("name")?.as_str().map(str::to_owned)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_substituted_or_named() {
        let values = substitutions("us-east-1", "000000000000");
        let definition = r#"{"Resource": "${ValidateFunctionArn}", "Other": "${ResizeFunctionArn}"}"#;
        assert_eq!(
            substitute(definition, &values).unwrap(),
            r#"{"Resource": "arn:aws:lambda:us-east-1:000000000000:function:imgflow-validate", "Other": "arn:aws:lambda:us-east-1:000000000000:function:imgflow-resize"}"#
        );
        assert_eq!(substitute("${Nope}", &values).unwrap_err().0, "Nope");
    }

    #[test]
    fn faults_count_down_and_bad_rules_are_refused() {
        let faults = Faults::parse("resize=TransientError*2, validate=InternalError").unwrap();
        assert_eq!(faults.take("resize").as_deref(), Some("TransientError"));
        assert_eq!(faults.take("read-exif"), None);
        assert_eq!(faults.take("resize").as_deref(), Some("TransientError"));
        assert_eq!(faults.take("resize"), None);
        assert_eq!(faults.take("validate").as_deref(), Some("InternalError"));
        for bad in ["resize", "nope=TransientError", "resize=TransientError*0", "resize=*3", "resize=X*y"] {
            assert!(Faults::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_shipped_state_machine_uses_exactly_the_four_functions() {
        let definition = include_str!("../../statemachine/image-pipeline.asl.json");
        let substituted = substitute(definition, &substitutions("us-east-1", "000000000000")).unwrap();
        assert!(!substituted.contains("${"));
        for (placeholder, _) in FUNCTIONS {
            assert!(definition.contains(&format!("${{{placeholder}}}")), "{placeholder} unused");
        }
        assert!(imgflow_engine::validate(&substituted).iter().all(|d| d.severity != imgflow_engine::Severity::Error));
    }
}
