//! TIFF first-IFD checks: dimensions, and strip/tile data within the file.

use crate::ImageError;
use crate::tiff_ifd::{
    TAG_IMAGE_LENGTH, TAG_IMAGE_WIDTH, TAG_STRIP_BYTE_COUNTS, TAG_STRIP_OFFSETS, TAG_TILE_BYTE_COUNTS,
    TAG_TILE_OFFSETS, TiffStructure,
};

fn structure(bytes: &[u8]) -> Result<TiffStructure<'_>, ImageError> {
    TiffStructure::new(bytes).ok_or_else(|| ImageError::invalid("TIFF header is malformed"))
}

/// Width and height of the first image.
pub(crate) fn dimensions(bytes: &[u8]) -> Result<(u32, u32), ImageError> {
    let tiff = structure(bytes)?;
    let entries = tiff.first_ifd().map_err(ImageError::invalid)?;
    let width = tiff.single_value(&entries, TAG_IMAGE_WIDTH);
    let height = tiff.single_value(&entries, TAG_IMAGE_LENGTH);
    match (width, height) {
        (Some(width), Some(height)) => Ok((width, height)),
        _ => Err(ImageError::invalid("TIFF has no readable ImageWidth/ImageLength")),
    }
}

/// Checks that every strip (or tile) of the first image lies within the file; returns the
/// orientation tag (1 when absent or out of range).
pub(crate) fn check_structure(bytes: &[u8]) -> Result<u8, ImageError> {
    let tiff = structure(bytes)?;
    let entries = tiff.first_ifd().map_err(ImageError::invalid)?;
    let find = |tag: u16| entries.iter().find(|entry| entry.tag == tag);
    let (offsets, counts, unit) = match (
        find(TAG_STRIP_OFFSETS),
        find(TAG_STRIP_BYTE_COUNTS),
        find(TAG_TILE_OFFSETS),
        find(TAG_TILE_BYTE_COUNTS),
    ) {
        (Some(offsets), Some(counts), _, _) => (offsets, counts, "strip"),
        (_, _, Some(offsets), Some(counts)) => (offsets, counts, "tile"),
        _ => return Err(ImageError::invalid("TIFF has no strip or tile locations")),
    };
    let offsets = tiff.unsigned_values(offsets).map_err(ImageError::invalid)?;
    let counts = tiff.unsigned_values(counts).map_err(ImageError::invalid)?;
    if offsets.is_empty() || offsets.len() != counts.len() {
        return Err(ImageError::invalid(format!(
            "TIFF has {} {unit} offsets but {} byte counts",
            offsets.len(),
            counts.len()
        )));
    }
    for (index, (&offset, &count)) in offsets.iter().zip(&counts).enumerate() {
        if u64::from(offset) + u64::from(count) > bytes.len() as u64 {
            return Err(ImageError::invalid(format!(
                "TIFF is truncated: {unit} {index} ({count} bytes at offset {offset}) lies beyond \
                 the end of the file"
            )));
        }
    }
    Ok(tiff.orientation(&entries))
}
