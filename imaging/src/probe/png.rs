//! PNG chunk walk: IHDR first, sane lengths, at least one IDAT, IEND.

use crate::ImageError;

const SIGNATURE_LENGTH: usize = 8;
/// PNG limits chunk lengths and dimensions to 2^31 - 1.
const MAX_PNG_VALUE: u32 = i32::MAX as u32;

struct Chunk<'a> {
    kind: [u8; 4],
    data: &'a [u8],
}

/// Chunks in file order; an error when a chunk does not fit in the data.
fn chunks(bytes: &[u8]) -> impl Iterator<Item = Result<Chunk<'_>, ImageError>> {
    let mut position = SIGNATURE_LENGTH;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || position == bytes.len() {
            return None;
        }
        let chunk = read_chunk(bytes, position);
        match &chunk {
            Ok((_, next)) => position = *next,
            Err(_) => failed = true,
        }
        Some(chunk.map(|(chunk, _)| chunk))
    })
}

fn read_chunk(bytes: &[u8], position: usize) -> Result<(Chunk<'_>, usize), ImageError> {
    let header = bytes
        .get(position..position + 8)
        .ok_or_else(|| ImageError::invalid("PNG is truncated inside a chunk header"))?;
    let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let kind = [header[4], header[5], header[6], header[7]];
    if length > MAX_PNG_VALUE {
        return Err(ImageError::invalid(format!("PNG chunk length {length} is impossible")));
    }
    if !kind.iter().all(u8::is_ascii_alphabetic) {
        return Err(ImageError::invalid(format!(
            "PNG chunk type {kind:02x?} at offset {position} is not a chunk name"
        )));
    }
    let data_start = position + 8;
    let data_end = data_start + length as usize;
    // The data is followed by a 4-byte CRC.
    if data_end + 4 > bytes.len() {
        return Err(ImageError::invalid(format!(
            "PNG is truncated inside the {} chunk",
            String::from_utf8_lossy(&kind)
        )));
    }
    Ok((Chunk { kind, data: &bytes[data_start..data_end] }, data_end + 4))
}

/// Width and height from IHDR, which must be the first chunk.
pub(crate) fn dimensions(bytes: &[u8]) -> Result<(u32, u32), ImageError> {
    let first = chunks(bytes).next().unwrap_or_else(|| Err(ImageError::invalid("PNG has no chunks")))?;
    if &first.kind != b"IHDR" || first.data.len() != 13 {
        return Err(ImageError::invalid("PNG does not start with a valid IHDR chunk"));
    }
    let data = first.data;
    let width = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    let height = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    if width > MAX_PNG_VALUE || height > MAX_PNG_VALUE {
        return Err(ImageError::invalid(format!("PNG dimensions {width}x{height} are impossible")));
    }
    let (bit_depth, colour_type) = (data[8], data[9]);
    let valid_depths: &[u8] = match colour_type {
        0 => &[1, 2, 4, 8, 16],
        3 => &[1, 2, 4, 8],
        2 | 4 | 6 => &[8, 16],
        _ => &[],
    };
    if !valid_depths.contains(&bit_depth) {
        return Err(ImageError::invalid(format!(
            "PNG colour type {colour_type} with bit depth {bit_depth} is not allowed"
        )));
    }
    Ok((width, height))
}

/// What the walk found that later steps need.
pub(crate) struct PngLayout<'a> {
    /// The eXIf chunk (a TIFF structure).
    pub exif: Option<&'a [u8]>,
}

/// Walks every chunk up to IEND (anything after IEND is ignored).
pub(crate) fn check_structure(bytes: &[u8]) -> Result<PngLayout<'_>, ImageError> {
    let mut has_image_data = false;
    let mut exif = None;
    for chunk in chunks(bytes) {
        let chunk = chunk?;
        match &chunk.kind {
            b"IDAT" => has_image_data = true,
            b"eXIf" => exif = Some(chunk.data),
            b"IEND" => {
                return if has_image_data {
                    Ok(PngLayout { exif })
                } else {
                    Err(ImageError::invalid("PNG has no image data (no IDAT chunk)"))
                };
            }
            _ => {}
        }
    }
    Err(ImageError::invalid("PNG is truncated: the data ends before the IEND chunk"))
}
