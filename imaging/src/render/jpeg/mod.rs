//! Our own decoder for the JPEGs photos are: 8-bit, Huffman-coded, sequential or progressive,
//! grey or YCbCr with chroma at the luma's resolution or half of it along each axis, straight
//! to a reduced size in the DCT domain (shrink-on-load), on one thread.
//!
//! Why not jpeg-decoder, which also scales: decoding is 65–90 % of a rendition's cost and
//! jpeg-decoder reads bits through `io::Read` one byte at a time, refines progressive
//! coefficients bit by bit through the same path, and hands rows to a helper thread. Here the
//! bit reader works on the slice with a word-at-a-time fast path, and each colour component is
//! transformed straight to the output resolution (chroma with a larger inverse DCT than luma,
//! so that 4:2:0 needs no upsampling once the image is reduced).
//!
//! Layouts it does not take (12-bit, CMYK, RGB-coded, other subsampling ratios, arithmetic
//! coding) are reported as [`DecodeError::Unsupported`] and go to the general decoders.

mod entropy;
mod idct;

use entropy::{BitReader, HuffmanTable, KeptCoefficients, ProgressiveBlock};
use idct::{Dequantisation, ScaledIdct};

/// Zigzag position → natural (row-major) index (T.81 figure A.6).
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
    28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54,
    47, 55, 62, 63,
];

#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Valid, but a layout this decoder leaves to others.
    Unsupported,
    Invalid(String),
}

impl DecodeError {
    fn invalid(message: impl Into<String>) -> Self {
        DecodeError::Invalid(message.into())
    }
}

/// A decoded image: interleaved 8-bit grey or RGB samples.
pub(crate) struct Image {
    pub width: u32,
    pub height: u32,
    pub components: usize,
    pub samples: Vec<u8>,
    pub icc_profile: Option<Vec<u8>>,
}

struct Component {
    id: u8,
    horizontal: usize,
    vertical: usize,
    quantisation: usize,
    /// Blocks per line and per column, padded to whole MCUs.
    blocks_wide: usize,
    blocks_high: usize,
    /// Blocks a non-interleaved scan covers (the component's own size, rounded up to blocks).
    scan_blocks_wide: usize,
    scan_blocks_high: usize,
    /// Progressive only: what later scans and the inverse DCT need of every block.
    coefficients: Option<ProgressiveCoefficients>,
}

/// A progressive component's blocks between scans. Only the coefficients the inverse DCT reads
/// are kept (at 1/4 scale, 4 of 64 for luma), plus a non-zero flag for each of the 64, which
/// is what refinement scans depend on: 8 bytes a block instead of 128 for the rest.
struct ProgressiveCoefficients {
    layout: KeptCoefficients,
    values: Vec<i16>,
    nonzero: Vec<u64>,
}

impl ProgressiveCoefficients {
    fn new(blocks: usize, layout: KeptCoefficients) -> Self {
        ProgressiveCoefficients { values: vec![0; blocks * layout.per_block()], nonzero: vec![0; blocks], layout }
    }

    fn block(&mut self, number: usize) -> ProgressiveBlock<'_> {
        let per_block = self.layout.per_block();
        ProgressiveBlock {
            values: &mut self.values[number * per_block..(number + 1) * per_block],
            nonzero: &mut self.nonzero[number],
            layout: &self.layout,
        }
    }
}

struct Frame {
    progressive: bool,
    width: usize,
    height: usize,
    components: Vec<Component>,
    max_horizontal: usize,
    max_vertical: usize,
    mcus_wide: usize,
    mcus_high: usize,
}

struct Scan {
    /// Indices into `Frame::components`, with their DC and AC table numbers.
    components: Vec<(usize, usize, usize)>,
    start: usize,
    end: usize,
    high_bit: u32,
    low_bit: u32,
}

/// Component samples at output resolution, one plane per component, padded to whole MCUs.
struct Planes {
    planes: Vec<Vec<u8>>,
    idcts: Vec<ScaledIdct>,
    /// Plane widths (the stride) and heights.
    sizes: Vec<(usize, usize)>,
}

/// Decodes `bytes` with every dimension divided by `divisor` (1, 2, 4 or 8, rounding up).
/// `max_samples` bounds the output and coefficient buffers (the caller's pixel limit).
pub(crate) fn decode(bytes: &[u8], divisor: usize, max_samples: usize) -> Result<Image, DecodeError> {
    let Scanned { mut frame, mut planes, quantisation, mut icc_chunks, .. } = read_scans(bytes, divisor, max_samples)?;
    if frame.progressive {
        planes.transform_coefficients(&mut frame, &quantisation);
    }
    icc_chunks.sort_by_key(|&(sequence, _)| sequence);
    let icc_profile =
        (!icc_chunks.is_empty()).then(|| icc_chunks.iter().flat_map(|(_, data)| *data).copied().collect());
    let (width, height) = (frame.width.div_ceil(divisor), frame.height.div_ceil(divisor));
    let samples = planes.into_interleaved(&frame, width, height);
    Ok(Image { width: width as u32, height: height as u32, components: frame.components.len(), samples, icc_profile })
}

/// A file read up to its end: sequential scans are already in `planes`, progressive ones
/// still in the frame's coefficient stores.
struct Scanned<'a> {
    frame: Frame,
    planes: Planes,
    quantisation: [[u16; 64]; 4],
    /// ICC profile chunks with their sequence numbers.
    icc_chunks: Vec<(u8, &'a [u8])>,
    /// Progressive scans skipped as contributing nothing at this scale.
    #[cfg(test)]
    skipped_scans: usize,
}

