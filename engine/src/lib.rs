//! An Amazon States Language interpreter with AWS Step Functions semantics.
