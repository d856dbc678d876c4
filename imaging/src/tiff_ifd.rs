//! Just enough of the TIFF structure (byte order, IFD entries, SHORT/LONG values) to read
//! dimensions, strip/tile locations and the orientation tag without decoding anything. EXIF
//! payloads are TIFF structures too, so JPEG/PNG/WebP orientation goes through here as well.

pub(crate) const TAG_IMAGE_WIDTH: u16 = 256;
pub(crate) const TAG_IMAGE_LENGTH: u16 = 257;
pub(crate) const TAG_STRIP_OFFSETS: u16 = 273;
pub(crate) const TAG_ORIENTATION: u16 = 274;
pub(crate) const TAG_STRIP_BYTE_COUNTS: u16 = 279;
pub(crate) const TAG_TILE_OFFSETS: u16 = 324;
pub(crate) const TAG_TILE_BYTE_COUNTS: u16 = 325;

const TYPE_BYTE: u16 = 1;
const TYPE_SHORT: u16 = 3;
const TYPE_LONG: u16 = 4;

#[derive(Debug, Clone, Copy)]
pub(crate) struct IfdEntry {
    pub tag: u16,
    field_type: u16,
    count: u32,
    /// The 4-byte value/offset field, as stored.
    value_field: [u8; 4],
}

/// A classic (32-bit offset) TIFF structure over a byte slice.
pub(crate) struct TiffStructure<'a> {
    data: &'a [u8],
    big_endian: bool,
}

impl<'a> TiffStructure<'a> {
    /// `None` when the byte-order mark or the magic 42 is missing.
    pub fn new(data: &'a [u8]) -> Option<Self> {
        let big_endian = match data.get(..4)? {
            b"II*\0" => false,
            b"MM\0*" => true,
            _ => return None,
        };
        Some(TiffStructure { data, big_endian })
    }

    fn u16_at(&self, offset: usize) -> Option<u16> {
        let bytes: [u8; 2] = self.data.get(offset..offset.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big_endian { u16::from_be_bytes(bytes) } else { u16::from_le_bytes(bytes) })
    }

    fn u32_at(&self, offset: usize) -> Option<u32> {
        let bytes: [u8; 4] = self.data.get(offset..offset.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian { u32::from_be_bytes(bytes) } else { u32::from_le_bytes(bytes) })
    }

    fn u32_of(&self, bytes: [u8; 4]) -> u32 {
        if self.big_endian { u32::from_be_bytes(bytes) } else { u32::from_le_bytes(bytes) }
    }

    /// The entries of the first IFD, or a reason why they cannot be read.
    pub fn first_ifd(&self) -> Result<Vec<IfdEntry>, String> {
        let offset = self.u32_at(4).ok_or("TIFF header is truncated")? as usize;
        if offset < 8 {
            return Err(format!("first IFD offset {offset} points into the header"));
        }
        let count =
            self.u16_at(offset).ok_or_else(|| format!("first IFD offset {offset} is beyond the end of the data"))?;
        // The entries are followed by the 4-byte offset of the next IFD.
        let ifd_end = offset + 2 + usize::from(count) * 12 + 4;
        if ifd_end > self.data.len() {
            return Err(format!("first IFD ({count} entries) is truncated"));
        }
        Ok((0..usize::from(count))
            .map(|index| {
                let at = offset + 2 + index * 12;
                let field = &self.data[at..at + 12];
                IfdEntry {
                    tag: self.u16_at(at).unwrap_or_default(),
                    field_type: self.u16_at(at + 2).unwrap_or_default(),
                    count: self.u32_at(at + 4).unwrap_or_default(),
                    value_field: [field[8], field[9], field[10], field[11]],
                }
            })
            .collect())
    }

