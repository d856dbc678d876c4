//! Validation diagnostics, shaped like the answer of ValidateStateMachineDefinition.

use serde::{Deserialize, Serialize};

/// How serious a diagnostic is. Only errors make a definition invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// AWS's diagnostic code, e.g. `SCHEMA_VALIDATION_FAILED`, `INVALID_JSON_DESCRIPTION`.
    pub code: String,
    pub message: String,
    /// Where in the definition, as a JSON pointer (`/States/Start/Next`).
    pub location: String,
}

/// The diagnostic codes the engine emits (a subset of AWS's list).
pub mod codes {
    pub const INVALID_JSON_DESCRIPTION: &str = "INVALID_JSON_DESCRIPTION";
    pub const MISSING_DESCRIPTION: &str = "MISSING_DESCRIPTION";
    pub const SCHEMA_VALIDATION_FAILED: &str = "SCHEMA_VALIDATION_FAILED";
    pub const INVALID_RESOURCE: &str = "INVALID_RESOURCE";
    pub const MISSING_END_STATE: &str = "MISSING_END_STATE";
    pub const INVALID_STATE_NAME: &str = "INVALID_STATE_NAME";
    pub const NO_DOLLAR: &str = "NO_DOLLAR";
}

impl Diagnostic {
    pub fn error(code: &str, message: impl Into<String>, location: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code: code.to_owned(),
            message: message.into(),
            location: location.into(),
        }
    }

    pub fn warning(code: &str, message: impl Into<String>, location: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            code: code.to_owned(),
            message: message.into(),
            location: location.into(),
        }
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity} {} at {}: {}", self.code, self.location, self.message)
    }
}

/// Escapes one JSON-pointer reference token (`~` → `~0`, `/` → `~1`).
pub fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Validates a definition given as JSON text: errors, or the warnings of a valid definition.
pub fn validate(definition: &str) -> Vec<Diagnostic> {
    match crate::definition::Definition::parse(definition) {
        Ok(parsed) => parsed.warnings().to_vec(),
        Err(diagnostics) => diagnostics,
    }
}

/// Whether a list of diagnostics contains an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(|d| d.severity == Severity::Error)
}