/// Reads every segment and decodes every scan of `bytes` (see [`decode`]).
fn read_scans(bytes: &[u8], divisor: usize, max_samples: usize) -> Result<Scanned<'_>, DecodeError> {
    if !matches!(divisor, 1 | 2 | 4 | 8) {
        return Err(DecodeError::invalid(format!("JPEG scale 1/{divisor} is not a DCT scale")));
    }
    let mut quantisation = [[0u16; 64]; 4];
    let mut quantisation_defined = [false; 4];
    let mut dc_tables: [Option<HuffmanTable>; 4] = Default::default();
    let mut ac_tables: [Option<HuffmanTable>; 4] = Default::default();
    let mut restart_interval = 0usize;
    let mut frame: Option<Frame> = None;
    let mut planes: Option<Planes> = None;
    let mut icc_chunks: Vec<(u8, &[u8])> = Vec::new();
    let mut adobe_transform: Option<u8> = None;
    // Progressive only, found at the first scan: which scans (in file order) to skip.
    let mut skips: Option<Vec<bool>> = None;
    let mut scan_number = 0;

    let mut position = 2; // after SOI
    loop {
        let (marker, payload, next) = next_segment(bytes, position)?;
        position = next;
        match marker {
            0xD9 => break,
            0xC0..=0xC2 => {
                if frame.is_some() {
                    return Err(DecodeError::invalid("JPEG has more than one frame header"));
                }
                let mut parsed = parse_frame(payload, marker == 0xC2, max_samples)?;
                let new_planes = Planes::new(&parsed, divisor);
                if parsed.progressive {
                    for (component, idct) in parsed.components.iter_mut().zip(&new_planes.idcts) {
                        let layout = KeptCoefficients::lowest(idct.width(), idct.height());
                        let blocks = component.blocks_wide * component.blocks_high;
                        component.coefficients = Some(ProgressiveCoefficients::new(blocks, layout));
                    }
                }
                planes = Some(new_planes);
                frame = Some(parsed);
            }
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(DecodeError::Unsupported);
            }
            0xC4 => parse_huffman_tables(payload, &mut dc_tables, &mut ac_tables)?,
            0xDB => parse_quantisation_tables(payload, &mut quantisation, &mut quantisation_defined)?,
            0xDD => {
                let [high, low, ..] = *payload else {
                    return Err(DecodeError::invalid("JPEG DRI segment is too short"));
                };
                restart_interval = usize::from(u16::from_be_bytes([high, low]));
            }
            0xE2 => {
                if let Some(rest) = payload.strip_prefix(b"ICC_PROFILE\0")
                    && let [sequence, _count, data @ ..] = rest
                {
                    icc_chunks.push((*sequence, data));
                }
            }
            0xEE if payload.starts_with(b"Adobe") && payload.len() >= 12 => adobe_transform = Some(payload[11]),
            0xDA => {
                let (Some(frame), Some(planes)) = (frame.as_mut(), planes.as_mut()) else {
                    return Err(DecodeError::invalid("JPEG scan comes before the frame header"));
                };
                // Adobe's transform flag 0 on three components: the samples are RGB, not YCbCr.
                if frame.components.len() == 3 && adobe_transform == Some(0) {
                    return Err(DecodeError::Unsupported);
                }
                let scan = parse_scan(payload, frame)?;
                for &(index, dc, ac) in &scan.components {
                    let component = &frame.components[index];
                    if !quantisation_defined[component.quantisation] {
                        return Err(DecodeError::invalid("JPEG scan uses an undefined quantisation table"));
                    }
                    let needs_dc = !frame.progressive || (scan.start == 0 && scan.high_bit == 0);
                    let needs_ac = !frame.progressive || scan.start > 0;
                    if (needs_dc && dc_tables[dc].is_none()) || (needs_ac && ac_tables[ac].is_none()) {
                        return Err(DecodeError::invalid("JPEG scan uses an undefined Huffman table"));
                    }
                }
                let data = &bytes[position..];
                if frame.progressive && skips.is_none() {
                    skips = Some(scans_to_skip(data, &scan, frame));
                }
                let skip = skips.as_ref().is_some_and(|skips| skips.get(scan_number) == Some(&true));
                scan_number += 1;
                if skip {
                    position += scan_end(data, 0)?;
                    continue;
                }
                let tables = Tables { dc: &dc_tables, ac: &ac_tables, quantisation: &quantisation };
                let used = decode_scan(data, frame, &scan, &tables, restart_interval, planes)?;
                position += used;
            }
            _ => {}
        }
    }
    let (Some(frame), Some(planes)) = (frame, planes) else {
        return Err(DecodeError::invalid("JPEG has no frame header"));
    };
    Ok(Scanned {
        frame,
        planes,
        quantisation,
        icc_chunks,
        #[cfg(test)]
        skipped_scans: skips.map_or(0, |skips| skips.iter().take(scan_number).filter(|&&skip| skip).count()),
    })
}

/// Progressive scans that can be skipped without decoding, given the first scan (whose data
/// starts `data`) and the frame: an AC scan whose band holds none of the coefficients the
/// reduced inverse DCT reads contributes nothing, unless a later refinement scan that does
/// contribute overlaps its band (refinement depends on which coefficients are non-zero).
/// At 1/8 scale that is every luma AC scan. Unreadable headers further on skip nothing (the
/// decoder then meets the damage itself).
fn scans_to_skip(data: &[u8], first: &Scan, frame: &Frame) -> Vec<bool> {
    let mut scans = vec![(first.components[0].0, first.start, first.end, first.high_bit)];
    let mut position = match scan_end(data, 0) {
        Ok(end) => end,
        Err(_) => return Vec::new(),
    };
    loop {
        let Ok((marker, payload, next)) = next_segment(data, position) else { return Vec::new() };
        position = next;
        match marker {
            0xD9 => break,
            0xDA => {
                let Ok(scan) = parse_scan(payload, frame) else { return Vec::new() };
                scans.push((scan.components[0].0, scan.start, scan.end, scan.high_bit));
                let Ok(end) = scan_end(data, position) else { return Vec::new() };
                position = end;
            }
            _ => {}
        }
    }
    // From the last scan back: per component, the band whose non-zero flags a contributing
    // refinement scan reads.
    let mut history = vec![0u64; frame.components.len()];
    let mut skip = vec![false; scans.len()];
    for (number, &(index, start, end, high_bit)) in scans.iter().enumerate().rev() {
        if start == 0 {
            continue; // DC scans always contribute
        }
        let band = entropy::band_mask(start, end);
        let Some(coefficients) = frame.components[index].coefficients.as_ref() else { return Vec::new() };
        let contributes = band & (coefficients.layout.kept() | history[index]) != 0;
        if contributes && high_bit > 0 {
            history[index] |= band;
        }
        skip[number] = !contributes;
    }
    skip
}

