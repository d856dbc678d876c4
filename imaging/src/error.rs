//! The three permanent failures an image can cause. Their names are the error types the state
//! machine matches (`Catch` → RecordRejected), so they must stay stable.

/// Why an image was refused. The payload is a human-readable explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("unsupported format: {0}")]
    UnsupportedFormat(String),
    #[error("invalid image: {0}")]
    InvalidImage(String),
    #[error("image too large: {0}")]
    ImageTooLarge(String),
}

impl ImageError {
    /// The error type string the ASL `Catch`/`Retry` clauses match.
    pub fn asl_name(&self) -> &'static str {
        match self {
            ImageError::UnsupportedFormat(_) => "UnsupportedFormat",
            ImageError::InvalidImage(_) => "InvalidImage",
            ImageError::ImageTooLarge(_) => "ImageTooLarge",
        }
    }

    /// The explanation without the variant prefix (the `Cause` of a failed state).
    pub fn message(&self) -> &str {
        match self {
            ImageError::UnsupportedFormat(message)
            | ImageError::InvalidImage(message)
            | ImageError::ImageTooLarge(message) => message,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ImageError::InvalidImage(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_messages() {
        let cases = [
            (ImageError::UnsupportedFormat("PDF document".into()), "UnsupportedFormat"),
            (ImageError::InvalidImage("PDF document".into()), "InvalidImage"),
            (ImageError::ImageTooLarge("PDF document".into()), "ImageTooLarge"),
        ];
        for (error, name) in cases {
            assert_eq!(error.asl_name(), name);
            assert_eq!(error.message(), "PDF document");
        }
        assert_eq!(ImageError::InvalidImage("truncated".into()).to_string(), "invalid image: truncated");
    }
}
