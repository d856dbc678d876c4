//! The one error type of every step. Each variant's name is the error name the state machine
//! matches in its Retry and Catch rules, so it must never be renamed casually.

use imgflow_imaging::ImageError;
use lambda_runtime::Diagnostic;

/// A step failure. `asl_name()` is the Lambda `errorType`, which Step Functions uses as the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The bytes are not a decodable image of a supported format (permanent).
    #[error("{0}")]
    InvalidImage(String),
    /// The magic bytes name no supported format (permanent).
    #[error("{0}")]
    UnsupportedFormat(String),
    /// Over the byte or pixel limit (permanent).
    #[error("{0}")]
    ImageTooLarge(String),
    /// The uploaded object (or the version the event names) no longer exists (permanent).
    #[error("{0}")]
    ObjectNotFound(String),
    /// Throttling, 5xx or a network fault: retried by the state machine.
    #[error("{0}")]
    TransientError(String),
    /// The step got input it cannot understand: a bug or a misconfigured state machine. Neither
    /// retried nor caught, so the execution fails at this step and can be redriven once fixed.
    #[error("{0}")]
    InvalidInput(String),
    /// Anything else that a retry will not fix but a redrive after fixing the cause will
    /// (for example a missing permission or a missing table).
    #[error("{0}")]
    InternalError(String),
}

impl StepError {
    /// The error name as the ASL sees it.
    pub fn asl_name(&self) -> &'static str {
        match self {
            StepError::InvalidImage(_) => "InvalidImage",
            StepError::UnsupportedFormat(_) => "UnsupportedFormat",
            StepError::ImageTooLarge(_) => "ImageTooLarge",
            StepError::ObjectNotFound(_) => "ObjectNotFound",
            StepError::TransientError(_) => "TransientError",
            StepError::InvalidInput(_) => "InvalidInput",
            StepError::InternalError(_) => "InternalError",
        }
    }

    /// Permanent errors describe the upload itself: the state machine records them as REJECTED.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            StepError::InvalidImage(_)
                | StepError::UnsupportedFormat(_)
                | StepError::ImageTooLarge(_)
                | StepError::ObjectNotFound(_)
        )
    }

    /// The Lambda error payload (`{"errorType", "errorMessage"}`) that Step Functions receives.
    pub fn to_lambda_error(&self) -> serde_json::Value {
        serde_json::json!({ "errorType": self.asl_name(), "errorMessage": self.to_string() })
    }
}

impl From<ImageError> for StepError {
    fn from(error: ImageError) -> Self {
        let message = error.to_string();
        match error {
            ImageError::UnsupportedFormat(_) => StepError::UnsupportedFormat(message),
            ImageError::InvalidImage(_) => StepError::InvalidImage(message),
            ImageError::ImageTooLarge(_) => StepError::ImageTooLarge(message),
        }
    }
}

impl From<StepError> for Diagnostic {
    fn from(error: StepError) -> Self {
        Diagnostic { error_type: error.asl_name().to_owned(), error_message: error.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_error_type_is_the_asl_name() {
        // This is the JSON lambda_runtime posts to the Runtime API's /error endpoint.
        let diagnostic = Diagnostic::from(StepError::InvalidImage("truncated JPEG".into()));
        assert_eq!(
            serde_json::to_value(&diagnostic).unwrap(),
            serde_json::json!({"errorType": "InvalidImage", "errorMessage": "truncated JPEG"})
        );
        let transient = Diagnostic::from(StepError::TransientError("SlowDown".into()));
        assert_eq!(transient.error_type, "TransientError");
    }

    #[test]
    fn image_errors_keep_their_names() {
        for (image_error, name) in [
            (ImageError::UnsupportedFormat("PDF".into()), "UnsupportedFormat"),
            (ImageError::InvalidImage("bad".into()), "InvalidImage"),
            (ImageError::ImageTooLarge("big".into()), "ImageTooLarge"),
        ] {
            let step_error = StepError::from(image_error);
            assert_eq!(step_error.asl_name(), name);
            assert!(step_error.is_rejection());
        }
        assert!(!StepError::TransientError("x".into()).is_rejection());
    }
}
