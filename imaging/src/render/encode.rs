//! Encoders for renditions. Input is 8-bit, already oriented, in a layout the format takes.

use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};

use super::pixels::Channels;
use crate::ImageError;

fn encode_error(format: &str, error: impl std::fmt::Display) -> ImageError {
    // Encoding our own well-formed buffers fails only on impossible sizes.
    ImageError::invalid(format!("{format} encoding failed: {error}"))
}

/// Baseline JPEG, 4:2:0 below quality 90 with each chroma sample the average of its 2×2 pixels
/// (as libjpeg does; jpeg-encoder's default, the top-left pixel, aliases colour edges and costs
/// bytes), standard Huffman tables. Gray or RGB only.
pub(crate) fn jpeg(
    data: &[u8],
    width: u32,
    height: u32,
    channels: Channels,
    quality: u8,
) -> Result<Vec<u8>, ImageError> {
    let color_type = match channels {
        Channels::Gray => jpeg_encoder::ColorType::Luma,
        Channels::Rgb => jpeg_encoder::ColorType::Rgb,
        other => return Err(encode_error("JPEG", format!("cannot encode {other:?} pixels"))),
    };
    let (width, height) = match (u16::try_from(width), u16::try_from(height)) {
        (Ok(width), Ok(height)) => (width, height),
        _ => {
            return Err(ImageError::ImageTooLarge(format!(
                "a {width}x{height} JPEG rendition exceeds JPEG's 65535 pixel limit"
            )));
        }
    };
    let mut out = Vec::with_capacity(data.len() / 8);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    encoder.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
    // No optimised Huffman tables: with jpeg-encoder 0.7.1 they produced files that zune-jpeg
    // (and therefore `image`) decodes as green stripes on real photos (tests/photos.rs checks).
    encoder.encode(data, width, height, color_type).map_err(|e| encode_error("JPEG", e))?;
    Ok(out)
}

/// Lossy WebP through libwebp. RGB or RGBA only.
pub(crate) fn webp(
    data: &[u8],
    width: u32,
    height: u32,
    channels: Channels,
    quality: u8,
) -> Result<Vec<u8>, ImageError> {
    let encoder = match channels {
        Channels::Rgb => webp::Encoder::from_rgb(data, width, height),
        Channels::Rgba => webp::Encoder::from_rgba(data, width, height),
        other => return Err(encode_error("WebP", format!("cannot encode {other:?} pixels"))),
    };
    let encoded = encoder
        .encode_simple(false, f32::from(quality.clamp(1, 100)))
        .map_err(|e| encode_error("WebP", format!("{e:?}")))?;
    Ok(encoded.to_vec())
}

/// Lossless PNG, fast compression with adaptive filtering.
pub(crate) fn png(data: &[u8], width: u32, height: u32, channels: Channels) -> Result<Vec<u8>, ImageError> {
    let color_type = match channels {
        Channels::Gray => image::ExtendedColorType::L8,
        Channels::GrayAlpha => image::ExtendedColorType::La8,
        Channels::Rgb => image::ExtendedColorType::Rgb8,
        Channels::Rgba => image::ExtendedColorType::Rgba8,
    };
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(data, width, height, color_type)
        .map_err(|e| encode_error("PNG", e))?;
    Ok(out)
}
