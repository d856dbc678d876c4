//! The Pass state: `Result`, `Parameters` and `ResultPath` in JSONPath mode; `Output` in JSONata.

use serde_json::Value;

use crate::definition::{Fields, OptionalPath};
use crate::path::Path;
use crate::template::Template;

/// A Pass state.
#[derive(Debug)]
pub struct Pass {
    /// `Result`: a literal (its keys are not templates).
    pub result: Option<Value>,
    pub parameters: Option<Template>,
    pub result_path: OptionalPath,
}

impl Pass {
    pub(crate) fn parse(fields: &mut Fields) -> Pass {
        if fields.is_jsonata() {
            return Pass { result: None, parameters: None, result_path: Some(Path::whole()) };
        }
        Pass {
            result: fields.get("Result").cloned(),
            parameters: fields.template("Parameters"),
            result_path: fields.optional_path("ResultPath"),
        }
    }
}
