//! The Lambda steps of the imgflow state machine.
