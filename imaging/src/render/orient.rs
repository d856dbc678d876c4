//! EXIF orientation as a pixel permutation.
//!
//! Orientation is lossless and commutes with resizing, so render resizes the stored image to
//! the (possibly transposed) target size first and permutes only the small result: the
//! displayed result is the same as orienting first, without a full-size rotated copy.

/// The image as displayed for `orientation` (1..=8; anything else is treated as 1), from
/// `width`×`height` pixels of `channels` interleaved bytes. Returns the pixels and the
/// displayed width and height.
pub(crate) fn apply(
    data: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    orientation: u8,
) -> (Vec<u8>, usize, usize) {
    let transposed = matches!(orientation, 5..=8);
    let (out_width, out_height) = if transposed { (height, width) } else { (width, height) };
    let mut out = Vec::with_capacity(data.len());
    for y in 0..out_height {
        for x in 0..out_width {
            // The stored pixel shown at displayed (x, y).
            let (sx, sy) = match orientation {
                2 => (width - 1 - x, y),
                3 => (width - 1 - x, height - 1 - y),
                4 => (x, height - 1 - y),
                5 => (y, x),
                6 => (y, height - 1 - x),
                7 => (width - 1 - y, height - 1 - x),
                8 => (width - 1 - y, x),
                _ => (x, y),
            };
            let at = (sy * width + sx) * channels;
            out.extend_from_slice(&data[at..at + channels]);
        }
    }
    (out, out_width, out_height)
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
            let (out, w, h) = apply(&STORED, 3, 2, 1, orientation);
            assert_eq!((out.as_slice(), w, h), (expected, width, height), "orientation {orientation}");
        }
    }

    #[test]
    fn multi_channel_pixels_move_together() {
        let rgb: Vec<u8> = STORED.iter().flat_map(|&v| [v, v + 10, v + 20]).collect();
        let (out, _, _) = apply(&rgb, 3, 2, 3, 6);
        assert_eq!(&out[..6], &[4, 14, 24, 1, 11, 21]);
    }
}
