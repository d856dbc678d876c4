//! CMYK (and YCCK) JPEG samples to sRGB.
//!
//! With an embedded CMYK ICC profile the conversion goes through it (moxcms). Without one we use
//! the same device conversion browsers and libjpeg-based tools use, R = (1 − C)(1 − K) etc.
//! Either way the Adobe APP14 marker decides whether the stored samples are inverted, which is
//! what `image` gets wrong (image-rs#1440) and what turns photos into negatives.

use std::sync::Arc;

use moxcms::{ColorProfile, DataColorSpace, Layout, TransformExecutor, TransformOptions};

/// How the four stored components are to be read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CmykSource {
    /// Adobe transform 2: the first three components are YCbCr-coded inverted CMY.
    pub is_ycck: bool,
    /// An Adobe marker is present: samples are stored inverted (255 = no ink).
    pub adobe_inverted: bool,
}

type CmykToRgb = Arc<dyn TransformExecutor<u8> + Send + Sync>;

/// A transform from the profile's CMYK to sRGB, if the profile is a usable CMYK profile.
fn icc_transform(icc: &[u8]) -> Option<CmykToRgb> {
    let profile = ColorProfile::new_from_slice(icc).ok()?;
    if profile.color_space != DataColorSpace::Cmyk {
        return None;
    }
    let transform = profile
        .create_transform_8bit(
            Layout::Rgba, // moxcms reads 8-bit CMYK with the RGBA layout
            &ColorProfile::new_srgb(),
            Layout::Rgb,
            TransformOptions::default(),
        )
        .ok()?;
    Some(transform)
}

/// Converts rows of 4 samples per pixel into rows of 3 (sRGB) within the same buffer, then
/// shrinks it: no second full-size buffer. Each output row ends before the next input row
/// starts, so converting row by row through a one-row scratch copy never overwrites unread
/// input.
pub(crate) fn convert_to_rgb_in_place(samples: &mut Vec<u8>, width: usize, source: CmykSource, icc: Option<&[u8]>) {
    let transform = icc.and_then(icc_transform);
    let rows = samples.len() / (width * 4);
    let mut ink = vec![0u8; width * 4];
    for row in 0..rows {
        ink.copy_from_slice(&samples[row * width * 4..(row + 1) * width * 4]);
        to_ink(&mut ink, source);
        let output = &mut samples[row * width * 3..(row + 1) * width * 3];
        let converted = transform.as_ref().is_some_and(|transform| transform.transform(&ink, output).is_ok());
        if !converted {
            ink_to_rgb_device(&ink, output);
        }
    }
    samples.truncate(rows * width * 3);
    samples.shrink_to_fit();
}

/// Stored samples → ink amounts (0 = no ink, 255 = full ink), in place.
fn to_ink(pixels: &mut [u8], source: CmykSource) {
    for pixel in pixels.chunks_exact_mut(4) {
        if source.is_ycck {
            // YCbCr → RGB (JFIF, full range); the stored CMY sample is 255 − that value.
            let (y, cb, cr) = (f32::from(pixel[0]), f32::from(pixel[1]) - 128.0, f32::from(pixel[2]) - 128.0);
            let red = y + 1.402 * cr;
            let green = y - 0.344_136 * cb - 0.714_136 * cr;
            let blue = y + 1.772 * cb;
            for (sample, value) in pixel[..3].iter_mut().zip([red, green, blue]) {
                *sample = 255 - value.round().clamp(0.0, 255.0) as u8;
            }
        }
        if source.adobe_inverted {
            for sample in pixel.iter_mut() {
                *sample = 255 - *sample;
            }
        }
    }
}

/// The device conversion without a profile: each RGB channel is the light left by its
/// complementary ink and the black ink.
fn ink_to_rgb_device(ink: &[u8], rgb: &mut [u8]) {
    for (cmyk, out) in ink.chunks_exact(4).zip(rgb.chunks_exact_mut(3)) {
        let white = 255 - u32::from(cmyk[3]);
        for (channel, &amount) in out.iter_mut().zip(&cmyk[..3]) {
            *channel = (((255 - u32::from(amount)) * white + 127) / 255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(pixels: &[[u8; 4]], source: CmykSource) -> Vec<u8> {
        let mut samples: Vec<u8> = pixels.iter().flatten().copied().collect();
        convert_to_rgb_in_place(&mut samples, pixels.len(), source, None);
        samples
    }

    const PLAIN: CmykSource = CmykSource { is_ycck: false, adobe_inverted: false };
    const ADOBE: CmykSource = CmykSource { is_ycck: false, adobe_inverted: true };

    #[test]
    fn plain_cmyk_is_ink() {
        // No ink → white; full cyan → no red; full black → black.
        assert_eq!(convert(&[[0, 0, 0, 0]], PLAIN), [255, 255, 255]);
        assert_eq!(convert(&[[255, 0, 0, 0]], PLAIN), [0, 255, 255]);
        assert_eq!(convert(&[[0, 0, 0, 255]], PLAIN), [0, 0, 0]);
    }

    #[test]
    fn adobe_cmyk_is_inverted() {
        assert_eq!(convert(&[[255, 255, 255, 255]], ADOBE), [255, 255, 255]);
        assert_eq!(convert(&[[0, 255, 255, 255]], ADOBE), [0, 255, 255]);
        assert_eq!(convert(&[[255, 255, 255, 0]], ADOBE), [0, 0, 0]);
    }

    #[test]
    fn ycck_neutral_grey_keeps_black() {
        // Y 0 with neutral chroma decodes to RGB black, i.e. stored CMY 255, which the Adobe
        // convention reads as no ink; the K component then decides the light.
        let source = CmykSource { is_ycck: true, adobe_inverted: true };
        // Stored K 255 (Adobe: no black ink) → white.
        assert_eq!(convert(&[[0, 128, 128, 255]], source), [255, 255, 255]);
        // Stored K 0 (Adobe: full black) → black whatever the colour.
        assert_eq!(convert(&[[0, 128, 128, 0]], source), [0, 0, 0]);
    }

    #[test]
    fn many_rows_in_place() {
        let width = 5;
        let rows = 7;
        let mut samples: Vec<u8> = (0..width * rows).flat_map(|i| [0, 0, 0, (i * 7) as u8]).collect();
        convert_to_rgb_in_place(&mut samples, width, PLAIN, None);
        assert_eq!(samples.len(), width * rows * 3);
        for (i, pixel) in samples.chunks_exact(3).enumerate() {
            let expected = 255 - (i * 7) as u8;
            assert_eq!(pixel, [expected; 3], "pixel {i}");
        }
    }
}
