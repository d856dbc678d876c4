//! WebP RIFF walk: container size, chunk bounds, bitstream headers.

use crate::ImageError;

const RIFF_HEADER_LENGTH: usize = 12;

struct Chunk<'a> {
    fourcc: [u8; 4],
    data: &'a [u8],
}

/// The end of the RIFF payload, which must lie within the data (trailing bytes are tolerated).
fn riff_end(bytes: &[u8]) -> Result<usize, ImageError> {
    let size = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if size < 4 {
        return Err(ImageError::invalid(format!("WebP RIFF size {size} is impossible")));
    }
    let end = 8 + size;
    if end > bytes.len() {
        return Err(ImageError::invalid(format!(
            "WebP is truncated: the RIFF header announces {end} bytes but there are {}",
            bytes.len()
        )));
    }
    Ok(end)
}

fn chunks(bytes: &[u8], end: usize) -> impl Iterator<Item = Result<Chunk<'_>, ImageError>> {
    let mut position = RIFF_HEADER_LENGTH;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || position >= end {
            return None;
        }
        let Some(header) = bytes.get(position..position + 8).filter(|_| position + 8 <= end) else {
            failed = true;
            return Some(Err(ImageError::invalid("WebP is truncated inside a chunk header")));
        };
        let fourcc = [header[0], header[1], header[2], header[3]];
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let data_end = position + 8 + size;
        if data_end > end {
            failed = true;
            return Some(Err(ImageError::invalid(format!(
                "WebP chunk {} runs past the end of the RIFF container",
                String::from_utf8_lossy(&fourcc)
            ))));
        }
        let data = &bytes[position + 8..data_end];
        // Chunks are padded to an even size; a missing final pad byte is tolerated.
        position = data_end + (size & 1);
        Some(Ok(Chunk { fourcc, data }))
    })
}

fn bitstream_dimensions(chunk: &Chunk<'_>) -> Result<(u32, u32), ImageError> {
    let data = chunk.data;
    match &chunk.fourcc {
        b"VP8 " => match *data {
            [tag, _, _, 0x9D, 0x01, 0x2A, w0, w1, h0, h1, ..] if tag & 1 == 0 => {
                Ok((u32::from(u16::from_le_bytes([w0, w1]) & 0x3FFF), u32::from(u16::from_le_bytes([h0, h1]) & 0x3FFF)))
            }
            _ => Err(ImageError::invalid("WebP VP8 bitstream header is malformed")),
        },
        b"VP8L" => match *data {
            [0x2F, b0, b1, b2, b3, ..] => {
                let bits = u32::from_le_bytes([b0, b1, b2, b3]);
                Ok((1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)))
            }
            _ => Err(ImageError::invalid("WebP VP8L bitstream header is malformed")),
        },
        b"VP8X" => match *data {
            [_, _, _, _, w0, w1, w2, h0, h1, h2, ..] => {
                Ok((1 + u32::from_le_bytes([w0, w1, w2, 0]), 1 + u32::from_le_bytes([h0, h1, h2, 0])))
            }
            _ => Err(ImageError::invalid("WebP VP8X header is too short")),
        },
        other => Err(ImageError::invalid(format!(
            "WebP starts with chunk {} instead of VP8, VP8L or VP8X",
            String::from_utf8_lossy(other)
        ))),
    }
}

/// The canvas size from the first chunk.
pub(crate) fn dimensions(bytes: &[u8]) -> Result<(u32, u32), ImageError> {
    let end = riff_end(bytes)?;
    let first = chunks(bytes, end).next().unwrap_or_else(|| Err(ImageError::invalid("WebP has no chunks")))?;
    bitstream_dimensions(&first)
}

/// What the walk found that later steps need.
pub(crate) struct WebpLayout<'a> {
    /// The EXIF chunk (a TIFF structure, sometimes behind an `Exif\0\0` prefix).
    pub exif: Option<&'a [u8]>,
}

/// Walks every chunk inside the RIFF container; image data must be present.
pub(crate) fn check_structure(bytes: &[u8]) -> Result<WebpLayout<'_>, ImageError> {
    let end = riff_end(bytes)?;
    let mut has_image_data = false;
    let mut exif = None;
    for chunk in chunks(bytes, end) {
        let chunk = chunk?;
        match &chunk.fourcc {
            b"VP8 " | b"VP8L" => {
                bitstream_dimensions(&chunk)?;
                has_image_data = true;
            }
            b"ANMF" => has_image_data = true,
            b"EXIF" => exif = Some(chunk.data),
            _ => {}
        }
    }
    if !has_image_data {
        return Err(ImageError::invalid("WebP has no image data (no VP8/VP8L chunk)"));
    }
    Ok(WebpLayout { exif })
}
