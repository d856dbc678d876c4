//! The local twin.
