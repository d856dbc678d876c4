//! Dequantisation and inverse DCT straight to a reduced size: an M-point output (M = 1, 2, 4
//! or 8 per axis) from the block's lowest M frequencies, which is the image at 8/M times less
//! resolution (what libjpeg calls DCT scaling, and libvips shrink-on-load).
//!
//! With the orthonormal 8-point DCT of JPEG, keeping the first M coefficients of each axis and
//! evaluating f(x) = Σ_u C(u)/2 · F(u) · cos((2x + 1)uπ / 2M) for x < M gives the M-point
//! image with the same mean (DC) and the low frequencies intact.

/// Separable transform for one block shape: per axis, `basis[x][u] = C(u)/2 · cos((2x+1)uπ/2M)`.
pub(super) struct ScaledIdct {
    width: usize,
    height: usize,
    /// `horizontal[u][x]`: the horizontal basis, transposed so that rows vectorise.
    horizontal: [[f32; 8]; 8],
    vertical: [[f32; 8]; 8],
    /// The transform specialised for this block shape (constant loop bounds vectorise).
    kernel: Kernel,
}

type Kernel = fn(&ScaledIdct, &[i16], &Dequantisation, &mut [u8], usize);

/// A quantisation table as the transform multiplies by it, prepared once per scan rather than
/// per block (for the 8×8 transform, with the AAN scale factors and normalisation folded in).
pub(super) struct Dequantisation([f32; 64]);

