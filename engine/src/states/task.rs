//! The Task state: resources, payloads, the `lambda:invoke` wrapper, timeouts.

use serde_json::{Map, Value, json};

use crate::definition::{Expr, Fields, ResultHandling};
use crate::invoker::TaskTarget;
use crate::retry;
use crate::template::Template;

/// The service integration that invokes Lambda with the Payload/StatusCode wrapper.
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";

/// A Task state.
#[derive(Debug)]
pub struct Task {
    pub resource: String,
    /// JSONPath `Parameters`.
    pub parameters: Option<Template>,
    /// JSONata `Arguments`.
    pub arguments: Option<Value>,
    pub timeout_seconds: Option<Expr<u64>>,
    pub heartbeat_seconds: Option<Expr<u64>>,
    pub handling: ResultHandling,
}

impl Task {
    pub(crate) fn parse(fields: &mut Fields) -> Task {
        let resource = fields.required_string("Resource").unwrap_or_default();
        if !resource.is_empty() && !resource.starts_with("arn:") {
            let location = fields.at("Resource");
            fields.diagnostics.push(crate::validation::Diagnostic::error(
                crate::validation::codes::INVALID_RESOURCE,
                format!("The resource '{resource}' is not an ARN"),
                location,
            ));
        }
        let positive = |v: &Value| v.as_u64().filter(|n| *n > 0);
        let timeout_seconds = fields.expr("TimeoutSeconds", Some("TimeoutSecondsPath"), positive, "a positive integer");
        let heartbeat_seconds =
            fields.expr("HeartbeatSeconds", Some("HeartbeatSecondsPath"), positive, "a positive integer");
        if let (Some(Expr::Literal(t)), Some(Expr::Literal(h))) = (&timeout_seconds, &heartbeat_seconds)
            && h >= t
        {
            fields.error("HeartbeatSeconds", "HeartbeatSeconds must be smaller than TimeoutSeconds");
        }
        fields.get("Credentials");
        let (parameters, arguments) = parse_payload(fields);
        let handling = parse_handling(fields);
        Task { resource, parameters, arguments, timeout_seconds, heartbeat_seconds, handling }
    }

    /// What the resource asks for, given the effective payload.
    pub fn target(&self, payload: &Value) -> Result<TaskTarget, String> {
        if self.resource == LAMBDA_INVOKE || self.resource.starts_with("arn:aws:states:::lambda:invoke") {
            return match payload.get("FunctionName") {
                Some(Value::String(name)) => Ok(TaskTarget::LambdaInvoke { function_name: name.clone() }),
                _ => Err(format!("The field 'FunctionName' is required by the resource '{}'", self.resource)),
            };
        }
        let parts: Vec<&str> = self.resource.split(':').collect();
        if parts.len() >= 7 && parts[2] == "lambda" && parts[5] == "function" {
            return Ok(TaskTarget::LambdaFunction { function_arn: self.resource.clone() });
        }
        Ok(TaskTarget::Other { resource: self.resource.clone() })
    }
}

/// Reads the payload field: JSONPath `Parameters` or JSONata `Arguments`.
pub(crate) fn parse_payload(fields: &mut Fields) -> (Option<Template>, Option<Value>) {
    if fields.is_jsonata() {
        (None, fields.jsonata_template("Arguments"))
    } else {
        (fields.template("Parameters"), None)
    }
}

/// Reads the result and error handling shared by Task, Parallel and Map.
pub(crate) fn parse_handling(fields: &mut Fields) -> ResultHandling {
    let (retry, catch) = retry::parse(fields);
    if fields.is_jsonata() {
        ResultHandling { result_selector: None, result_path: Some(crate::path::Path::whole()), retry, catch }
    } else {
        ResultHandling {
            result_selector: fields.template("ResultSelector"),
            result_path: fields.optional_path("ResultPath"),
            retry,
            catch,
        }
    }
}

/// The event a `lambda:invoke` function receives: `Payload`, or `{}` when it is null or absent.
pub fn lambda_invoke_event(parameters: &Value) -> Value {
    match parameters.get("Payload") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(payload) => payload.clone(),
    }
}

/// The result of `lambda:invoke` around the function's return value.
pub fn lambda_invoke_result(payload: Value, request_id: &str) -> Value {
    json!({
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {
                "X-Amz-Executed-Version": ["$LATEST"],
                "x-amzn-Remapped-Content-Length": ["0"],
                "Connection": ["keep-alive"],
                "x-amzn-RequestId": [request_id],
                "Content-Type": ["application/json"],
                "X-Amzn-Trace-Id": ["Root=1-00000000-000000000000000000000000;Sampled=0"],
            },
            "HttpHeaders": {
                "Connection": "keep-alive",
                "Content-Type": "application/json",
                "X-Amz-Executed-Version": "$LATEST",
                "x-amzn-Remapped-Content-Length": "0",
                "x-amzn-RequestId": request_id,
                "X-Amzn-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
            },
            "HttpStatusCode": 200
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(resource: &str) -> Task {
        Task {
            resource: resource.into(),
            parameters: None,
            arguments: None,
            timeout_seconds: None,
            heartbeat_seconds: None,
            handling: ResultHandling::default(),
        }
    }

    #[test]
    fn resources_are_classified() {
        assert_eq!(
            task("arn:aws:lambda:us-east-1:1:function:f").target(&json!({})).unwrap(),
            TaskTarget::LambdaFunction { function_arn: "arn:aws:lambda:us-east-1:1:function:f".into() }
        );
        assert_eq!(
            task(LAMBDA_INVOKE).target(&json!({"FunctionName": "f"})).unwrap(),
            TaskTarget::LambdaInvoke { function_name: "f".into() }
        );
        assert!(task(LAMBDA_INVOKE).target(&json!({})).is_err());
        assert_eq!(lambda_invoke_event(&json!({"Payload": null})), json!({}));
    }
}
