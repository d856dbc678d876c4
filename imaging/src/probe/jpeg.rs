//! JPEG marker walk: frame header, APP segments, scans, EOI. No entropy decoding.

use crate::ImageError;

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const APP1: u8 = 0xE1;
const APP14: u8 = 0xEE;

/// One marker segment (standalone markers have an empty payload).
pub(crate) struct Segment<'a> {
    pub marker: u8,
    pub payload: &'a [u8],
}

/// Marker segments in file order, skipping the entropy-coded data after each SOS, ending with
/// EOI. Data that ends first is an error (truncated file). Stray bytes between segments are
/// skipped, as libjpeg does, because real encoders leave them.
pub(crate) struct Segments<'a> {
    bytes: &'a [u8],
    position: usize,
    in_scan: bool,
    finished: bool,
}

pub(crate) fn segments(bytes: &[u8]) -> Segments<'_> {
    // The caller sniffed FF D8 FF, so the walk starts right after SOI.
    Segments { bytes, position: 2, in_scan: false, finished: false }
}

impl<'a> Segments<'a> {
    /// Advances to the next marker byte (the byte after 0xFF and any fill bytes).
    fn next_marker(&mut self) -> Result<u8, ImageError> {
        let bytes = self.bytes;
        let mut at = self.position;
        loop {
            let Some(offset) = find_ff(&bytes[at.min(bytes.len())..]) else {
                return Err(ImageError::invalid(if self.in_scan {
                    "JPEG is truncated: the data ends inside a scan, before the EOI marker"
                } else {
                    "JPEG is truncated: the data ends before the EOI marker"
                }));
            };
            at += offset;
            while bytes.get(at) == Some(&0xFF) {
                at += 1;
            }
            let Some(&marker) = bytes.get(at) else {
                return Err(ImageError::invalid("JPEG is truncated: the data ends before the EOI marker"));
            };
            // Inside scan data, FF 00 is an escaped data byte and RSTn are restart markers.
            if self.in_scan && (marker == 0x00 || (0xD0..=0xD7).contains(&marker)) {
                at += 1;
                continue;
            }
            self.position = at + 1;
            return Ok(marker);
        }
    }

    fn read_segment(&mut self) -> Result<Segment<'a>, ImageError> {
        loop {
            let marker = self.next_marker()?;
            match marker {
                EOI => {
                    self.finished = true;
                    return Ok(Segment { marker, payload: &[] });
                }
                SOI => return Err(ImageError::invalid("JPEG has a second SOI marker")),
                0x00 | 0x01 | 0xD0..=0xD7 => continue,
                _ => {}
            }
            let start = self.position;
            let length = match self.bytes.get(start..start + 2) {
                Some(&[high, low]) => usize::from(u16::from_be_bytes([high, low])),
                _ => return Err(ImageError::invalid("JPEG is truncated inside a marker segment")),
            };
            if length < 2 {
                return Err(ImageError::invalid(format!(
                    "JPEG marker {marker:#04X} has an impossible length {length}"
                )));
            }
            let end = start + length;
            if end > self.bytes.len() {
                return Err(ImageError::invalid(format!("JPEG is truncated inside marker segment {marker:#04X}")));
            }
            self.position = end;
            self.in_scan = marker == SOS;
            return Ok(Segment { marker, payload: &self.bytes[start + 2..end] });
        }
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = Result<Segment<'a>, ImageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let result = self.read_segment();
        if result.is_err() {
            self.finished = true;
        }
        Some(result)
    }
}

fn is_frame_header(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// The frame header (SOFn): coding process, sample precision, sizes, components.
pub(crate) struct Frame {
    marker: u8,
    pub precision: u8,
    pub width: u32,
    pub height: u32,
    pub components: u8,
}

fn parse_frame(segment: &Segment<'_>) -> Result<Frame, ImageError> {
    match *segment.payload {
        [precision, h1, h0, w1, w0, components, ..] => Ok(Frame {
            marker: segment.marker,
            precision,
            height: u32::from(u16::from_be_bytes([h1, h0])),
            width: u32::from(u16::from_be_bytes([w1, w0])),
            components,
        }),
        _ => Err(ImageError::invalid("JPEG frame header is too short")),
    }
}

/// Stored width and height from the frame header.
pub(crate) fn dimensions(bytes: &[u8]) -> Result<(u32, u32), ImageError> {
    frame(bytes).map(|frame| (frame.width, frame.height))
}

/// The first frame header.
pub(crate) fn frame(bytes: &[u8]) -> Result<Frame, ImageError> {
    for segment in segments(bytes) {
        let segment = segment?;
        if is_frame_header(segment.marker) {
            return parse_frame(&segment);
        }
        if segment.marker == SOS || segment.marker == EOI {
            break;
        }
    }
    Err(ImageError::invalid("JPEG has no frame header (SOF) before its first scan"))
}

/// What the full walk found that later steps need.
pub(crate) struct JpegLayout<'a> {
    /// The TIFF structure inside the first `Exif` APP1 segment.
    pub exif: Option<&'a [u8]>,
}