/// Where the entropy-coded data starting at `data[from..]` ends: at the next marker other than
/// RSTn (stuffed 0xFF 0x00 and fill bytes are data).
fn scan_end(data: &[u8], mut end: usize) -> Result<usize, DecodeError> {
    loop {
        match data.get(end..end + 2) {
            Some(&[0xFF, 0x00]) => end += 2,
            Some(&[0xFF, 0xFF]) => end += 1,
            Some(&[0xFF, marker]) if (0xD0..=0xD7).contains(&marker) => end += 2,
            Some(&[0xFF, _]) => return Ok(end),
            Some(_) => end += 1,
            None => return Err(DecodeError::invalid("JPEG is truncated: the data ends inside a scan")),
        }
    }
}

/// The marker segment at `position` (skipping fill bytes): marker, payload, position after it.
fn next_segment(bytes: &[u8], mut position: usize) -> Result<(u8, &[u8], usize), DecodeError> {
    while bytes.get(position) == Some(&0xFF) && bytes.get(position + 1) == Some(&0xFF) {
        position += 1;
    }
    let (Some(0xFF), Some(&marker)) = (bytes.get(position), bytes.get(position + 1)) else {
        return Err(DecodeError::invalid("JPEG has data where a marker was expected"));
    };
    position += 2;
    if marker == 0xD9 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
        return Ok((marker, &[], position));
    }
    let length = match bytes.get(position..position + 2) {
        Some(&[high, low]) => usize::from(u16::from_be_bytes([high, low])),
        _ => return Err(DecodeError::invalid("JPEG is truncated inside a marker segment")),
    };
    let payload = bytes
        .get(position + 2..position + length.max(2))
        .ok_or_else(|| DecodeError::invalid("JPEG is truncated inside a marker segment"))?;
    Ok((marker, payload, position + length.max(2)))
}

fn parse_frame(payload: &[u8], progressive: bool, max_samples: usize) -> Result<Frame, DecodeError> {
    let [precision, h1, h0, w1, w0, count, ref specs @ ..] = *payload else {
        return Err(DecodeError::invalid("JPEG frame header is too short"));
    };
    if precision != 8 {
        return Err(DecodeError::Unsupported);
    }
    let (width, height) = (usize::from(u16::from_be_bytes([w1, w0])), usize::from(u16::from_be_bytes([h1, h0])));
    if width == 0 || height == 0 {
        return Err(DecodeError::invalid("JPEG frame has no pixels (or a DNL height)"));
    }
    if width * height > max_samples {
        return Err(DecodeError::invalid("JPEG frame is larger than the pixel limit"));
    }
    if !matches!(count, 1 | 3) {
        return Err(DecodeError::Unsupported);
    }
    let specs =
        specs.get(..usize::from(count) * 3).ok_or_else(|| DecodeError::invalid("JPEG frame header is short"))?;
    let mut components: Vec<Component> = specs
        .chunks_exact(3)
        .map(|spec| Component {
            id: spec[0],
            horizontal: usize::from(spec[1] >> 4),
            vertical: usize::from(spec[1] & 15),
            quantisation: usize::from(spec[2]),
            blocks_wide: 0,
            blocks_high: 0,
            scan_blocks_wide: 0,
            scan_blocks_high: 0,
            coefficients: None,
        })
        .collect();
    if components
        .iter()
        .any(|c| !(1..=4).contains(&c.horizontal) || !(1..=4).contains(&c.vertical) || c.quantisation > 3)
    {
        return Err(DecodeError::invalid("JPEG component has bad sampling factors or table number"));
    }
    if count == 3 && components.iter().map(|c| c.id).eq(*b"RGB") {
        return Err(DecodeError::Unsupported);
    }
    let max_horizontal = components.iter().map(|c| c.horizontal).max().unwrap_or(1);
    let max_vertical = components.iter().map(|c| c.vertical).max().unwrap_or(1);
    // Chroma at the luma's resolution or half of it, per axis: what cameras and encoders write.
    if components[0].horizontal != max_horizontal
        || components[0].vertical != max_vertical
        || components
            .iter()
            .any(|c| !matches!(max_horizontal / c.horizontal, 1 | 2) || !max_horizontal.is_multiple_of(c.horizontal))
        || components
            .iter()
            .any(|c| !matches!(max_vertical / c.vertical, 1 | 2) || !max_vertical.is_multiple_of(c.vertical))
    {
        return Err(DecodeError::Unsupported);
    }
    let mcus_wide = width.div_ceil(8 * max_horizontal);
    let mcus_high = height.div_ceil(8 * max_vertical);
    for component in &mut components {
        component.blocks_wide = mcus_wide * component.horizontal;
        component.blocks_high = mcus_high * component.vertical;
        component.scan_blocks_wide = (width * component.horizontal).div_ceil(max_horizontal).div_ceil(8);
        component.scan_blocks_high = (height * component.vertical).div_ceil(max_vertical).div_ceil(8);
    }
    Ok(Frame { progressive, width, height, components, max_horizontal, max_vertical, mcus_wide, mcus_high })
}

fn parse_huffman_tables(
    mut payload: &[u8],
    dc_tables: &mut [Option<HuffmanTable>; 4],
    ac_tables: &mut [Option<HuffmanTable>; 4],
) -> Result<(), DecodeError> {
    while let [class_and_id, rest @ ..] = payload {
        let (class, id) = (class_and_id >> 4, usize::from(class_and_id & 15));
        let counts: &[u8; 16] = rest
            .get(..16)
            .and_then(|counts| counts.try_into().ok())
            .ok_or_else(|| DecodeError::invalid("JPEG DHT segment is too short"))?;
        let total: usize = counts.iter().map(|&count| usize::from(count)).sum();
        let symbols = rest.get(16..16 + total).ok_or_else(|| DecodeError::invalid("JPEG DHT segment is too short"))?;
        if id > 3 || class > 1 {
            return Err(DecodeError::invalid("JPEG DHT segment has a bad table class or number"));
        }
        let table = HuffmanTable::new(counts, symbols, class == 0)?;
        if class == 0 {
            dc_tables[id] = Some(table);
        } else {
            ac_tables[id] = Some(table);
        }
        payload = &rest[16 + total..];
    }
    Ok(())
}

