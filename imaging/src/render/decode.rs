//! Decoding once, with the pixel limit enforced by the decoders as well as by the probe.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

use super::cmyk;
use super::jpeg as own_jpeg;
use super::pixels::{Channels, Decoded, Samples};
use crate::probe::jpeg::{self, has_adobe_marker};
use crate::{ImageError, ImageFormat, Probe};

/// Decodes the image the probe described, in stored orientation, with its ICC profile.
/// `needed` is the largest size (stored orientation) any rendition needs: JPEGs are decoded
/// at 1/2, 1/4 or 1/8 scale when that still covers it (what libvips calls shrink-on-load).
pub(crate) fn decode(
    bytes: &[u8],
    probe: &Probe,
    needed: (u32, u32),
) -> Result<(Decoded, Option<Vec<u8>>), ImageError> {
    let mut expected = (probe.stored_width, probe.stored_height);
    let (decoded, icc) = match probe.format {
        ImageFormat::Jpeg => match jpeg_scale_divisor(bytes, probe, needed)? {
            Some(divisor) => {
                expected = (probe.stored_width.div_ceil(divisor), probe.stored_height.div_ceil(divisor));
                decode_jpeg_own(bytes, probe, divisor)?
            }
            None => decode_jpeg_cmyk_or_deep(bytes, probe)?,
        },
        _ => decode_with_image_rs(bytes, probe)?,
    };
    if (decoded.width, decoded.height) != expected {
        return Err(ImageError::invalid(format!(
            "decoder produced {}x{} pixels where {}x{} were expected",
            decoded.width, decoded.height, expected.0, expected.1
        )));
    }
    Ok((decoded, icc))
}

/// For the 8-bit gray and YCbCr JPEGs jpeg-decoder handles: the largest DCT scaling divisor
/// (8, 4, 2, else 1) whose output still covers `needed`. `None` sends CMYK and 12-bit JPEGs
/// to zune-jpeg. jpeg-decoder also decodes full size, because zune-jpeg 0.5.15 misdecodes
/// valid files with some optimised Huffman tables (tests/photos.rs has one).
fn jpeg_scale_divisor(bytes: &[u8], probe: &Probe, needed: (u32, u32)) -> Result<Option<u32>, ImageError> {
    let frame = jpeg::frame(bytes)?;
    if frame.precision != 8 || !matches!(frame.components, 1 | 3) {
        return Ok(None);
    }
    let divisor = [8, 4, 2]
        .into_iter()
        .find(|&divisor| {
            probe.stored_width.div_ceil(divisor) >= needed.0 && probe.stored_height.div_ceil(divisor) >= needed.1
        })
        .unwrap_or(1);
    Ok(Some(divisor))
}

/// 8-bit grey/YCbCr JPEG through our own decoder (see `jpeg`), in the DCT domain at 1/`divisor`
/// size; layouts it leaves to others go to jpeg-decoder, which scales the same way.
fn decode_jpeg_own(bytes: &[u8], probe: &Probe, divisor: u32) -> Result<(Decoded, Option<Vec<u8>>), ImageError> {
    let stored_pixels = probe.stored_width as usize * probe.stored_height as usize;
    match own_jpeg::decode(bytes, divisor as usize, stored_pixels) {
        Ok(image) => {
            let channels = if image.components == 1 { Channels::Gray } else { Channels::Rgb };
            let decoded =
                Decoded { width: image.width, height: image.height, channels, samples: Samples::Eight(image.samples) };
            Ok((decoded, image.icc_profile))
        }
        Err(own_jpeg::DecodeError::Unsupported) => {
            decode_jpeg_scaled(bytes, (probe.stored_width.div_ceil(divisor), probe.stored_height.div_ceil(divisor)))
        }
        Err(own_jpeg::DecodeError::Invalid(message)) => {
            Err(ImageError::invalid(format!("JPEG decoding failed: {message}")))
        }
    }
}

/// JPEG decoded by jpeg-decoder, in the DCT domain at reduced size when asked.
fn decode_jpeg_scaled(bytes: &[u8], (width, height): (u32, u32)) -> Result<(Decoded, Option<Vec<u8>>), ImageError> {
    let jpeg_error = |error: jpeg_decoder::Error| ImageError::invalid(format!("JPEG decoding failed: {error}"));
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    // The decoder checks its output buffer against this: exactly the reduced RGB image.
    decoder.set_max_decoding_buffer_size(width as usize * height as usize * 3);
    decoder.read_info().map_err(jpeg_error)?;
    // jpeg-decoder picks the smallest scale that reaches the request on *either* axis, so ask
    // along the longer axis only (the other out of reach) to get exactly the chosen divisor.
    // Sizes fit in u16: they come from a JPEG frame header.
    let request = if width >= height { (width as u16, u16::MAX) } else { (u16::MAX, height as u16) };
    decoder.scale(request.0, request.1).map_err(jpeg_error)?;
    let samples = decoder.decode().map_err(jpeg_error)?;
    let info = decoder.info().ok_or_else(|| ImageError::invalid("JPEG headers could not be read"))?;
    let channels = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => Channels::Gray,
        jpeg_decoder::PixelFormat::RGB24 => Channels::Rgb,
        other => {
            return Err(ImageError::invalid(format!("JPEG decoded to unexpected pixel format {other:?}")));
        }
    };
    let decoded = Decoded {
        width: u32::from(info.width),
        height: u32::from(info.height),
        channels,
        samples: Samples::Eight(samples),
    };
    Ok((decoded, decoder.icc_profile()))
}

