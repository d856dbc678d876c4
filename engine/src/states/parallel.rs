//! The Parallel state: branches run concurrently; the result is the array of branch outputs.

use serde_json::Value;

use crate::definition::{Fields, Machine, ResultHandling, parse_machine};
use crate::states::task::{parse_handling, parse_payload};
use crate::template::Template;

/// A Parallel state.
#[derive(Debug)]
pub struct Parallel {
    pub branches: Vec<Machine>,
    /// JSONPath `Parameters`.
    pub parameters: Option<Template>,
    /// JSONata `Arguments`.
    pub arguments: Option<Value>,
    pub handling: ResultHandling,
}

impl Parallel {
    pub(crate) fn parse(fields: &mut Fields) -> Parallel {
        let mut branches = Vec::new();
        match fields.get("Branches") {
            Some(Value::Array(items)) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    let location = format!("{}/Branches/{i}", fields.location);
                    match item.as_object() {
                        Some(object) => {
                            branches.push(parse_machine(object, &location, fields.query_language, fields.diagnostics))
                        }
                        None => fields.error("Branches", "Each branch must be an object"),
                    }
                }
            }
            _ => fields.error_here("Branches must be a non-empty array"),
        }
        let (parameters, arguments) = parse_payload(fields);
        let handling = parse_handling(fields);
        Parallel { branches, parameters, arguments, handling }
    }
}