fn parse_quantisation_tables(
    mut payload: &[u8],
    tables: &mut [[u16; 64]; 4],
    defined: &mut [bool; 4],
) -> Result<(), DecodeError> {
    while let [precision_and_id, rest @ ..] = payload {
        let (sixteen_bit, id) = (precision_and_id >> 4 == 1, usize::from(precision_and_id & 15));
        if id > 3 || precision_and_id >> 4 > 1 {
            return Err(DecodeError::invalid("JPEG DQT segment has a bad table number or precision"));
        }
        let size = if sixteen_bit { 128 } else { 64 };
        let values = rest.get(..size).ok_or_else(|| DecodeError::invalid("JPEG DQT segment is too short"))?;
        for (k, &natural) in ZIGZAG.iter().enumerate() {
            tables[id][natural] =
                if sixteen_bit { u16::from_be_bytes([values[2 * k], values[2 * k + 1]]) } else { u16::from(values[k]) };
        }
        defined[id] = true;
        payload = &rest[size..];
    }
    Ok(())
}

fn parse_scan(payload: &[u8], frame: &Frame) -> Result<Scan, DecodeError> {
    let [count, ref rest @ ..] = *payload else {
        return Err(DecodeError::invalid("JPEG SOS segment is empty"));
    };
    let count = usize::from(count);
    let (specs, tail) = (rest.get(..2 * count), rest.get(2 * count..2 * count + 3));
    let (Some(specs), Some(&[start, end, approximation])) = (specs, tail) else {
        return Err(DecodeError::invalid("JPEG SOS segment is too short"));
    };
    if count == 0 || count > 4 {
        return Err(DecodeError::invalid("JPEG scan has a bad component count"));
    }
    let mut components = Vec::with_capacity(count);
    for spec in specs.chunks_exact(2) {
        let index = frame
            .components
            .iter()
            .position(|c| c.id == spec[0])
            .ok_or_else(|| DecodeError::invalid("JPEG scan names a component the frame lacks"))?;
        let (dc, ac) = (usize::from(spec[1] >> 4), usize::from(spec[1] & 15));
        if dc > 3 || ac > 3 {
            return Err(DecodeError::invalid("JPEG scan names a bad Huffman table"));
        }
        components.push((index, dc, ac));
    }
    let (start, end) = (usize::from(start), usize::from(end));
    let (high_bit, low_bit) = (u32::from(approximation >> 4), u32::from(approximation & 15));
    if frame.progressive {
        let dc_scan = start == 0;
        if end > 63 || start > end || (dc_scan && end != 0) || (!dc_scan && count != 1) || low_bit > 13 {
            return Err(DecodeError::invalid("JPEG progressive scan has a bad spectral band"));
        }
    }
    Ok(Scan { components, start, end, high_bit, low_bit })
}

struct Tables<'a> {
    dc: &'a [Option<HuffmanTable>; 4],
    ac: &'a [Option<HuffmanTable>; 4],
    quantisation: &'a [[u16; 64]; 4],
}

/// What a scan's blocks hold, which decides how each is decoded.
#[derive(Clone, Copy)]
enum ScanKind {
    Sequential,
    DcFirst,
    DcRefine,
    AcFirst,
    AcRefine,
}

/// The order in which a scan visits blocks: units (MCUs, or single blocks when the scan has
/// one component) row by row, and within each unit the blocks of every scan component.
struct ScanWalk {
    units_wide: usize,
    units_high: usize,
    /// Per block of a unit: the scan slot of its component, and its column and row in units
    /// of that component's blocks (offsets within the unit, and the unit's size).
    unit_blocks: Vec<(usize, usize, usize)>,
    unit_sizes: [(usize, usize); 4],
}

impl ScanWalk {
    fn new(frame: &Frame, scan: &Scan) -> Self {
        // A scan of one component covers that component's blocks one by one; a scan of several
        // walks MCUs, each holding horizontal × vertical blocks of every component.
        let single = scan.components.len() == 1;
        let (units_wide, units_high) = if single {
            let component = &frame.components[scan.components[0].0];
            (component.scan_blocks_wide, component.scan_blocks_high)
        } else {
            (frame.mcus_wide, frame.mcus_high)
        };
        let mut unit_blocks = Vec::new();
        let mut unit_sizes = [(1, 1); 4];
        for (slot, &(index, _, _)) in scan.components.iter().enumerate() {
            let component = &frame.components[index];
            let (h, v) = if single { (1, 1) } else { (component.horizontal, component.vertical) };
            unit_sizes[slot] = (h, v);
            for y in 0..v {
                for x in 0..h {
                    unit_blocks.push((slot, x, y));
                }
            }
        }
        ScanWalk { units_wide, units_high, unit_blocks, unit_sizes }
    }

    /// Calls `decode(reader, state, slot, column, row)` for every block in stream order, and
    /// handles restart intervals (bit reader, DC predictors and end-of-band run reset).
    fn run(
        &self,
        reader: &mut BitReader<'_>,
        restart_interval: usize,
        mut decode: impl FnMut(&mut BitReader<'_>, &mut ScanState, usize, usize, usize) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let mut state = ScanState::default();
        let mut until_restart = restart_interval;
        for unit_row in 0..self.units_high {
            for unit_column in 0..self.units_wide {
                if restart_interval > 0 {
                    if until_restart == 0 {
                        reader.restart();
                        state = ScanState::default();
                        until_restart = restart_interval;
                    }
                    until_restart -= 1;
                }
                for &(slot, x, y) in &self.unit_blocks {
                    let (h, v) = self.unit_sizes[slot];
                    decode(reader, &mut state, slot, unit_column * h + x, unit_row * v + y)?;
                }
            }
        }
        Ok(())
    }
}

/// Decoding state that restart markers reset.
#[derive(Default)]
struct ScanState {
    /// DC predictor per scan slot.
    predictors: [i32; 4],
    /// Progressive AC scans: blocks left in the current end-of-band run.
    eob_run: u32,
}

/// The stored block of a progressive component, by column and row.
#[inline(always)]
fn stored(
    components: &mut [Component],
    index: usize,
    column: usize,
    row: usize,
) -> Result<ProgressiveBlock<'_>, DecodeError> {
    let component = &mut components[index];
    let number = row * component.blocks_wide + column;
    let coefficients = component
        .coefficients
        .as_mut()
        .ok_or_else(|| DecodeError::invalid("JPEG progressive component has no coefficient store"))?;
    Ok(coefficients.block(number))
}

