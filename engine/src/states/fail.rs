//! The Fail state: `Error`, `Cause`, `ErrorPath`, `CausePath` (paths or intrinsic functions) and
//! their JSONata forms.

use crate::definition::{Expr, Fields};

/// A Fail state.
#[derive(Debug)]
pub struct Fail {
    pub error: Option<Expr<String>>,
    pub cause: Option<Expr<String>>,
}

impl Fail {
    pub(crate) fn parse(fields: &mut Fields) -> Fail {
        let string = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        let error = fields.expr("Error", Some("ErrorPath"), string, "a string");
        let cause = fields.expr("Cause", Some("CausePath"), string, "a string");
        Fail { error, cause }
    }
}
