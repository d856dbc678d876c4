//! GIF block walk: logical screen, colour tables, extensions, image data, trailer.

use crate::ImageError;

const HEADER_LENGTH: usize = 6;
const SCREEN_DESCRIPTOR_LENGTH: usize = 7;
const IMAGE_DESCRIPTOR_LENGTH: usize = 9;

fn truncated() -> ImageError {
    ImageError::invalid("GIF is truncated: the data ends before the trailer")
}

/// Size of the colour table announced by a packed field (0 when absent).
fn colour_table_length(packed: u8) -> usize {
    if packed & 0x80 == 0 { 0 } else { 3 << ((packed & 0x07) + 1) }
}

/// The logical screen size, which is what decoders render the first frame onto.
pub(crate) fn dimensions(bytes: &[u8]) -> Result<(u32, u32), ImageError> {
    match bytes.get(HEADER_LENGTH..HEADER_LENGTH + 4) {
        Some(&[w0, w1, h0, h1]) => {
            Ok((u32::from(u16::from_le_bytes([w0, w1])), u32::from(u16::from_le_bytes([h0, h1]))))
        }
        _ => Err(ImageError::invalid("GIF is truncated inside its screen descriptor")),
    }
}

/// Skips data sub-blocks (length-prefixed, ended by a zero length); returns the next position.
fn skip_sub_blocks(bytes: &[u8], mut position: usize) -> Result<usize, ImageError> {
    loop {
        let length = usize::from(*bytes.get(position).ok_or_else(truncated)?);
        position += 1;
        if length == 0 {
            return Ok(position);
        }
        position += length;
        if position > bytes.len() {
            return Err(truncated());
        }
    }
}

/// Walks every block up to the trailer; at least one image must be present.
pub(crate) fn check_structure(bytes: &[u8]) -> Result<(), ImageError> {
    let packed = *bytes.get(HEADER_LENGTH + 4).ok_or_else(truncated)?;
    let mut position = HEADER_LENGTH + SCREEN_DESCRIPTOR_LENGTH + colour_table_length(packed);
    let mut images = 0usize;
    loop {
        let introducer = *bytes.get(position).ok_or_else(truncated)?;
        position += 1;
        match introducer {
            // Extension: label byte, then sub-blocks.
            0x21 => position = skip_sub_blocks(bytes, position + 1)?,
            // Image: descriptor, optional local colour table, LZW code size, sub-blocks.
            0x2C => {
                let descriptor = bytes.get(position..position + IMAGE_DESCRIPTOR_LENGTH).ok_or_else(truncated)?;
                let local_table = colour_table_length(descriptor[8]);
                position += IMAGE_DESCRIPTOR_LENGTH + local_table + 1;
                position = skip_sub_blocks(bytes, position)?;
                images += 1;
            }
            0x3B => {
                return if images > 0 { Ok(()) } else { Err(ImageError::invalid("GIF contains no image")) };
            }
            other => {
                return Err(ImageError::invalid(format!(
                    "GIF has an unknown block type {other:#04x} at offset {}",
                    position - 1
                )));
            }
        }
    }
}