    /// The values of an unsigned integer entry (BYTE, SHORT or LONG), bounds-checked.
    pub fn unsigned_values(&self, entry: &IfdEntry) -> Result<Vec<u32>, String> {
        let size = match entry.field_type {
            TYPE_BYTE => 1,
            TYPE_SHORT => 2,
            TYPE_LONG => 4,
            other => return Err(format!("tag {} has non-integer type {other}", entry.tag)),
        };
        let count = entry.count as usize;
        let total = count.checked_mul(size).ok_or_else(|| format!("tag {} has an absurd count", entry.tag))?;
        let start = if total <= 4 { None } else { Some(self.u32_of(entry.value_field) as usize) };
        let read = |index: usize| -> Option<u32> {
            let position = index * size;
            match start {
                None => {
                    let bytes = &entry.value_field[position..position + size];
                    Some(self.decode_unsigned(bytes))
                }
                Some(base) => {
                    let at = base.checked_add(position)?;
                    let bytes = self.data.get(at..at.checked_add(size)?)?;
                    Some(self.decode_unsigned(bytes))
                }
            }
        };
        (0..count)
            .map(|index| {
                read(index).ok_or_else(|| format!("values of tag {} lie beyond the end of the data", entry.tag))
            })
            .collect()
    }

    fn decode_unsigned(&self, bytes: &[u8]) -> u32 {
        match *bytes {
            [b] => u32::from(b),
            [a, b] if self.big_endian => u32::from(u16::from_be_bytes([a, b])),
            [a, b] => u32::from(u16::from_le_bytes([a, b])),
            [a, b, c, d] => self.u32_of([a, b, c, d]),
            _ => unreachable!("sizes are 1, 2 or 4"),
        }
    }

    /// The single value of `tag` in `entries`, if present and readable.
    pub fn single_value(&self, entries: &[IfdEntry], tag: u16) -> Option<u32> {
        let entry = entries.iter().find(|entry| entry.tag == tag)?;
        self.unsigned_values(entry).ok()?.first().copied()
    }

    /// The orientation tag of an IFD: 1..=8, or 1 when absent or out of range.
    pub fn orientation(&self, entries: &[IfdEntry]) -> u8 {
        self.single_value(entries, TAG_ORIENTATION)
            .and_then(|value| u8::try_from(value).ok())
            .filter(|value| (1..=8).contains(value))
            .unwrap_or(1)
    }
}

/// The EXIF orientation (1..=8) of a TIFF-structured EXIF payload; 1 when absent or unreadable.
/// Accepts the payload with or without the `Exif\0\0` prefix (WebP writers differ).
pub(crate) fn exif_orientation(payload: &[u8]) -> u8 {
    let tiff = payload.strip_prefix(b"Exif\0\0").unwrap_or(payload);
    TiffStructure::new(tiff)
        .and_then(|structure| {
            let entries = structure.first_ifd().ok()?;
            Some(structure.orientation(&entries))
        })
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little- or big-endian TIFF header followed by one IFD with the given SHORT entries.
    fn tiff_with_shorts(big_endian: bool, entries: &[(u16, u16)]) -> Vec<u8> {
        let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut out = Vec::new();
        out.extend_from_slice(if big_endian { b"MM\0*" } else { b"II*\0" });
        out.extend_from_slice(&u32b(8));
        out.extend_from_slice(&u16b(entries.len() as u16));
        for &(tag, value) in entries {
            out.extend_from_slice(&u16b(tag));
            out.extend_from_slice(&u16b(TYPE_SHORT));
            out.extend_from_slice(&u32b(1));
            out.extend_from_slice(&u16b(value));
            out.extend_from_slice(&[0, 0]);
        }
        out.extend_from_slice(&u32b(0));
        out
    }

    #[test]
    fn orientation_both_byte_orders_and_prefix() {
        for big_endian in [false, true] {
            for value in 1..=8u16 {
                let tiff = tiff_with_shorts(big_endian, &[(TAG_ORIENTATION, value)]);
                assert_eq!(exif_orientation(&tiff), value as u8);
                let mut prefixed = b"Exif\0\0".to_vec();
                prefixed.extend_from_slice(&tiff);
                assert_eq!(exif_orientation(&prefixed), value as u8);
            }
        }
    }

    #[test]
    fn orientation_defaults_to_one() {
        assert_eq!(exif_orientation(b""), 1);
        assert_eq!(exif_orientation(b"garbage that is not tiff"), 1);
        assert_eq!(exif_orientation(&tiff_with_shorts(false, &[(TAG_ORIENTATION, 9)])), 1);
        assert_eq!(exif_orientation(&tiff_with_shorts(false, &[(TAG_IMAGE_WIDTH, 6)])), 1);
        let truncated = tiff_with_shorts(true, &[(TAG_ORIENTATION, 6)]);
        assert_eq!(exif_orientation(&truncated[..12]), 1);
    }
}
