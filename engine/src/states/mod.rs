//! One module per state type, following the States Language specification.

pub mod choice;
pub mod fail;
pub mod map;
pub mod parallel;
pub mod pass;
pub mod task;
pub mod wait;
