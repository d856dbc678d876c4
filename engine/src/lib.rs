//! An Amazon States Language interpreter with AWS Step Functions semantics.
pub mod jsonata;