/// The index of the first 0xFF byte: eight bytes at a time, since scan data (most of a file)
/// has one only every few hundred bytes.
fn find_ff(bytes: &[u8]) -> Option<usize> {
    let (words, rest) = bytes.as_chunks::<8>();
    for (number, word) in words.iter().enumerate() {
        // A byte is 0xFF where its complement is zero; the lowest flagged byte is always a true
        // one (borrows only propagate upwards).
        let inverted = !u64::from_le_bytes(*word);
        let flagged = inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080;
        if flagged != 0 {
            return Some(number * 8 + flagged.trailing_zeros() as usize / 8);
        }
    }
    rest.iter().position(|&b| b == 0xFF).map(|offset| words.len() * 8 + offset)
}

/// Walks every segment to EOI: one frame header, of a coding process we can decode, followed by
/// at least one scan.
pub(crate) fn check_structure(bytes: &[u8]) -> Result<JpegLayout<'_>, ImageError> {
    let mut frame: Option<Frame> = None;
    let mut scans = 0usize;
    let mut exif = None;
    for segment in segments(bytes) {
        let segment = segment?;
        match segment.marker {
            marker if is_frame_header(marker) => {
                if frame.is_some() {
                    return Err(ImageError::invalid("JPEG has more than one frame header"));
                }
                frame = Some(parse_frame(&segment)?);
            }
            SOS => {
                if frame.is_none() {
                    return Err(ImageError::invalid("JPEG scan comes before the frame header"));
                }
                scans += 1;
            }
            APP1 if exif.is_none() => {
                exif = segment.payload.strip_prefix(b"Exif\0\0");
            }
            EOI => {}
            _ => {}
        }
    }
    let frame = frame.ok_or_else(|| ImageError::invalid("JPEG has no frame header (SOF)"))?;
    if scans == 0 {
        return Err(ImageError::invalid("JPEG has no image data (no SOS marker)"));
    }
    let coding = match frame.marker {
        0xC0..=0xC2 => None,
        0xC3 => Some("lossless JPEG"),
        0xC5..=0xC7 => Some("hierarchical JPEG"),
        _ => Some("arithmetic-coded JPEG"),
    };
    if let Some(coding) = coding {
        return Err(ImageError::UnsupportedFormat(coding.to_owned()));
    }
    if !matches!(frame.components, 1 | 3 | 4) {
        return Err(ImageError::UnsupportedFormat(format!("JPEG with {} colour components", frame.components)));
    }
    Ok(JpegLayout { exif })
}

/// Whether an Adobe APP14 segment precedes the first scan. Adobe writers store CMYK inverted
/// (255 = no ink); every mainstream decoder (libjpeg users, browsers) keys the inversion on it.
pub(crate) fn has_adobe_marker(bytes: &[u8]) -> bool {
    segments(bytes)
        .map_while(Result::ok)
        .take_while(|segment| segment.marker != SOS)
        .any(|segment| segment.marker == APP14 && segment.payload.starts_with(b"Adobe"))
}

#[cfg(test)]
mod tests {
    use super::find_ff;

    #[test]
    fn finds_the_first_ff_at_every_offset() {
        for length in 0..40 {
            for at in 0..=length {
                // Bytes below 0xFF (0xFE included, the near miss), then 0xFF from `at` on.
                let mut bytes: Vec<u8> = (0..length).map(|i| [0xFE, 0x00, 0x7F, 0x80][i % 4]).collect();
                bytes[at..].iter_mut().for_each(|b| *b = 0xFF);
                let expected = (at < length).then_some(at);
                assert_eq!(find_ff(&bytes), expected, "length {length}, 0xFF from {at}");
            }
        }
    }
}
