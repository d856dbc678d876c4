//! Interleaved pixel buffers as they flow through render: the decoded source (8- or 16-bit)
//! and 8-bit images (resized renditions, or the source itself when no resize is needed).

use std::borrow::Cow;

use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::{U8, U8x2, U8x3, U8x4, U16, U16x3};
use fast_image_resize::{FilterType, ImageBufferError, PixelTrait, ResizeAlg, ResizeOptions, Resizer};

use crate::ImageError;

/// Channel layout of interleaved samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channels {
    Gray,
    GrayAlpha,
    Rgb,
    Rgba,
}

impl Channels {
    pub fn count(self) -> usize {
        match self {
            Channels::Gray => 1,
            Channels::GrayAlpha => 2,
            Channels::Rgb => 3,
            Channels::Rgba => 4,
        }
    }
}

#[derive(Debug)]
pub(crate) enum Samples {
    Eight(Vec<u8>),
    Sixteen(Vec<u16>),
}

/// The decoded image in stored orientation.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub width: u32,
    pub height: u32,
    pub channels: Channels,
    pub samples: Samples,
}

impl Decoded {
    /// Resamples the whole image to `size`, with 8-bit samples in the result. 16-bit sources
    /// without alpha are resampled at full precision and rounded at the small size; those with
    /// alpha are rounded to 8 bits first and premultiplied at 8 bits, as 8-bit sources are: the
    /// resizer's 16-bit alpha kernels and their 512 KB reciprocal table would add half a
    /// megabyte to every Lambda binary for a rare format whose renditions are 8-bit anyway.
    pub fn resample(&self, size: (u32, u32), resizer: &mut Resizer) -> Result<Vec<u8>, ImageError> {
        let from = (self.width, self.height);
        match (&self.samples, self.channels) {
            (Samples::Eight(samples), channels) => resample_eight(samples, from, channels, size, resizer),
            (Samples::Sixteen(_), Channels::GrayAlpha | Channels::Rgba) => self.to_eight_bit().resample(size, resizer),
            (Samples::Sixteen(samples), Channels::Gray) => resample_sixteen::<U16>(samples, from, size, resizer),
            (Samples::Sixteen(samples), Channels::Rgb) => resample_sixteen::<U16x3>(samples, from, size, resizer),
        }
    }

    /// The whole image with 8-bit samples: borrowed when already 8-bit.
    pub fn to_eight_bit(&self) -> Image8<'_> {
        let data = match &self.samples {
            Samples::Eight(samples) => Cow::Borrowed(samples.as_slice()),
            Samples::Sixteen(samples) => Cow::Owned(samples.iter().map(|&sample| sixteen_to_eight(sample)).collect()),
        };
        Image8 { width: self.width, height: self.height, channels: self.channels, data }
    }
}

/// An 8-bit image, owned or borrowed from the decoded source.
#[derive(Debug, Clone)]
pub(crate) struct Image8<'a> {
    pub width: u32,
    pub height: u32,
    pub channels: Channels,
    pub data: Cow<'a, [u8]>,
}

impl Image8<'_> {
    /// Resamples the whole image to `size`.
    pub fn resample(&self, size: (u32, u32), resizer: &mut Resizer) -> Result<Vec<u8>, ImageError> {
        resample_eight(&self.data, (self.width, self.height), self.channels, size, resizer)
    }
}

fn resample_eight(
    samples: &[u8],
    from: (u32, u32),
    channels: Channels,
    size: (u32, u32),
    resizer: &mut Resizer,
) -> Result<Vec<u8>, ImageError> {
    let mut resampled = vec![0u8; size.0 as usize * size.1 as usize * channels.count()];
    match channels {
        Channels::Gray => resample_typed::<U8>(samples, from, &mut resampled, size, resizer),
        Channels::GrayAlpha => resample_typed::<U8x2>(samples, from, &mut resampled, size, resizer),
        Channels::Rgb => resample_typed::<U8x3>(samples, from, &mut resampled, size, resizer),
        Channels::Rgba => resample_typed::<U8x4>(samples, from, &mut resampled, size, resizer),
    }?;
    Ok(resampled)
}

/// Resamples 16-bit pixels of type `P` and rounds the result to 8 bits.
fn resample_sixteen<P: PixelTrait>(
    samples: &[u16],
    from: (u32, u32),
    size: (u32, u32),
    resizer: &mut Resizer,
) -> Result<Vec<u8>, ImageError> {
    let mut resampled = vec![0u16; size.0 as usize * size.1 as usize * P::count_of_components()];
    resample_typed::<P>(bytemuck::cast_slice(samples), from, bytemuck::cast_slice_mut(&mut resampled), size, resizer)?;
    Ok(resampled.iter().map(|&sample| sixteen_to_eight(sample)).collect())
}

/// Lanczos3 from `source` into `destination`, both interleaved `P` pixels. Naming the six pixel
/// types render uses, instead of the resizer's run-time dispatch over all of them, keeps the SIMD
/// kernels of the others (f32, i32) out of the Lambda binary.
fn resample_typed<P: PixelTrait>(
    source: &[u8],
    (source_width, source_height): (u32, u32),
    destination: &mut [u8],
    (width, height): (u32, u32),
    resizer: &mut Resizer,
) -> Result<(), ImageError> {
    let mismatch =
        |error: ImageBufferError| ImageError::invalid(format!("pixel buffer does not match its size: {error}"));
    let source = TypedImageRef::<P>::from_buffer(source_width, source_height, source).map_err(mismatch)?;
    let mut destination = TypedImage::<P>::from_buffer(width, height, destination).map_err(mismatch)?;
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    resizer
        .resize_typed(&source, &mut destination, &options)
        .map_err(|error| ImageError::invalid(format!("resizing failed: {error}")))
}

/// Rounds a 16-bit sample to the nearest 8-bit one.
pub(crate) fn sixteen_to_eight(sample: u16) -> u8 {
    ((u32::from(sample) * 255 + 32_767) / 65_535) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_rounding() {
        assert_eq!(sixteen_to_eight(0), 0);
        assert_eq!(sixteen_to_eight(65_535), 255);
        assert_eq!(sixteen_to_eight(257 * 128), 128);
        assert_eq!(sixteen_to_eight(257 * 128 + 128), 128);
        assert_eq!(sixteen_to_eight(257 * 128 + 129), 129);
    }

    #[test]
    fn sixteen_bit_alpha_is_resampled_premultiplied() {
        // Opaque red beside fully transparent green: no green may bleed into a visible pixel.
        let samples: Vec<u16> = (0..2 * 8)
            .flat_map(|index| if index % 8 < 4 { [65_535, 0, 0, 65_535] } else { [0, 65_535, 0, 0] })
            .collect();
        let decoded = Decoded { width: 8, height: 2, channels: Channels::Rgba, samples: Samples::Sixteen(samples) };
        let resampled = decoded.resample((4, 1), &mut Resizer::new()).unwrap();
        assert_eq!(resampled.len(), 4 * 4);
        assert_eq!(&resampled[..4], &[255, 0, 0, 255]);
        for pixel in resampled.chunks(4).filter(|pixel| pixel[3] > 0) {
            assert_eq!((pixel[0], pixel[1]), (255, 0), "{pixel:?}");
        }
    }
}