fn basis(size: usize) -> [[f32; 8]; 8] {
    let mut basis = [[0f32; 8]; 8];
    for (x, row) in basis.iter_mut().enumerate().take(size) {
        for (u, value) in row.iter_mut().enumerate().take(size) {
            let scale = if u == 0 { std::f64::consts::FRAC_1_SQRT_2 } else { 1.0 } / 2.0;
            let angle = (2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / (2 * size) as f64;
            *value = (scale * angle.cos()) as f32;
        }
    }
    basis
}

/// The kernel for `width`×`height` outputs, each 1, 2, 4 or 8.
macro_rules! kernel_for {
    ($width:expr, $height:expr; $(($w:literal, $h:literal)),*) => {
        match ($width, $height) {
            $(($w, $h) => transform_sized::<$w, $h> as Kernel,)*
            _ => unreachable!("block sizes are powers of two up to 8, and 8x8 is `full_size`"),
        }
    };
}

impl ScaledIdct {
    /// `width` and `height`: output samples per block along each axis, each 1, 2, 4 or 8.
    pub fn new(width: usize, height: usize) -> Self {
        let horizontal_by_x = basis(width);
        let mut horizontal = [[0f32; 8]; 8];
        for (u, row) in horizontal.iter_mut().enumerate() {
            for (x, value) in row.iter_mut().enumerate() {
                *value = horizontal_by_x[x][u];
            }
        }
        let kernel = if (width, height) == (8, 8) {
            full_size as Kernel
        } else {
            kernel_for!(width, height;
            (1, 1), (1, 2), (1, 4), (1, 8), (2, 1), (2, 2), (2, 4), (2, 8),
            (4, 1), (4, 2), (4, 4), (4, 8), (8, 1), (8, 2), (8, 4))
        };
        ScaledIdct { width, height, horizontal, vertical: basis(height), kernel }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// `quantisation` (natural order) prepared for this transform.
    pub fn dequantisation(&self, quantisation: &[u16; 64]) -> Dequantisation {
        let full_size = (self.width, self.height) == (8, 8);
        Dequantisation(std::array::from_fn(|i| {
            let (v, u) = (i / 8, i % 8);
            let factor = if full_size { AAN_SCALE[v] * AAN_SCALE[u] / 8.0 } else { 1.0 };
            f32::from(quantisation[i]) * factor
        }))
    }

    /// Dequantises `coefficients` (natural order) with `dequantisation` (from
    /// [`Self::dequantisation`]) and writes the `width`×`height` samples, level-shifted and
    /// clamped, at `output[..]` with `stride`.
    #[inline]
    pub fn transform(&self, coefficients: &[i16], dequantisation: &Dequantisation, output: &mut [u8], stride: usize) {
        (self.kernel)(self, coefficients, dequantisation, output, stride);
    }
}

fn transform_sized<const W: usize, const H: usize>(
    idct: &ScaledIdct,
    coefficients: &[i16],
    Dequantisation(dequantisation): &Dequantisation,
    output: &mut [u8],
    stride: usize,
) {
    // Only the first H rows and W columns of frequencies contribute.
    let mut rows = [[0f32; W]; H];
    let mut used_rows = 0;
    for (v, row) in rows.iter_mut().enumerate() {
        let mut any = 0i16;
        for (u, value) in row.iter_mut().enumerate() {
            let coefficient = coefficients[v * 8 + u];
            any |= coefficient;
            *value = f32::from(coefficient) * dequantisation[v * 8 + u];
        }
        if any != 0 {
            used_rows = v + 1;
        }
    }
    if used_rows <= 1 && coefficients[1..W].iter().fold(0, |any, &coefficient| any | coefficient) == 0 {
        // DC only (most blocks of a reduced decode): a flat block.
        let level = clamp(rows[0][0] * idct.vertical[0][0] * idct.horizontal[0][0]);
        for y in 0..H {
            output[y * stride..y * stride + W].fill(level);
        }
        return;
    }
    for y in 0..H {
        // Vertical pass: the row of horizontal frequencies for output row y.
        let mut frequencies = [0f32; W];
        for (v, row) in rows.iter().enumerate().take(used_rows) {
            let weight = idct.vertical[y][v];
            for (sum, &value) in frequencies.iter_mut().zip(row) {
                *sum += weight * value;
            }
        }
        // Horizontal pass.
        let mut samples = [0f32; W];
        for (u, &frequency) in frequencies.iter().enumerate() {
            for (sample, &weight) in samples.iter_mut().zip(&idct.horizontal[u]) {
                *sample += frequency * weight;
            }
        }
        for (out, &sample) in output[y * stride..y * stride + W].iter_mut().zip(&samples) {
            *out = clamp(sample);
        }
    }
}

type Lanes = [f32; 8];

#[inline(always)]
fn lanes(f: impl Fn(usize) -> f32) -> Lanes {
    std::array::from_fn(f)
}

/// One 8-point inverse DCT on eight columns at once (each `Lanes` is one frequency of all
/// eight), with the AAN factorisation of libjpeg's `jidctflt.c`: 5 multiplications instead of
/// 64 per column. The inputs carry the AAN scale factors (see `AAN_SCALE`).
#[inline(always)]
fn aan_8(input: &[Lanes; 8]) -> [Lanes; 8] {
    let add = |a: &Lanes, b: &Lanes| lanes(|i| a[i] + b[i]);
    let sub = |a: &Lanes, b: &Lanes| lanes(|i| a[i] - b[i]);
    let scale = |a: &Lanes, factor: f32| lanes(|i| a[i] * factor);
    // Even part.
    let (tmp10, tmp11) = (add(&input[0], &input[4]), sub(&input[0], &input[4]));
    let tmp13 = add(&input[2], &input[6]);
    let tmp12 = sub(&scale(&sub(&input[2], &input[6]), std::f32::consts::SQRT_2), &tmp13);
    let (even0, even3) = (add(&tmp10, &tmp13), sub(&tmp10, &tmp13));
    let (even1, even2) = (add(&tmp11, &tmp12), sub(&tmp11, &tmp12));
    // Odd part.
    let (z13, z10) = (add(&input[5], &input[3]), sub(&input[5], &input[3]));
    let (z11, z12) = (add(&input[1], &input[7]), sub(&input[1], &input[7]));
    let odd7 = add(&z11, &z13);
    let odd11 = scale(&sub(&z11, &z13), std::f32::consts::SQRT_2);
    let z5 = scale(&add(&z10, &z12), 1.847_759);
    let odd10 = sub(&scale(&z12, 1.082_392_2), &z5);
    let odd12 = add(&scale(&z10, -2.613_126), &z5);
    let odd6 = sub(&odd12, &odd7);
    let odd5 = sub(&odd11, &odd6);
    let odd4 = add(&odd10, &odd5);
    [
        add(&even0, &odd7),
        add(&even1, &odd6),
        add(&even2, &odd5),
        sub(&even3, &odd4),
        add(&even3, &odd4),
        sub(&even2, &odd5),
        sub(&even1, &odd6),
        sub(&even0, &odd7),
    ]
}

/// cos(kπ/16)·√2 (1 for k = 0): folded into the dequantisation for `aan_8`.
const AAN_SCALE: [f32; 8] = [1.0, 1.387_039_8, 1.306_563, 1.175_875_6, 1.0, 0.785_694_96, 0.541_196_1, 0.275_899_38];

/// The full-size 8×8 transform (no reduction), the costly one: AAN on rows and columns.
fn full_size(
    _: &ScaledIdct,
    coefficients: &[i16],
    Dequantisation(dequantisation): &Dequantisation,
    output: &mut [u8],
    stride: usize,
) {
    // An OR over all of them (which vectorises) rather than a search that stops early.
    if coefficients[1..].iter().fold(0, |any, &coefficient| any | coefficient) == 0 {
        let level = clamp(f32::from(coefficients[0]) * dequantisation[0]);
        for y in 0..8 {
            output[y * stride..y * stride + 8].fill(level);
        }
        return;
    }
    // rows[v][u]: dequantised, AAN-scaled, divided by 8 for the two passes' normalisation.
    let rows: [Lanes; 8] =
        std::array::from_fn(|v| lanes(|u| f32::from(coefficients[v * 8 + u]) * dequantisation[v * 8 + u]));
    // Vertical pass: columns[y][u]; then transpose so that the horizontal pass is columns too.
    let columns = aan_8(&rows);
    let transposed: [Lanes; 8] = std::array::from_fn(|u| lanes(|y| columns[y][u]));
    let samples = aan_8(&transposed); // samples[x][y]
    for y in 0..8 {
        for (x, out) in output[y * stride..y * stride + 8].iter_mut().enumerate() {
            *out = clamp(samples[x][y]);
        }
    }
}

#[inline]
fn clamp(sample: f32) -> u8 {
    (sample + 128.5).clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_block_keeps_its_level_at_every_size() {
        let mut coefficients = [0i16; 64];
        // DC 80 with quantiser 2: 160 / 8 = 20 above mid-grey.
        coefficients[0] = 80;
        let mut quantisation = [1u16; 64];
        quantisation[0] = 2;
        for size in [1, 2, 4, 8] {
            let mut output = [0u8; 64];
            let idct = ScaledIdct::new(size, size);
            idct.transform(&coefficients, &idct.dequantisation(&quantisation), &mut output, 8);
            for y in 0..size {
                assert!(output[y * 8..y * 8 + size].iter().all(|&v| v == 148), "size {size}: {output:?}");
            }
        }
    }

    #[test]
    fn fast_full_size_transform_matches_the_definition() {
        let quantisation: [u16; 64] = std::array::from_fn(|i| 1 + (i % 7) as u16);
        let mut state = 12_345u32;
        for _ in 0..200 {
            let coefficients: [i16; 64] = std::array::from_fn(|i| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let spread = if i == 0 { 200 } else { 40 / (1 + i as i32 / 8) };
                ((state >> 16) as i32 % (2 * spread + 1) - spread) as i16
            });
            let (mut fast, mut reference) = ([0u8; 64], [0u8; 64]);
            let idct = ScaledIdct::new(8, 8);
            full_size(&idct, &coefficients, &idct.dequantisation(&quantisation), &mut fast, 8);
            let plain = Dequantisation(quantisation.map(f32::from));
            transform_sized::<8, 8>(&idct, &coefficients, &plain, &mut reference, 8);
            for (a, b) in fast.iter().zip(&reference) {
                assert!(a.abs_diff(*b) <= 1, "{fast:?} vs {reference:?}");
            }
        }
    }

    #[test]
    fn reduced_output_is_the_mean_of_the_full_one() {
        // A horizontal ramp: the 1-point output is its mean, the 2-point output its halves' means.
        let mut coefficients = [0i16; 64];
        coefficients[0] = 40;
        coefficients[1] = -60;
        let quantisation = [1u16; 64];
        let transform = |size: usize, output: &mut [u8]| {
            let idct = ScaledIdct::new(size, size);
            idct.transform(&coefficients, &idct.dequantisation(&quantisation), output, size);
        };
        let mut full = [0u8; 64];
        transform(8, &mut full);
        let mean = |values: &[u8]| values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
        let mut one = [0u8; 1];
        transform(1, &mut one);
        assert!((f64::from(one[0]) - mean(&full[..8])).abs() <= 1.0);
        let mut two = [0u8; 4];
        transform(2, &mut two);
        assert!(two[0] < two[1], "the ramp rises: {two:?}");
        assert!((f64::from(two[0]) - mean(&full[..4])).abs() <= 3.0, "{two:?} vs {full:?}");
    }
}
