//! Fixtures generated in memory: no binary files are committed.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::Cursor;

use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value};
use image::codecs::gif::GifEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::tiff::TiffEncoder;
use image::codecs::webp::WebPEncoder;
use image::{Delay, DynamicImage, Frame, ImageBuffer, ImageEncoder, ImageFormat, Luma, Rgb, RgbImage, Rgba, RgbaImage};

/// Corner colours of the asymmetric test pattern, as stored.
pub const TOP_LEFT: [u8; 3] = [255, 0, 0];
pub const TOP_RIGHT: [u8; 3] = [0, 255, 0];
pub const BOTTOM_LEFT: [u8; 3] = [0, 0, 255];
pub const BOTTOM_RIGHT: [u8; 3] = [255, 255, 0];

/// A `width`×`height` image whose four quadrants have the four corner colours.
pub fn quadrants(width: u32, height: u32) -> RgbImage {
    ImageBuffer::from_fn(width, height, |x, y| {
        let colour = match (x < width / 2, y < height / 2) {
            (true, true) => TOP_LEFT,
            (false, true) => TOP_RIGHT,
            (true, false) => BOTTOM_LEFT,
            (false, false) => BOTTOM_RIGHT,
        };
        Rgb(colour)
    })
}

pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    match format {
        ImageFormat::WebP => {
            let rgba = image.to_rgba8();
            WebPEncoder::new_lossless(&mut out)
                .write_image(&rgba, rgba.width(), rgba.height(), image::ExtendedColorType::Rgba8)
                .unwrap();
        }
        ImageFormat::Tiff => {
            let rgb = image.to_rgb8();
            TiffEncoder::new(&mut out)
                .write_image(&rgb, rgb.width(), rgb.height(), image::ExtendedColorType::Rgb8)
                .unwrap();
        }
        ImageFormat::Png => {
            let encoder = PngEncoder::new(&mut out);
            encoder.write_image(image.as_bytes(), image.width(), image.height(), image.color().into()).unwrap();
        }
        other => image.write_to(&mut out, other).unwrap(),
    }
    out.into_inner()
}

pub fn jpeg(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    let (width, height) = (image.width() as u16, image.height() as u16);
    jpeg_encoder::Encoder::new(&mut out, 95)
        .encode(image.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

pub fn gray_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image: ImageBuffer<Luma<u8>, Vec<u8>> =
        ImageBuffer::from_fn(width, height, |x, _| Luma([if x < width / 2 { 40 } else { 200 }]));
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 95)
        .encode(image.as_raw(), width as u16, height as u16, jpeg_encoder::ColorType::Luma)
        .unwrap();
    out
}

/// A CMYK JPEG (ink amounts, 0 = none) as Adobe writers store it: inverted, with APP14.
pub fn cmyk_jpeg(ink: [u8; 4], width: u16, height: u16, as_ycck: bool) -> Vec<u8> {
    let data: Vec<u8> = (0..usize::from(width) * usize::from(height)).flat_map(|_| ink).collect();
    let mut out = Vec::new();
    let color_type = if as_ycck { jpeg_encoder::ColorType::CmykAsYcck } else { jpeg_encoder::ColorType::Cmyk };
    jpeg_encoder::Encoder::new(&mut out, 95).encode(&data, width, height, color_type).unwrap();
    out
}

/// EXIF (TIFF structure) with the given fields in the primary IFD.
pub fn exif_tiff(fields: &[Field]) -> Vec<u8> {
    let mut writer = Writer::new();
    for field in fields {
        writer.push_field(field);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, false).unwrap();
    out.into_inner()
}

pub fn field(tag: Tag, value: Value) -> Field {
    Field { tag, ifd_num: In::PRIMARY, value }
}

pub fn ascii(text: &str) -> Value {
    Value::Ascii(vec![text.as_bytes().to_vec()])
}

pub fn rationals(values: &[(u32, u32)]) -> Value {
    Value::Rational(values.iter().map(|&(num, denom)| Rational { num, denom }).collect())
}

/// A minimal EXIF with only the orientation tag, built by hand (II, one IFD, one entry).
pub fn orientation_exif(orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    tiff
}

