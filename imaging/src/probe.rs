//! Header-only facts about an upload, checked before any pixel is decoded: size limits, format,
//! dimensions, structural integrity (truncation, corrupt containers) and EXIF orientation.

mod gif;
pub(crate) mod jpeg;
mod png;
mod tiff;
mod webp;

use serde::{Deserialize, Serialize};

use crate::tiff_ifd::exif_orientation;
use crate::{ImageError, ImageFormat};

/// Upper bounds on what we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Maximum file size in bytes.
    pub max_bytes: u64,
    /// Maximum stored width × height, refused before decoding (decompression bombs).
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 50_000_000, max_pixels: 50_000_000 }
    }
}

/// What the header says about an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub format: ImageFormat,
    /// Pixel size as stored, before orientation.
    pub stored_width: u32,
    pub stored_height: u32,
    /// EXIF orientation 1..=8; 1 when absent or unreadable.
    pub orientation: u8,
    /// Pixel size as displayed, after orientation.
    pub width: u32,
    pub height: u32,
}

impl Probe {
    /// Whether displaying the image swaps its width and height (EXIF orientations 5–8).
    pub fn swaps_dimensions(&self) -> bool {
        orientation_swaps_dimensions(self.orientation)
    }
}

pub(crate) fn orientation_swaps_dimensions(orientation: u8) -> bool {
    matches!(orientation, 5..=8)
}

/// Checks, in this order: byte limit, format (magic bytes), header dimensions, pixel limit,
/// structural integrity, then reads the orientation. Nothing here decodes pixels, so a header
/// claiming 100000×100000 is refused without allocating anything.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe, ImageError> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(ImageError::ImageTooLarge(format!(
            "{} bytes exceeds the limit of {} bytes",
            bytes.len(),
            limits.max_bytes
        )));
    }
    let format = ImageFormat::sniff(bytes)?;
    let (stored_width, stored_height) = match format {
        ImageFormat::Jpeg => jpeg::dimensions(bytes),
        ImageFormat::Png => png::dimensions(bytes),
        ImageFormat::Webp => webp::dimensions(bytes),
        ImageFormat::Gif => gif::dimensions(bytes),
        ImageFormat::Tiff => tiff::dimensions(bytes),
    }?;
    if stored_width == 0 || stored_height == 0 {
        return Err(ImageError::invalid(format!(
            "{format} header declares an empty image ({stored_width}x{stored_height})"
        )));
    }
    let pixels = u64::from(stored_width) * u64::from(stored_height);
    if pixels > limits.max_pixels {
        return Err(ImageError::ImageTooLarge(format!(
            "{stored_width}x{stored_height} is {pixels} pixels, more than the limit of {}",
            limits.max_pixels
        )));
    }
    let orientation = match format {
        ImageFormat::Jpeg => jpeg::check_structure(bytes)?.exif.map_or(1, exif_orientation),
        ImageFormat::Png => png::check_structure(bytes)?.exif.map_or(1, exif_orientation),
        ImageFormat::Webp => webp::check_structure(bytes)?.exif.map_or(1, exif_orientation),
        ImageFormat::Gif => {
            gif::check_structure(bytes)?;
            1
        }
        ImageFormat::Tiff => tiff::check_structure(bytes)?,
    };
    let (width, height) = if orientation_swaps_dimensions(orientation) {
        (stored_height, stored_width)
    } else {
        (stored_width, stored_height)
    };
    Ok(Probe { format, stored_width, stored_height, orientation, width, height })
}