/// Decodes one scan's entropy-coded data (the start of `data`); returns the bytes it used.
fn decode_scan(
    data: &[u8],
    frame: &mut Frame,
    scan: &Scan,
    tables: &Tables<'_>,
    restart_interval: usize,
    planes: &mut Planes,
) -> Result<usize, DecodeError> {
    let mut reader = BitReader::new(data);
    let walk = ScanWalk::new(frame, scan);
    let kind = match (frame.progressive, scan.start, scan.high_bit) {
        (false, _, _) => ScanKind::Sequential,
        (true, 0, 0) => ScanKind::DcFirst,
        (true, 0, _) => ScanKind::DcRefine,
        (true, _, 0) => ScanKind::AcFirst,
        (true, _, _) => ScanKind::AcRefine,
    };
    // Per scan slot: component index and the tables its kind of scan uses (the caller checked
    // that those are defined).
    let missing = || DecodeError::invalid("JPEG scan uses an undefined Huffman table");
    let mut slots = Vec::with_capacity(scan.components.len());
    for &(index, dc, ac) in &scan.components {
        let dc = match kind {
            ScanKind::Sequential | ScanKind::DcFirst => Some(tables.dc[dc].as_ref().ok_or_else(missing)?),
            _ => None,
        };
        let ac = match kind {
            ScanKind::Sequential | ScanKind::AcFirst | ScanKind::AcRefine => {
                Some(tables.ac[ac].as_ref().ok_or_else(missing)?)
            }
            _ => None,
        };
        slots.push((index, dc, ac));
    }
    let band = (scan.start, scan.end);
    let low_bit = scan.low_bit;
    let dequantisations = match kind {
        ScanKind::Sequential => planes.dequantisations(frame, tables.quantisation),
        _ => Vec::new(),
    };
    let components = &mut frame.components;
    match kind {
        ScanKind::Sequential => walk.run(&mut reader, restart_interval, |reader, state, slot, column, row| {
            let (index, Some(dc), Some(ac)) = slots[slot] else { return Err(missing()) };
            let mut block = [0i16; 64];
            entropy::decode_block(reader, dc, ac, &mut state.predictors[slot], &mut block)?;
            planes.put_block(index, column, row, &block, &dequantisations[index]);
            Ok(())
        })?,
        ScanKind::DcFirst => walk.run(&mut reader, restart_interval, |reader, state, slot, column, row| {
            let (index, Some(dc), _) = slots[slot] else { return Err(missing()) };
            let block = stored(components, index, column, row)?;
            entropy::decode_dc_first(reader, dc, &mut state.predictors[slot], low_bit, block)
        })?,
        ScanKind::DcRefine => walk.run(&mut reader, restart_interval, |reader, _, slot, column, row| {
            let block = stored(components, slots[slot].0, column, row)?;
            entropy::decode_dc_refine(reader, low_bit, block);
            Ok(())
        })?,
        ScanKind::AcFirst => walk.run(&mut reader, restart_interval, |reader, state, slot, column, row| {
            if state.eob_run > 0 {
                // Inside an end-of-band run the block has nothing in this band.
                state.eob_run -= 1;
                return Ok(());
            }
            let (index, _, Some(ac)) = slots[slot] else { return Err(missing()) };
            let block = stored(components, index, column, row)?;
            entropy::decode_ac_first(reader, ac, band, low_bit, &mut state.eob_run, block)
        })?,
        ScanKind::AcRefine => walk.run(&mut reader, restart_interval, |reader, state, slot, column, row| {
            let (index, _, Some(ac)) = slots[slot] else { return Err(missing()) };
            let block = stored(components, index, column, row)?;
            entropy::decode_ac_refine(reader, ac, band, low_bit, &mut state.eob_run, block)
        })?,
    }
    scan_end(data, reader.position())
}

impl Planes {
    /// Sized from the frame, whose pixel count `parse_frame` already checked against the limit
    /// (planes add at most one MCU of padding per edge).
    fn new(frame: &Frame, divisor: usize) -> Self {
        let (mut planes, mut idcts, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
        for component in &frame.components {
            // Output samples per block along each axis: luma 8/divisor; half-resolution chroma
            // twice that, up to 8 (beyond, the plane is upsampled afterwards).
            let width = (8 * frame.max_horizontal / component.horizontal / divisor).min(8);
            let height = (8 * frame.max_vertical / component.vertical / divisor).min(8);
            let size = (component.blocks_wide * width, component.blocks_high * height);
            idcts.push(ScaledIdct::new(width, height));
            sizes.push(size);
        }
        for &(width, height) in &sizes {
            planes.push(vec![0u8; width * height]);
        }
        Planes { planes, idcts, sizes }
    }

    /// `quantisation` prepared for each component's transform.
    fn dequantisations(&self, frame: &Frame, quantisation: &[[u16; 64]; 4]) -> Vec<Dequantisation> {
        let tables = frame.components.iter().map(|component| &quantisation[component.quantisation]);
        self.idcts.iter().zip(tables).map(|(idct, table)| idct.dequantisation(table)).collect()
    }

    #[inline]
    fn put_block(
        &mut self,
        component: usize,
        column: usize,
        row: usize,
        block: &[i16],
        dequantisation: &Dequantisation,
    ) {
        let idct = &self.idcts[component];
        let stride = self.sizes[component].0;
        let (x, y) = (column * idct.width(), row * idct.height());
        let start = y * stride + x;
        idct.transform(block, dequantisation, &mut self.planes[component][start..], stride);
    }

    fn transform_coefficients(&mut self, frame: &mut Frame, quantisation: &[[u16; 64]; 4]) {
        let dequantisations = self.dequantisations(frame, quantisation);
        for (index, component) in frame.components.iter_mut().enumerate() {
            let Some(coefficients) = component.coefficients.take() else { continue };
            let (width, height) = (self.idcts[index].width(), self.idcts[index].height());
            for (number, kept) in coefficients.values.chunks_exact(width * height).enumerate() {
                // The kept values are the block's lowest width × height frequencies.
                let mut block = [0i16; 64];
                for (row, values) in block.chunks_exact_mut(8).zip(kept.chunks_exact(width)) {
                    row[..width].copy_from_slice(values);
                }
                let (row, column) = (number / component.blocks_wide, number % component.blocks_wide);
                self.put_block(index, column, row, &block, &dequantisations[index]);
            }
        }
    }

    /// The planes cropped to `width`×`height`, chroma upsampled where it was left at half the
    /// luma's resolution, YCbCr converted to RGB.
    fn into_interleaved(self, frame: &Frame, width: usize, height: usize) -> Vec<u8> {
        if frame.components.len() == 1 {
            let stride = self.sizes[0].0;
            return self.planes[0].chunks(stride).take(height).flat_map(|row| &row[..width]).copied().collect();
        }
        // Three components (`parse_frame` takes one or three): Y, Cb, Cr.
        let luma_size = self.sizes[0];
        let mut blue = ChromaRows::new(&self.planes[1], self.sizes[1], luma_size);
        let mut red = ChromaRows::new(&self.planes[2], self.sizes[2], luma_size);
        let luma_stride = luma_size.0;
        let mut rgb = vec![0u8; width * height * 3];
        for (y, out) in rgb.chunks_exact_mut(width * 3).enumerate() {
            let luma = &self.planes[0][y * luma_stride..y * luma_stride + width];
            ycbcr_to_rgb(luma, &blue.row(y)[..width], &red.row(y)[..width], out);
        }
        rgb
    }
}

/// A chroma plane's rows at the luma's resolution, produced one output row at a time (top to
/// bottom): planes at half the luma's width or height are upsampled with libjpeg's "fancy"
/// triangle filter (¾ nearer sample, ¼ farther; horizontally first), without a full-size copy.
struct ChromaRows<'a> {
    plane: &'a [u8],
    width: usize,
    height: usize,
    double_width: bool,
    double_height: bool,
    /// When doubling the height: rows centre - 1, centre and centre + 1 (clamped to the
    /// plane), at the output width.
    window: [Vec<u8>; 3],
    centre: Option<usize>,
    out: Vec<u8>,
}

