//! EXIF orientation as a pixel permutation.
//!
//! Orientation is lossless and commutes with resizing, so render resizes the stored image to
//! the (possibly transposed) target size first and permutes only the small result: the
//! displayed result is the same as orienting first, without a full-size rotated copy.

use super::pixels::Channels;

/// The image as displayed for `orientation` (1..=8; anything else is treated as 1), from
/// `width`×`height` pixels of 8-bit `channels`. Returns the pixels and the
/// displayed width and height.
pub(crate) fn apply(
    data: &[u8],
    width: usize,
    height: usize,
    channels: Channels,
    orientation: u8,
) -> (Vec<u8>, usize, usize) {
    let transposed = matches!(orientation, 5..=8);
    let (out_width, out_height) = if transposed { (height, width) } else { (width, height) };
    // Pixels as fixed-size arrays, so that each move is one copy of known size.
    let out = match channels {
        Channels::Gray => permute::<1>(data, width, height, orientation),
        Channels::GrayAlpha => permute::<2>(data, width, height, orientation),
        Channels::Rgb => permute::<3>(data, width, height, orientation),
        Channels::Rgba => permute::<4>(data, width, height, orientation),
    };
    (out, out_width, out_height)
}

fn permute<const CHANNELS: usize>(data: &[u8], width: usize, height: usize, orientation: u8) -> Vec<u8> {
    let (pixels, _) = data.as_chunks::<CHANNELS>();
    permute_pixels(pixels, width, height, orientation).into_flattened()
}

/// The displayed pixels in row order. Along a displayed row the stored pixel moves by a
/// constant step: ±1 (a stored row, possibly reversed) or ±`width` (a stored column).
fn permute_pixels<T: Copy>(pixels: &[T], width: usize, height: usize, orientation: u8) -> Vec<T> {
    let (w, h) = (width as isize, height as isize);
    let transposed = matches!(orientation, 5..=8);
    let (out_width, out_height) = if transposed { (height, width) } else { (width, height) };
    let mut out = Vec::with_capacity(width * height);
    for y in 0..out_height as isize {
        // The stored index of displayed (0, y), and the step to displayed (x + 1, y).
        let (start, step) = match orientation {
            2 => (y * w + w - 1, -1),
            3 => ((h - 1 - y) * w + w - 1, -1),
            4 => ((h - 1 - y) * w, 1),
            5 => (y, w),
            6 => ((h - 1) * w + y, -w),
            7 => ((h - 1) * w + w - 1 - y, -w),
            8 => (w - 1 - y, w),
            _ => (y * w, 1),
        };
        out.extend((0..out_width as isize).map(|x| pixels[(start + x * step) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 one-channel image:
    /// ```text
    /// 1 2 3
    /// 4 5 6
    /// ```
    const STORED: [u8; 6] = [1, 2, 3, 4, 5, 6];

    #[test]
    fn all_eight_orientations() {
        let cases: [(u8, &[u8], usize, usize); 8] = [
            (1, &[1, 2, 3, 4, 5, 6], 3, 2),
            (2, &[3, 2, 1, 6, 5, 4], 3, 2),
            (3, &[6, 5, 4, 3, 2, 1], 3, 2),
            (4, &[4, 5, 6, 1, 2, 3], 3, 2),
            (5, &[1, 4, 2, 5, 3, 6], 2, 3),
            (6, &[4, 1, 5, 2, 6, 3], 2, 3),
            (7, &[6, 3, 5, 2, 4, 1], 2, 3),
            (8, &[3, 6, 2, 5, 1, 4], 2, 3),
        ];
        for (orientation, expected, width, height) in cases {
            let (out, w, h) = apply(&STORED, 3, 2, Channels::Gray, orientation);
            assert_eq!((out.as_slice(), w, h), (expected, width, height), "orientation {orientation}");
        }
    }

    #[test]
    fn multi_channel_pixels_move_together() {
        let rgb: Vec<u8> = STORED.iter().flat_map(|&v| [v, v + 10, v + 20]).collect();
        let (out, _, _) = apply(&rgb, 3, 2, Channels::Rgb, 6);
        assert_eq!(&out[..6], &[4, 14, 24, 1, 11, 21]);
    }
}