/// CMYK/YCCK and 12-bit JPEGs through zune-jpeg directly (the decoder `image` wraps), so that
/// CMYK arrives as raw samples we can convert properly (image-rs#1440).
fn decode_jpeg_cmyk_or_deep(bytes: &[u8], probe: &Probe) -> Result<(Decoded, Option<Vec<u8>>), ImageError> {
    let jpeg_error =
        |error: zune_jpeg::errors::DecodeErrors| ImageError::invalid(format!("JPEG decoding failed: {error}"));
    // The probe already refused anything above the pixel limit; capping the decoder at the
    // probed size keeps a header the probe misread from allocating more than that.
    let options = DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(probe.stored_width as usize)
        .set_max_height(probe.stored_height as usize);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(jpeg_error)?;
    let input = decoder.input_colorspace().ok_or_else(|| ImageError::invalid("JPEG headers could not be read"))?;
    let (output, channels) = match input {
        ColorSpace::Luma => (ColorSpace::Luma, Channels::Gray),
        // Four-component JPEGs come out as stored and are converted by `cmyk`.
        ColorSpace::CMYK | ColorSpace::YCCK => (input, Channels::Rgb),
        _ => (ColorSpace::RGB, Channels::Rgb),
    };
    decoder.set_options(options.jpeg_set_out_colorspace(output));
    let icc = decoder.icc_profile();
    let (width, height) = decoder.dimensions().ok_or_else(|| ImageError::invalid("JPEG headers could not be read"))?;
    let mut samples = decoder.decode().map_err(jpeg_error)?;
    let (width, height) = (width as u32, height as u32);
    let icc = match input {
        ColorSpace::CMYK | ColorSpace::YCCK => {
            let source =
                cmyk::CmykSource { is_ycck: input == ColorSpace::YCCK, adobe_inverted: has_adobe_marker(bytes) };
            cmyk::convert_to_rgb_in_place(&mut samples, width as usize, source, icc.as_deref());
            // The profile described CMYK; the pixels are now sRGB.
            None
        }
        _ => icc,
    };
    let decoded = Decoded { width, height, channels, samples: Samples::Eight(samples) };
    Ok((decoded, icc))
}

fn image_rs_error(error: image::ImageError) -> ImageError {
    match error {
        image::ImageError::Unsupported(error) => ImageError::UnsupportedFormat(error.to_string()),
        image::ImageError::Limits(error) => ImageError::ImageTooLarge(error.to_string()),
        other => ImageError::invalid(other.to_string()),
    }
}

/// PNG, WebP, GIF (first frame) and TIFF through `image`.
fn decode_with_image_rs(bytes: &[u8], probe: &Probe) -> Result<(Decoded, Option<Vec<u8>>), ImageError> {
    let pixels = u64::from(probe.stored_width) * u64::from(probe.stored_height);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(probe.stored_width);
    limits.max_image_height = Some(probe.stored_height);
    // The output buffer (at most 16 bytes per pixel, RGBA f32) plus decoder working memory.
    limits.max_alloc = Some(pixels.saturating_mul(16).saturating_add(64 << 20));
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), probe.format.to_image_rs());
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(image_rs_error)?;
    let icc = decoder.icc_profile().map_err(image_rs_error)?;
    // `DynamicImage::from_decoder` does not charge the output buffer to `max_alloc`
    // (image-rs#3081), so reserve it here the way `ImageReader::decode` does.
    limits.reserve(decoder.total_bytes()).map_err(image_rs_error)?;
    decoder.set_limits(limits).map_err(image_rs_error)?;
    let image = DynamicImage::from_decoder(decoder).map_err(image_rs_error)?;
    Ok((from_dynamic(image), icc))
}

fn from_dynamic(image: DynamicImage) -> Decoded {
    let (width, height) = (image.width(), image.height());
    let (channels, samples) = match image {
        DynamicImage::ImageLuma8(buffer) => (Channels::Gray, Samples::Eight(buffer.into_raw())),
        DynamicImage::ImageLumaA8(buffer) => (Channels::GrayAlpha, Samples::Eight(buffer.into_raw())),
        DynamicImage::ImageRgb8(buffer) => (Channels::Rgb, Samples::Eight(buffer.into_raw())),
        DynamicImage::ImageRgba8(buffer) => (Channels::Rgba, Samples::Eight(buffer.into_raw())),
        DynamicImage::ImageLuma16(buffer) => (Channels::Gray, Samples::Sixteen(buffer.into_raw())),
        DynamicImage::ImageLumaA16(buffer) => (Channels::GrayAlpha, Samples::Sixteen(buffer.into_raw())),
        DynamicImage::ImageRgb16(buffer) => (Channels::Rgb, Samples::Sixteen(buffer.into_raw())),
        DynamicImage::ImageRgba16(buffer) => (Channels::Rgba, Samples::Sixteen(buffer.into_raw())),
        // Float images (TIFF) keep their precision through the resize as 16-bit.
        other if other.color().has_alpha() => (Channels::Rgba, Samples::Sixteen(other.into_rgba16().into_raw())),
        other => (Channels::Rgb, Samples::Sixteen(other.into_rgb16().into_raw())),
    };
    Decoded { width, height, channels, samples }
}
