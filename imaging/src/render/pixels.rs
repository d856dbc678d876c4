//! Interleaved pixel buffers as they flow through render: the decoded source (8- or 16-bit)
//! and 8-bit images (resized renditions, or the source itself when no resize is needed).

use std::borrow::Cow;

use fast_image_resize::PixelType;
use fast_image_resize::images::ImageRef;

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
    pub fn pixel_type_eight(self) -> PixelType {
        match self {
            Channels::Gray => PixelType::U8,
            Channels::GrayAlpha => PixelType::U8x2,
            Channels::Rgb => PixelType::U8x3,
            Channels::Rgba => PixelType::U8x4,
        }
    }

    fn pixel_type_sixteen(self) -> PixelType {
        match self {
            Channels::Gray => PixelType::U16,
            Channels::GrayAlpha => PixelType::U16x2,
            Channels::Rgb => PixelType::U16x3,
            Channels::Rgba => PixelType::U16x4,
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
    /// A view for the resizer (16-bit samples as native-endian bytes).
    pub fn image_ref(&self) -> Result<ImageRef<'_>, ImageError> {
        let (bytes, pixel_type) = match &self.samples {
            Samples::Eight(samples) => (samples.as_slice(), self.channels.pixel_type_eight()),
            Samples::Sixteen(samples) => (bytemuck::cast_slice(samples), self.channels.pixel_type_sixteen()),
        };
        image_ref(self.width, self.height, bytes, pixel_type)
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
    pub fn image_ref(&self) -> Result<ImageRef<'_>, ImageError> {
        image_ref(self.width, self.height, &self.data, self.channels.pixel_type_eight())
    }
}

fn image_ref(width: u32, height: u32, bytes: &[u8], pixel_type: PixelType) -> Result<ImageRef<'_>, ImageError> {
    ImageRef::new(width, height, bytes, pixel_type)
        .map_err(|error| ImageError::invalid(format!("decoded buffer does not match its size: {error}")))
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
}