/// Inserts an APP1 `Exif` segment carrying `tiff` right after the SOI marker.
pub fn splice_exif(jpeg: &[u8], tiff: &[u8]) -> Vec<u8> {
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(tiff);
    let length = u16::try_from(payload.len() + 2).unwrap();
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// An 8-bit RGBA PNG: opaque red left half, fully transparent right half.
pub fn png_rgba8(width: u32, height: u32) -> Vec<u8> {
    let image =
        RgbaImage::from_fn(
            width,
            height,
            |x, _| {
                if x < width / 2 { Rgba([255, 0, 0, 255]) } else { Rgba([0, 0, 255, 0]) }
            },
        );
    encode(&DynamicImage::ImageRgba8(image), ImageFormat::Png)
}

/// A 16-bit RGBA PNG: the same halves, with values that only 16 bits can tell apart.
pub fn png_rgba16(width: u32, height: u32) -> Vec<u8> {
    let image: ImageBuffer<Rgba<u16>, Vec<u16>> = ImageBuffer::from_fn(width, height, |x, _| {
        if x < width / 2 { Rgba([65_535, 32_896, 0, 65_535]) } else { Rgba([0, 0, 65_535, 0]) }
    });
    encode(&DynamicImage::ImageRgba16(image), ImageFormat::Png)
}

/// A 16-bit RGB PNG and its 16-bit grey twin: left half (65535, 32896, 0), right half
/// (0, 0, 65535); the grey one holds each half's first sample.
pub fn png_rgb16_and_gray16(width: u32, height: u32) -> (Vec<u8>, Vec<u8>) {
    let left = |x: u32| x < width / 2;
    let rgb: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_fn(
            width,
            height,
            |x, _| {
                if left(x) { Rgb([65_535, 32_896, 0]) } else { Rgb([0, 0, 65_535]) }
            },
        );
    let gray: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(width, height, |x, _| if left(x) { Luma([32_896]) } else { Luma([65_535]) });
    (
        encode(&DynamicImage::ImageRgb16(rgb), ImageFormat::Png),
        encode(&DynamicImage::ImageLuma16(gray), ImageFormat::Png),
    )
}

/// A two-frame GIF: red first, then blue.
pub fn two_frame_gif(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        for colour in [[255, 0, 0, 255], [0, 0, 255, 255]] {
            let frame = RgbaImage::from_pixel(width, height, Rgba(colour));
            encoder.encode_frame(Frame::from_parts(frame, 0, 0, Delay::from_numer_denom_ms(100, 1))).unwrap();
        }
    }
    out
}

/// A PNG whose IHDR claims `width`×`height`, with a token IDAT: a decompression bomb's header.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&[0, 0, 0, 0]); // CRC is not checked by the probe
    };
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(b"IHDR", &header);
    chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

/// A JPEG whose frame header claims `width`×`height` (the rest is a real small JPEG).
pub fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = jpeg(&quadrants(16, 16));
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

/// The colour of the pixel at (x, y) of a decoded rendition, as RGB.
pub fn pixel_rgb(image: &DynamicImage, x: u32, y: u32) -> [u8; 3] {
    let rgb = image.to_rgb8();
    rgb.get_pixel(x, y).0
}

/// Whether two colours are within `tolerance` on every channel (JPEG is lossy).
pub fn close(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(&b).all(|(x, y)| x.abs_diff(*y) <= tolerance)
}

/// Inserts an eXIf chunk carrying `tiff` right after IHDR.
pub fn png_with_exif(png: &[u8], tiff: &[u8]) -> Vec<u8> {
    let after_ihdr = 8 + 8 + 13 + 4;
    let mut out = png[..after_ihdr].to_vec();
    out.extend_from_slice(&(tiff.len() as u32).to_be_bytes());
    out.extend_from_slice(b"eXIf");
    out.extend_from_slice(tiff);
    let crc = crc32fast::hash(&[b"eXIf".as_slice(), tiff].concat());
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&png[after_ihdr..]);
    out
}

/// Wraps a simple (VP8L) WebP into the extended format with an EXIF chunk carrying `tiff`.
pub fn webp_with_exif(webp: &[u8], width: u32, height: u32, tiff: &[u8]) -> Vec<u8> {
    let bitstream = &webp[12..];
    let mut vp8x = vec![0x08, 0, 0, 0]; // flags: EXIF present
    vp8x.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    fn chunk(body: &mut Vec<u8>, fourcc: &[u8; 4], data: &[u8]) {
        body.extend_from_slice(fourcc);
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut body = b"WEBP".to_vec();
    chunk(&mut body, b"VP8X", &vp8x);
    body.extend_from_slice(bitstream);
    chunk(&mut body, b"EXIF", tiff);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}
