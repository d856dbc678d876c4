//! The read-exif step: the small EXIF summary kept in the metadata.

use imgflow_imaging::{ExifReport, ImageFormat, read_exif};

use crate::error::StepError;
use crate::objects::S3Objects;
use crate::validate::ValidatedImage;

/// A JPEG keeps its EXIF in an APP1 segment of at most 64 KiB near the start, so a prefix of the
/// object is enough; other formats may put it anywhere.
const JPEG_EXIF_PREFIX: u64 = 256 * 1024;

/// The Lambda handler: input is validate's output.
pub async fn handle(
    s3: &S3Objects,
    max_bytes: u64,
    keep_gps: bool,
    image: &ValidatedImage,
) -> Result<ExifReport, StepError> {
    let location = image.location();
    if image.format == ImageFormat::Jpeg && image.bytes > JPEG_EXIF_PREFIX {
        let prefix = s3.get_prefix(&location, JPEG_EXIF_PREFIX).await?;
        let report = read_exif(&prefix, keep_gps);
        if report.warnings.is_empty() {
            return Ok(report);
        }
        // A warning from a prefix may only mean the EXIF block reaches past it: read it all.
    }
    let bytes = s3.get(&location, max_bytes).await?;
    Ok(read_exif(&bytes, keep_gps))
}