impl<'a> ChromaRows<'a> {
    fn new(plane: &'a [u8], (width, height): (usize, usize), (luma_width, luma_height): (usize, usize)) -> Self {
        let double_width = width * 2 == luma_width;
        let out_width = if double_width { luma_width } else { width };
        ChromaRows {
            plane,
            width,
            height,
            double_width,
            double_height: height * 2 == luma_height,
            window: std::array::from_fn(|_| vec![0; out_width]),
            centre: None,
            out: vec![0; out_width],
        }
    }

    /// Plane row `y` (clamped) at the output width, into `out`.
    fn widened(&self, y: usize, out: &mut [u8]) {
        let y = y.min(self.height - 1);
        let row = &self.plane[y * self.width..(y + 1) * self.width];
        if self.double_width {
            upsample_row(row, out);
        } else {
            out.copy_from_slice(row);
        }
    }

    /// Output row `y`; calls must go top to bottom.
    fn row(&mut self, y: usize) -> &[u8] {
        if !self.double_height {
            let mut out = std::mem::take(&mut self.out);
            self.widened(y, &mut out);
            self.out = out;
            return &self.out;
        }
        let centre = y / 2;
        if self.centre != Some(centre) {
            let mut window = std::mem::take(&mut self.window);
            if self.centre.is_some_and(|previous| previous + 1 == centre) {
                window.rotate_left(1);
                self.widened(centre + 1, &mut window[2]);
            } else {
                self.widened(centre.saturating_sub(1), &mut window[0]);
                self.widened(centre, &mut window[1]);
                self.widened(centre + 1, &mut window[2]);
            }
            self.window = window;
            self.centre = Some(centre);
        }
        // Upper output row: blend with the row above; lower: with the row below.
        let (far, rounding) = if y.is_multiple_of(2) { (&self.window[0], 1) } else { (&self.window[2], 2) };
        for ((out, &near), &far) in self.out.iter_mut().zip(&self.window[1]).zip(far) {
            *out = ((3 * u16::from(near) + u16::from(far) + rounding) >> 2) as u8;
        }
        &self.out
    }
}

/// Doubles a row's width with the triangle filter (an edge sample's missing neighbour is
/// itself). The interior is a straight pass over windows of three, which vectorises.
fn upsample_row(row: &[u8], out: &mut [u8]) {
    let blend = |near: u8, far: u8, rounding: u16| ((3 * u16::from(near) + u16::from(far) + rounding) >> 2) as u8;
    let width = row.len();
    if width == 1 {
        out[..2].fill(row[0]);
        return;
    }
    out[0] = row[0];
    out[1] = blend(row[0], row[1], 2);
    for (pair, window) in out[2..2 * width - 2].chunks_exact_mut(2).zip(row.windows(3)) {
        pair[0] = blend(window[1], window[0], 1);
        pair[1] = blend(window[1], window[2], 2);
    }
    out[2 * width - 2] = blend(row[width - 1], row[width - 2], 1);
    out[2 * width - 1] = row[width - 1];
}

/// JFIF YCbCr → RGB (BT.601 full range) in 16.16 fixed point, as libjpeg does.
fn ycbcr_to_rgb(luma: &[u8], blue: &[u8], red: &[u8], out: &mut [u8]) {
    const ONE_HALF: i32 = 1 << 15;
    const CR_R: i32 = 91_881; // 1.402
    const CB_G: i32 = 22_554; // 0.344136
    const CR_G: i32 = 46_802; // 0.714136
    const CB_B: i32 = 116_130; // 1.772
    for (((pixel, &y), &cb), &cr) in out.chunks_exact_mut(3).zip(luma).zip(blue).zip(red) {
        let (y, cb, cr) = (i32::from(y) << 16, i32::from(cb) - 128, i32::from(cr) - 128);
        pixel[0] = ((y + CR_R * cr + ONE_HALF) >> 16).clamp(0, 255) as u8;
        pixel[1] = ((y - CB_G * cb - CR_G * cr + ONE_HALF) >> 16).clamp(0, 255) as u8;
        pixel[2] = ((y + CB_B * cb + ONE_HALF) >> 16).clamp(0, 255) as u8;
    }
}

#[cfg(test)]
mod tests {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    use super::*;

    const WIDTH: u16 = 203;
    const HEIGHT: u16 = 157;

