//! The image format, recognised by magic bytes only (never by file name or content type).

use serde::{Deserialize, Serialize};

use crate::ImageError;

/// A format imgflow accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
    Tiff,
}

impl ImageFormat {
    /// Every accepted format.
    pub const ALL: [ImageFormat; 5] =
        [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp, ImageFormat::Gif, ImageFormat::Tiff];

    /// The format from the first bytes of the file. Anything else is `UnsupportedFormat`, naming
    /// what the bytes look like when we recognise it (so a rejected upload explains itself).
    pub fn sniff(bytes: &[u8]) -> Result<ImageFormat, ImageError> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Ok(ImageFormat::Jpeg);
        }
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Ok(ImageFormat::Png);
        }
        if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            return Ok(ImageFormat::Gif);
        }
        if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            return Ok(ImageFormat::Webp);
        }
        if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
            return Ok(ImageFormat::Tiff);
        }
        Err(ImageError::UnsupportedFormat(describe_unsupported(bytes)))
    }

    /// The MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Tiff => "image/tiff",
        }
    }

    /// The lowercase name, as serialised.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "webp",
            ImageFormat::Gif => "gif",
            ImageFormat::Tiff => "tiff",
        }
    }

    pub(crate) fn to_image_rs(self) -> image::ImageFormat {
        match self {
            ImageFormat::Jpeg => image::ImageFormat::Jpeg,
            ImageFormat::Png => image::ImageFormat::Png,
            ImageFormat::Webp => image::ImageFormat::WebP,
            ImageFormat::Gif => image::ImageFormat::Gif,
            ImageFormat::Tiff => image::ImageFormat::Tiff,
        }
    }
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A short description of content we do not accept.
fn describe_unsupported(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "empty file".to_owned();
    }
    if let Some(kind) = recognise_other(bytes) {
        return format!("{kind} (not an accepted image format)");
    }
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("unrecognised content (first bytes: {})", head.join(" "))
}

fn recognise_other(bytes: &[u8]) -> Option<&'static str> {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"%PDF", "PDF document"),
        (b"II+\0", "BigTIFF"),
        (b"MM\0+", "BigTIFF"),
        (b"BM", "BMP image"),
        (b"8BPS", "Photoshop document"),
        (b"\0\0\x01\0", "ICO icon"),
        (b"\xFF\x0A", "JPEG XL image"),
        (b"\0\0\0\x0CJXL \r\n\x87\n", "JPEG XL image"),
        (b"\0\0\0\x0CjP  \r\n\x87\n", "JPEG 2000 image"),
        (b"\xFF\x4F\xFF\x51", "JPEG 2000 codestream"),
        (b"qoif", "QOI image"),
        (b"v/1\x01", "OpenEXR image"),
        (b"PK\x03\x04", "ZIP archive"),
        (b"\x1F\x8B", "gzip archive"),
        (b"%!PS", "PostScript document"),
    ];
    if let Some((_, kind)) = SIGNATURES.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return Some(kind);
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return Some(match &bytes[8..12] {
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1" => "HEIC/HEIF image",
            b"avif" | b"avis" => "AVIF image",
            _ => "MP4/QuickTime media",
        });
    }
    if bytes.starts_with(b"RIFF") {
        return Some("RIFF container that is not WebP");
    }
    let text = bytes.trim_ascii_start();
    let starts_with_ignore_case =
        |prefix: &[u8]| text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix);
    if starts_with_ignore_case(b"<svg") {
        return Some("SVG image");
    }
    if starts_with_ignore_case(b"<!doctype html") || starts_with_ignore_case(b"<html") {
        return Some("HTML document");
    }
    if starts_with_ignore_case(b"<?xml") {
        return Some("XML document");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsupported(bytes: &[u8]) -> String {
        match ImageFormat::sniff(bytes) {
            Err(ImageError::UnsupportedFormat(message)) => message,
            other => panic!("expected UnsupportedFormat, got {other:?}"),
        }
    }

    #[test]
    fn accepted_magics() {
        let cases: [(&[u8], ImageFormat); 7] = [
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF", ImageFormat::Jpeg),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", ImageFormat::Png),
            (b"GIF87a\x01\0", ImageFormat::Gif),
            (b"GIF89a\x01\0", ImageFormat::Gif),
            (b"RIFF\x24\0\0\0WEBPVP8 ", ImageFormat::Webp),
            (b"II*\0\x08\0\0\0", ImageFormat::Tiff),
            (b"MM\0*\0\0\0\x08", ImageFormat::Tiff),
        ];
        for (bytes, format) in cases {
            assert_eq!(ImageFormat::sniff(bytes), Ok(format));
        }
    }

    #[test]
    fn rejected_content_is_named() {
        assert_eq!(unsupported(b""), "empty file");
        assert!(unsupported(b"%PDF-1.7\n").contains("PDF"));
        assert!(unsupported(b"\0\0\0\x18ftypheic\0\0\0\0").contains("HEIC"));
        assert!(unsupported(b"\0\0\0\x1cftypavif\0\0\0\0").contains("AVIF"));
        assert!(unsupported(b"\0\0\0\x18ftypisom\0\0\0\0").contains("MP4"));
        assert!(unsupported(b"RIFF\x24\0\0\0WAVEfmt ").contains("not WebP"));
        assert!(unsupported(b"  <svg xmlns=").contains("SVG"));
        assert!(unsupported(b"II+\0").contains("BigTIFF"));
        let random = unsupported(&[0x13, 0x37, 0xC0, 0xDE, 0x00, 0x01, 0x02, 0x03, 0x04]);
        assert_eq!(random, "unrecognised content (first bytes: 13 37 c0 de 00 01 02 03)");
        // A lone JPEG SOI without a following marker is not enough to call it JPEG.
        assert!(ImageFormat::sniff(&[0xFF, 0xD8]).is_err());
    }

    #[test]
    fn names_and_serde_agree() {
        for format in ImageFormat::ALL {
            let json = serde_json::to_string(&format).unwrap();
            assert_eq!(json, format!("\"{}\"", format.name()));
            assert_eq!(serde_json::from_str::<ImageFormat>(&json).unwrap(), format);
            assert!(format.content_type().starts_with("image/"));
        }
    }
}
