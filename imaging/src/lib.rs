//! Pure image logic shared by the Lambda steps, the local twin, `imgflow process` and the
//! benchmarks: everything here takes bytes and returns values, so it is testable without S3.
//!
//! - [`format`]: the format by magic bytes.
//! - [`probe`]: dimensions and orientation from the header, limits, structural integrity.
//! - [`exif`]: the small EXIF summary kept in the metadata.
//! - [`render`]: decode once, orient, resize into renditions, encode.

pub mod error;
pub mod exif;
pub mod format;
pub mod probe;
pub mod render;
mod tiff_ifd;

pub use error::ImageError;
pub use exif::{ExifReport, ExifSummary, GpsPosition, read_exif};
pub use format::ImageFormat;
pub use probe::{Limits, Probe, probe};
pub use render::{Rendered, RenditionFormat, RenditionSpec, render};