    /// Smooth gradients, a sharp-edged square and soft stripes, at a size that is not a multiple
    /// of any MCU, so that padding, edges and many frequency bands are exercised.
    fn test_pattern() -> Vec<u8> {
        let mut rgb = Vec::with_capacity(usize::from(WIDTH) * usize::from(HEIGHT) * 3);
        for y in 0..usize::from(HEIGHT) {
            for x in 0..usize::from(WIDTH) {
                let inside = (60..140).contains(&x) && (40..110).contains(&y);
                let stripes = if (x / 16) % 2 == 0 { 40 } else { 0 };
                rgb.push(if inside { 230 } else { (x * 255 / usize::from(WIDTH)) as u8 });
                rgb.push(if inside { 30 } else { (y * 255 / usize::from(HEIGHT)) as u8 });
                rgb.push(if inside { 60 } else { 100 + stripes });
            }
        }
        rgb
    }

    struct Setup {
        gray: bool,
        sampling: SamplingFactor,
        progressive: bool,
        restart_interval: u16,
        optimized_tables: bool,
    }

    const BASELINE: Setup = Setup {
        gray: false,
        sampling: SamplingFactor::R_4_2_0,
        progressive: false,
        restart_interval: 0,
        optimized_tables: false,
    };

    fn encode(setup: &Setup) -> Vec<u8> {
        let rgb = test_pattern();
        let mut out = Vec::new();
        let mut encoder = Encoder::new(&mut out, 90);
        encoder.set_sampling_factor(setup.sampling);
        encoder.set_progressive(setup.progressive);
        encoder.set_restart_interval(setup.restart_interval);
        encoder.set_optimized_huffman_tables(setup.optimized_tables);
        if setup.gray {
            let luma: Vec<u8> = rgb.chunks_exact(3).map(|p| ((u16::from(p[0]) + u16::from(p[1])) / 2) as u8).collect();
            encoder.encode(&luma, WIDTH, HEIGHT, ColorType::Luma).unwrap();
        } else {
            encoder.encode(&rgb, WIDTH, HEIGHT, ColorType::Rgb).unwrap();
        }
        out
    }

    /// jpeg-decoder's output at the same scale: an independent implementation to agree with.
    fn reference(bytes: &[u8], divisor: usize) -> (usize, usize, Vec<u8>) {
        let mut decoder = jpeg_decoder::Decoder::new(bytes);
        decoder.read_info().unwrap();
        let info = decoder.info().unwrap();
        let width = usize::from(info.width).div_ceil(divisor);
        decoder.scale(width as u16, u16::MAX).unwrap();
        let samples = decoder.decode().unwrap();
        let info = decoder.info().unwrap();
        (usize::from(info.width), usize::from(info.height), samples)
    }

    /// Mean and largest absolute difference between our decode and jpeg-decoder's.
    fn compare(bytes: &[u8], divisor: usize) -> (f64, u8) {
        let ours = decode(bytes, divisor, usize::MAX).unwrap();
        let (width, height, theirs) = reference(bytes, divisor);
        assert_eq!((ours.width as usize, ours.height as usize), (width, height), "size at 1/{divisor}");
        assert_eq!(ours.samples.len(), theirs.len());
        let differences = ours.samples.iter().zip(&theirs).map(|(&a, &b)| a.abs_diff(b));
        let (sum, max) = differences.fold((0u64, 0u8), |(sum, max), d| (sum + u64::from(d), max.max(d)));
        (sum as f64 / theirs.len() as f64, max)
    }

