//! Huffman decoding of JPEG entropy-coded data (ITU T.81 annex F and G): the bit reader, the
//! tables, and the block decoders of sequential and progressive scans.

use super::{DecodeError, ZIGZAG};

/// Codes up to this many bits are decoded with one table lookup.
const LOOKUP_BITS: u32 = 9;

/// The zero run `HuffmanTable::run_values` gives the AC end-of-block code (symbol 0x00).
const END_OF_BLOCK: u8 = u8::MAX;

/// Reads entropy-coded bits, most significant first, removing the 0x00 stuffed after each 0xFF.
/// At a marker (or the end of the data) it feeds zero bits, as libjpeg does, and remembers where
/// the marker is so that a restart can resume after it.
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    position: usize,
    /// The next bit is the most significant one.
    bits: u64,
    count: u32,
    at_marker: bool,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, position: 0, bits: 0, count: 0, at_marker: false }
    }

    /// Where the reader stopped in `data` (at the marker that ended the scan, once it is hit).
    pub fn position(&self) -> usize {
        self.position
    }

    fn refill(&mut self) {
        // Fast path: eight bytes without 0xFF need no unstuffing.
        if !self.at_marker
            && let Some(chunk) = self.data.get(self.position..self.position + 8)
        {
            let word = u64::from_be_bytes(chunk.try_into().unwrap_or([0xFF; 8]));
            let inverted = !word;
            let has_ff = inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080;
            if has_ff == 0 {
                let take = (64 - self.count) / 8;
                let taken = if take == 8 { word } else { word >> (64 - 8 * take) };
                self.bits |= taken << (64 - self.count - 8 * take);
                self.count += 8 * take;
                self.position += take as usize;
                return;
            }
        }
        while self.count <= 56 {
            let byte = if self.at_marker {
                0
            } else {
                match self.data.get(self.position) {
                    Some(0xFF) if self.data.get(self.position + 1) == Some(&0x00) => {
                        self.position += 2;
                        0xFF
                    }
                    Some(0xFF) | None => {
                        self.at_marker = true;
                        0
                    }
                    Some(&byte) => {
                        self.position += 1;
                        byte
                    }
                }
            };
            self.bits |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    #[inline]
    fn peek(&mut self, count: u32) -> u32 {
        if self.count < count {
            self.refill();
        }
        (self.bits >> (64 - count)) as u32
    }

    #[inline]
    fn consume(&mut self, count: u32) {
        self.bits <<= count;
        self.count -= count;
    }

    #[inline]
    pub fn bits(&mut self, count: u32) -> u32 {
        if count == 0 {
            return 0;
        }
        let value = self.peek(count);
        self.consume(count);
        value
    }

    /// Drops the next `count` bits (up to 64).
    #[inline]
    fn skip(&mut self, mut count: u32) {
        while count > 0 {
            let step = count.min(32);
            self.peek(step);
            self.consume(step);
            count -= step;
        }
    }

    #[inline]
    pub fn bit(&mut self) -> bool {
        self.bits(1) == 1
    }

    /// `count` bits as a signed value.
    #[inline]
    fn signed(&mut self, count: u32) -> i32 {
        extend(self.bits(count) as i32, count)
    }

    /// At a restart interval's end: drops the buffered bits and steps over the RSTn marker.
    /// A missing or different marker is tolerated (the next bits are then read as they come), as
    /// libjpeg does for damaged files.
    pub fn restart(&mut self) {
        self.bits = 0;
        self.count = 0;
        self.at_marker = false;
        let mut at = self.position;
        while self.data.get(at) == Some(&0xFF) {
            at += 1;
        }
        if at > self.position && matches!(self.data.get(at), Some(0xD0..=0xD7)) {
            self.position = at + 1;
        }
    }
}

/// F.2.2.1 EXTEND: `count` raw bits as a signed coefficient.
#[inline]
fn extend(value: i32, count: u32) -> i32 {
    if count > 0 && value < 1 << (count - 1) { value - (1 << count) + 1 } else { value }
}

/// A Huffman table from a DHT segment.
pub(super) struct HuffmanTable {
    /// Indexed by the next `LOOKUP_BITS` bits: code length (0 = longer code) and symbol.
    lookup: Box<[(u8, u8); 1 << LOOKUP_BITS]>,
    /// Per code length 1..=16: the largest code of that length (-1 when none), and the offset
    /// from a code of that length to its symbol's index.
    max_code: [i32; 17],
    offset: [i32; 17],
    symbols: Vec<u8>,
    /// Indexed like `lookup`: when a code and its value bits both fit in the lookahead, the
    /// decoded (value, zero run, bits used); bits used 0 otherwise. For DC tables the run is 0
    /// and a zero difference (size 0) is included; for AC tables the end-of-block code has the
    /// run `END_OF_BLOCK`, and zero-run codes are not included.
    run_values: Box<[(i16, u8, u8); 1 << LOOKUP_BITS]>,
}

impl HuffmanTable {
    /// `counts[i]` codes of length i + 1, then their symbols (annex C); `dc` for a DC table.
    pub fn new(counts: &[u8; 16], symbols: &[u8], dc: bool) -> Result<Self, DecodeError> {
        let total: usize = counts.iter().map(|&count| usize::from(count)).sum();
        if total != symbols.len() || total > 256 {
            return Err(DecodeError::invalid("JPEG Huffman table has a wrong symbol count"));
        }
        let mut lookup = Box::new([(0u8, 0u8); 1 << LOOKUP_BITS]);
        let (mut max_code, mut offset) = ([-1i32; 17], [0i32; 17]);
        let (mut code, mut index) = (0u32, 0usize);
        for length in 1..=16u32 {
            let count = u32::from(counts[length as usize - 1]);
            offset[length as usize] = index as i32 - code as i32;
            for _ in 0..count {
                if code >= 1 << length {
                    return Err(DecodeError::invalid("JPEG Huffman table has too many codes"));
                }
                if length <= LOOKUP_BITS {
                    let shift = LOOKUP_BITS - length;
                    for fill in 0..1u32 << shift {
                        lookup[((code << shift) | fill) as usize] = (length as u8, symbols[index]);
                    }
                }
                code += 1;
                index += 1;
            }
            if count > 0 {
                max_code[length as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        let mut run_values = Box::new([(0i16, 0u8, 0u8); 1 << LOOKUP_BITS]);
        for (bits, entry) in run_values.iter_mut().enumerate() {
            let (length, symbol) = lookup[bits];
            let (run, size) = (symbol >> 4, u32::from(symbol & 15));
            let used = u32::from(length) + size;
            let usable = if dc { run == 0 && size <= 11 } else { size > 0 };
            if length > 0 && usable && used <= LOOKUP_BITS {
                let raw = ((bits as u32) >> (LOOKUP_BITS - used)) & ((1u32 << size) - 1);
                *entry = (extend(raw as i32, size) as i16, run, used as u8);
            } else if length > 0 && !dc && symbol == 0 {
                *entry = (0, END_OF_BLOCK, length);
            }
        }
        Ok(HuffmanTable { lookup, max_code, offset, symbols: symbols.to_vec(), run_values })
    }

    /// A code with its value bits when both fit in the lookahead: (value, zero run). Not
    /// the end-of-block code, whose meaning differs in progressive scans.
    #[inline]
    fn decode_run_value(&self, reader: &mut BitReader<'_>) -> Option<(i16, usize)> {
        let (value, run, used) = self.run_values[reader.peek(LOOKUP_BITS) as usize];
        if used == 0 || run == END_OF_BLOCK {
            return None;
        }
        reader.consume(u32::from(used));
        Some((value, usize::from(run)))
    }

    #[inline]
    pub fn decode(&self, reader: &mut BitReader<'_>) -> Result<u8, DecodeError> {
        let bits = reader.peek(16);
        let (length, symbol) = self.lookup[(bits >> (16 - LOOKUP_BITS)) as usize];
        if length > 0 {
            reader.consume(u32::from(length));
            return Ok(symbol);
        }
        for length in LOOKUP_BITS + 1..=16 {
            let code = (bits >> (16 - length)) as i32;
            if code <= self.max_code[length as usize] {
                reader.consume(length);
                let index = (code + self.offset[length as usize]) as usize;
                return self.symbols.get(index).copied().ok_or_else(|| DecodeError::invalid("bad Huffman code"));
            }
        }
        Err(DecodeError::invalid("JPEG data has an invalid Huffman code"))
    }
}

#[inline]
fn dc_difference(reader: &mut BitReader<'_>, table: &HuffmanTable) -> Result<i32, DecodeError> {
    if let Some((value, _)) = table.decode_run_value(reader) {
        return Ok(i32::from(value));
    }
    let size = u32::from(table.decode(reader)?);
    if size > 11 {
        return Err(DecodeError::invalid("JPEG DC coefficient is out of range"));
    }
    Ok(reader.signed(size))
}

/// A sequential-mode block (F.2.2), coefficients stored in natural order. `block` must be zero.
pub(super) fn decode_block(
    reader: &mut BitReader<'_>,
    dc: &HuffmanTable,
    ac: &HuffmanTable,
    predictor: &mut i32,
    block: &mut [i16; 64],
) -> Result<(), DecodeError> {
    *predictor = predictor.wrapping_add(dc_difference(reader, dc)?);
    block[0] = *predictor as i16;
    let mut k = 1usize;
    while k < 64 {
        let (value, run, used) = ac.run_values[reader.peek(LOOKUP_BITS) as usize];
        if used > 0 {
            reader.consume(u32::from(used));
            if run == END_OF_BLOCK {
                break;
            }
            k += usize::from(run);
            if k > 63 {
                return Err(DecodeError::invalid("JPEG block has more than 64 coefficients"));
            }
            block[ZIGZAG[k]] = value;
            k += 1;
            continue;
        }
        let symbol = ac.decode(reader)?;
        let (run, size) = (usize::from(symbol >> 4), u32::from(symbol & 15));
        if size == 0 {
            if run != 15 {
                break;
            }
            k += 16;
            continue;
        }
        k += run;
        if k > 63 {
            return Err(DecodeError::invalid("JPEG block has more than 64 coefficients"));
        }
        block[ZIGZAG[k]] = reader.signed(size) as i16;
        k += 1;
    }
    Ok(())
}

/// Which coefficients of a progressive block are kept, and where: only those the inverse DCT
/// reads (the lowest frequencies when the image is reduced). The others are decoded but only
/// their non-zero flag is kept, which is all that later refinement scans need of them.
pub(super) struct KeptCoefficients {
    /// Per zigzag index: the slot in a block's kept values, or `NOT_KEPT`.
    slots: [u8; 64],
    /// Bit k set when zigzag coefficient k is kept.
    kept: u64,
    per_block: usize,
}

const NOT_KEPT: u8 = u8::MAX;

impl KeptCoefficients {
    /// The `width`×`height` lowest frequencies (natural order, row-major in the block's slots).
    pub fn lowest(width: usize, height: usize) -> Self {
        let mut slots = [NOT_KEPT; 64];
        let mut kept = 0u64;
        for (k, &natural) in ZIGZAG.iter().enumerate() {
            let (v, u) = (natural / 8, natural % 8);
            if v < height && u < width {
                slots[k] = (v * width + u) as u8;
                kept |= 1 << k;
            }
        }
        KeptCoefficients { slots, kept, per_block: width * height }
    }

    /// The slot of zigzag coefficient `k` in a block's kept values, if it is kept.
    #[cfg(test)]
    pub fn slot(&self, k: usize) -> Option<usize> {
        (self.slots[k] != NOT_KEPT).then_some(usize::from(self.slots[k]))
    }

    /// The kept zigzag positions, as bits.
    pub fn kept(&self) -> u64 {
        self.kept
    }

    /// Kept values per block.
    pub fn per_block(&self) -> usize {
        self.per_block
    }
}

/// Bits `start..=end` (zigzag indices, `start <= end <= 63`).
#[inline]
pub(super) fn band_mask(start: usize, end: usize) -> u64 {
    (u64::MAX >> (63 - end)) & (u64::MAX << start)
}

/// One block of a progressive component: its kept values and the non-zero flags of all 64
/// coefficients (bit k for zigzag index k).
pub(super) struct ProgressiveBlock<'a> {
    pub values: &'a mut [i16],
    pub nonzero: &'a mut u64,
    pub layout: &'a KeptCoefficients,
}

impl ProgressiveBlock<'_> {
    #[inline]
    fn set(&mut self, k: usize, value: i16) {
        *self.nonzero |= 1 << k;
        if let Some(slot) = self.values.get_mut(usize::from(self.layout.slots[k])) {
            *slot = value;
        }
    }

    /// Reads the correction bit of every coefficient in `range` (a bit mask of zigzag
    /// indices) that is already non-zero, in zigzag order, and applies those of kept ones
    /// (`one` is the bit being refined). Bits of coefficients not kept are skipped in bulk.
    #[inline]
    fn refine(&mut self, reader: &mut BitReader<'_>, range: u64, one: i16) {
        let mut refined = *self.nonzero & range;
        let mut kept = refined & self.layout.kept;
        while kept != 0 {
            let k = kept.trailing_zeros();
            let below = (1u64 << k) - 1;
            reader.skip((refined & below).count_ones());
            refined &= !below;
            refined &= refined - 1;
            kept &= kept - 1;
            if reader.bit()
                && let Some(coefficient) = self.values.get_mut(usize::from(self.layout.slots[k as usize]))
                && *coefficient & one == 0
            {
                *coefficient =
                    if *coefficient >= 0 { coefficient.wrapping_add(one) } else { coefficient.wrapping_sub(one) };
            }
        }
        reader.skip(refined.count_ones());
    }
}

/// Progressive DC scan, first pass (G.1.2.1).
pub(super) fn decode_dc_first(
    reader: &mut BitReader<'_>,
    dc: &HuffmanTable,
    predictor: &mut i32,
    low_bit: u32,
    block: ProgressiveBlock<'_>,
) -> Result<(), DecodeError> {
    *predictor = predictor.wrapping_add(dc_difference(reader, dc)?);
    // The DC coefficient is always kept (slot 0).
    block.values[0] = (*predictor << low_bit) as i16;
    Ok(())
}

/// Progressive DC scan, refinement: one more bit of the DC coefficient.
pub(super) fn decode_dc_refine(reader: &mut BitReader<'_>, low_bit: u32, block: ProgressiveBlock<'_>) {
    if reader.bit() {
        block.values[0] |= 1 << low_bit;
    }
}

/// Progressive AC scan over zigzag `start..=end`, first pass (G.1.2.2), of a block that is not
/// in an end-of-band run.
pub(super) fn decode_ac_first(
    reader: &mut BitReader<'_>,
    ac: &HuffmanTable,
    (start, end): (usize, usize),
    low_bit: u32,
    eob_run: &mut u32,
    mut block: ProgressiveBlock<'_>,
) -> Result<(), DecodeError> {
    let mut k = start;
    while k <= end {
        if let Some((value, run)) = ac.decode_run_value(reader) {
            k += run;
            if k > end {
                return Err(DecodeError::invalid("JPEG progressive block overruns its band"));
            }
            block.set(k, (i32::from(value) << low_bit) as i16);
            k += 1;
            continue;
        }
        let symbol = ac.decode(reader)?;
        let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
        if size == 0 {
            if run < 15 {
                *eob_run = (1 << run) - 1 + reader.bits(run);
                break;
            }
            k += 16;
            continue;
        }
        k += run as usize;
        if k > end {
            return Err(DecodeError::invalid("JPEG progressive block overruns its band"));
        }
        block.set(k, (reader.signed(size) << low_bit) as i16);
        k += 1;
    }
    Ok(())
}

/// A refinement code the one-lookup path did not take: (zero run, new coefficient), or an
/// end-of-band run started in `eob_run`.
fn refinement_symbol(
    reader: &mut BitReader<'_>,
    ac: &HuffmanTable,
    one: i16,
    eob_run: &mut u32,
) -> Result<(u32, i16), DecodeError> {
    let symbol = ac.decode(reader)?;
    let (run, size) = (u32::from(symbol >> 4), u32::from(symbol & 15));
    let value = match size {
        0 if run < 15 => {
            *eob_run = (1 << run) + reader.bits(run);
            0
        }
        0 => 0,
        1 => {
            if reader.bit() {
                one
            } else {
                -one
            }
        }
        _ => return Err(DecodeError::invalid("JPEG refinement scan has a bad coefficient size")),
    };
    Ok((run, value))
}

/// Progressive AC scan, refinement (G.1.2.3): one more bit of every coefficient already
/// non-zero, and new coefficients of magnitude 1 << `low_bit`.
pub(super) fn decode_ac_refine(
    reader: &mut BitReader<'_>,
    ac: &HuffmanTable,
    (start, end): (usize, usize),
    low_bit: u32,
    eob_run: &mut u32,
    mut block: ProgressiveBlock<'_>,
) -> Result<(), DecodeError> {
    let one = 1i16 << low_bit;
    let mut k = start;
    if *eob_run == 0 {
        while k <= end {
            // A correction code and its sign bit in one lookup (their value is ±1, times `one`).
            let (run, value) = if let Some((sign, run)) = ac.decode_run_value(reader) {
                if sign.unsigned_abs() != 1 {
                    return Err(DecodeError::invalid("JPEG refinement scan has a bad coefficient size"));
                }
                (run as u32, sign * one)
            } else {
                refinement_symbol(reader, ac, one, eob_run)?
            };
            if *eob_run > 0 {
                break;
            }
            // Skip `run` coefficients that are still zero (refining the non-zero ones passed on
            // the way), then place `value` on the next zero one: the (run + 1)-th zero from k.
            let mut zeros = !*block.nonzero & band_mask(k, end);
            for _ in 0..run {
                zeros &= zeros.wrapping_sub(1);
            }
            if zeros == 0 {
                // The band ends first (damaged data): refine what is left of it.
                block.refine(reader, band_mask(k, end), one);
                k = end + 1;
                break;
            }
            let target = zeros.trailing_zeros() as usize;
            block.refine(reader, band_mask(k, target), one);
            if value != 0 {
                block.set(target, value);
            }
            k = target + 1;
        }
    }
    if *eob_run > 0 {
        // In an end-of-band run: only the non-zero coefficients get their correction bit.
        if k <= end {
            block.refine(reader, band_mask(k, end), one);
        }
        *eob_run -= 1;
    }
    Ok(())
}