    /// Mean absolute difference of two sample buffers.
    fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(&a, &b)| f64::from(a.abs_diff(b))).sum::<f64>() / a.len() as f64
    }

    /// The full-size decode averaged over `divisor`×`divisor` squares: what a reduced decode
    /// should approximate.
    fn box_reduced(full: &[u8], width: usize, height: usize, channels: usize, divisor: usize) -> Vec<u8> {
        let (out_width, out_height) = (width.div_ceil(divisor), height.div_ceil(divisor));
        let mut out = Vec::with_capacity(out_width * out_height * channels);
        for y in 0..out_height {
            for x in 0..out_width {
                for c in 0..channels {
                    let (mut sum, mut count) = (0u32, 0u32);
                    for sy in y * divisor..((y + 1) * divisor).min(height) {
                        for sx in x * divisor..((x + 1) * divisor).min(width) {
                            sum += u32::from(full[(sy * width + sx) * channels + c]);
                            count += 1;
                        }
                    }
                    out.push(((sum + count / 2) / count) as u8);
                }
            }
        }
        out
    }

    fn assert_agrees(setup: &Setup, label: &str) {
        let bytes = encode(setup);
        let (mean, max) = compare(&bytes, 1);
        assert!(mean <= 0.8 && max <= 24, "{label} at full size: mean {mean:.2}, max {max}");
        // Reduced decodes are approximations: ours must be at least as close as jpeg-decoder's
        // to the box-filtered full-size image (jpeg-decoder reduces chroma further, then
        // upsamples; ours transforms chroma straight to the output size).
        let (width, height, full) = reference(&bytes, 1);
        let channels = full.len() / (width * height);
        for divisor in [2, 4, 8] {
            let truth = box_reduced(&full, width, height, channels, divisor);
            let ours = decode(&bytes, divisor, usize::MAX).unwrap();
            let ours_error = mean_difference(&ours.samples, &truth);
            let theirs_error = mean_difference(&reference(&bytes, divisor).2, &truth);
            assert!(
                ours_error <= theirs_error * 1.1 + 0.5,
                "{label} at 1/{divisor}: ours {ours_error:.2} from the box-filtered image, jpeg-decoder {theirs_error:.2}"
            );
        }
    }

    #[test]
    fn agrees_with_jpeg_decoder_on_every_layout_and_scale() {
        let cases = [
            ("baseline 4:2:0", BASELINE),
            ("baseline 4:4:4", Setup { sampling: SamplingFactor::R_4_4_4, ..BASELINE }),
            ("baseline 4:2:2", Setup { sampling: SamplingFactor::R_4_2_2, ..BASELINE }),
            ("baseline 4:4:0", Setup { sampling: SamplingFactor::R_4_4_0, ..BASELINE }),
            ("grey", Setup { gray: true, ..BASELINE }),
            ("restart intervals", Setup { restart_interval: 3, ..BASELINE }),
            ("optimised Huffman tables", Setup { optimized_tables: true, ..BASELINE }),
            ("progressive 4:2:0", Setup { progressive: true, ..BASELINE }),
            ("progressive grey", Setup { progressive: true, gray: true, ..BASELINE }),
            ("progressive with restarts", Setup { progressive: true, restart_interval: 5, ..BASELINE }),
            (
                "progressive, optimised tables",
                Setup { progressive: true, optimized_tables: true, sampling: SamplingFactor::R_4_4_4, ..BASELINE },
            ),
        ];
        for (label, setup) in &cases {
            assert_agrees(setup, label);
        }
    }

    #[test]
    fn agrees_with_jpeg_decoder_on_the_shared_photos() {
        let directory = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/images"));
        let Ok(entries) = std::fs::read_dir(directory) else {
            eprintln!("skipped: no photos at {}", directory.display());
            return;
        };
        let mut compared = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|extension| extension != "jpg") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            if let Err(DecodeError::Unsupported) = decode(&bytes, 8, usize::MAX) {
                continue; // CMYK
            }
            for (divisor, limit) in [(2, 1.5), (8, 2.5)] {
                let (mean, _) = compare(&bytes, divisor);
                assert!(mean <= limit, "{} at 1/{divisor}: mean difference {mean:.2}", path.display());
            }
            compared += 1;
        }
        assert!(compared >= 10, "only {compared} photos compared");
    }

    /// The progressive photos (and a synthetic progressive file): reduced decodes keep exactly
    /// the coefficients a full decode has at the positions they keep, through every
    /// successive-approximation scan, and the same non-zero flags when no scan was skipped.
    /// At 1/8 the photos' luma AC scans are skipped.
    #[test]
    fn reduced_progressive_decodes_keep_exactly_the_full_coefficients() {
        let mut files = vec![encode(&Setup { progressive: true, ..BASELINE })];
        let directory = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/images"));
        match std::fs::read_dir(directory) {
            Ok(entries) => files.extend(
                entries
                    .map(|entry| entry.unwrap().path())
                    .filter(|path| path.to_string_lossy().ends_with("_progressive.jpg"))
                    .map(|path| std::fs::read(path).unwrap()),
            ),
            Err(_) => eprintln!("shared photos skipped: none at {}", directory.display()),
        }
        for bytes in &files {
            let full = read_scans(bytes, 1, usize::MAX).unwrap();
            for divisor in [2, 4, 8] {
                let reduced = read_scans(bytes, divisor, usize::MAX).unwrap();
                if divisor == 8 && bytes.len() > 1 << 20 {
                    assert!(reduced.skipped_scans >= 4, "{} scans skipped at 1/8", reduced.skipped_scans);
                }
                for (ours, theirs) in reduced.frame.components.iter().zip(&full.frame.components) {
                    let (ours, theirs) = (ours.coefficients.as_ref().unwrap(), theirs.coefficients.as_ref().unwrap());
                    // Bit 0 (DC) is not tracked: DC refinement does not depend on it.
                    if reduced.skipped_scans == 0 {
                        let flags = |store: &ProgressiveCoefficients| {
                            store.nonzero.iter().map(|&mask| mask & !1).collect::<Vec<_>>()
                        };
                        assert_eq!(flags(ours), flags(theirs), "non-zero flags at 1/{divisor}");
                    }
                    // At full size every coefficient is kept, in natural order.
                    let per_block = ours.layout.per_block();
                    let blocks = ours.values.chunks_exact(per_block).zip(theirs.values.chunks_exact(64));
                    for (number, (kept, all)) in blocks.enumerate() {
                        for (k, &natural) in ZIGZAG.iter().enumerate() {
                            if let Some(slot) = ours.layout.slot(k) {
                                assert_eq!(kept[slot], all[natural], "block {number}, zigzag {k} at 1/{divisor}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn row_upsampling_is_the_triangle_filter() {
        for width in 1..12 {
            let row: Vec<u8> = (0..width).map(|x| (x * 53 % 256) as u8).collect();
            let mut out = vec![0u8; 2 * width];
            upsample_row(&row, &mut out);
            for x in 0..width {
                let near = 3 * u16::from(row[x]);
                let (left, right) = (u16::from(row[x.saturating_sub(1)]), u16::from(row[(x + 1).min(width - 1)]));
                assert_eq!(out[2 * x], ((near + left + 1) >> 2) as u8, "width {width}, x {x}");
                assert_eq!(out[2 * x + 1], ((near + right + 2) >> 2) as u8, "width {width}, x {x}");
            }
        }
    }

    #[test]
    fn full_size_decode_is_close_to_the_source() {
        let bytes = encode(&Setup { sampling: SamplingFactor::R_4_4_4, ..BASELINE });
        let ours = decode(&bytes, 1, usize::MAX).unwrap();
        let source = test_pattern();
        let mean = ours.samples.iter().zip(&source).map(|(&a, &b)| f64::from(a.abs_diff(b))).sum::<f64>()
            / source.len() as f64;
        assert!(mean < 3.0, "mean difference from the source {mean:.2}");
    }

    #[test]
    fn other_subsampling_is_left_to_the_general_decoder() {
        let bytes = encode(&Setup { sampling: SamplingFactor::R_4_1_1, ..BASELINE });
        assert!(matches!(decode(&bytes, 2, usize::MAX), Err(DecodeError::Unsupported)));
    }

    #[test]
    fn damaged_data_is_an_error_or_an_image_never_a_panic() {
        for progressive in [false, true] {
            let bytes = encode(&Setup { progressive, ..BASELINE });
            for cut in (200..bytes.len()).step_by(97) {
                let _ = decode(&bytes[..cut], 2, usize::MAX);
            }
            let mut state = 0x2545_F491u32;
            for _ in 0..200 {
                let mut damaged = bytes.clone();
                for _ in 0..4 {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    let at = 150 + state as usize % (damaged.len() - 150);
                    damaged[at] = (state >> 8) as u8;
                }
                for divisor in [1, 4] {
                    let _ = decode(&damaged, divisor, usize::MAX);
                }
            }
        }
    }

    #[test]
    fn images_over_the_pixel_limit_are_refused_before_allocating() {
        let bytes = encode(&BASELINE);
        let limit = usize::from(WIDTH) * usize::from(HEIGHT) - 1;
        assert!(matches!(decode(&bytes, 1, limit), Err(DecodeError::Invalid(_))));
    }
}
