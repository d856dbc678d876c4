mod common;

use common::*;
use image::{DynamicImage, ImageFormat as Codec};
use imgflow_imaging::{ImageError, ImageFormat, Limits, Probe, probe};

fn limits() -> Limits {
    Limits::default()
}

/// One generated file per accepted format, 40×20, upright.
fn samples() -> Vec<(ImageFormat, Vec<u8>)> {
    let image = DynamicImage::ImageRgb8(quadrants(40, 20));
    vec![
        (ImageFormat::Jpeg, jpeg(&quadrants(40, 20))),
        (ImageFormat::Png, encode(&image, Codec::Png)),
        (ImageFormat::Webp, encode(&image, Codec::WebP)),
        (ImageFormat::Gif, encode(&image, Codec::Gif)),
        (ImageFormat::Tiff, encode(&image, Codec::Tiff)),
    ]
}

#[test]
fn every_format_is_probed() {
    for (format, bytes) in samples() {
        let probed = probe(&bytes, &limits()).unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(
            probed,
            Probe { format, stored_width: 40, stored_height: 20, orientation: 1, width: 40, height: 20 }
        );
    }
}

#[test]
fn truncated_files_are_invalid() {
    for (format, bytes) in samples() {
        for keep in [bytes.len() * 3 / 4, bytes.len() / 2, bytes.len() - 1, 16] {
            let result = probe(&bytes[..keep], &limits());
            assert!(
                matches!(result, Err(ImageError::InvalidImage(_))),
                "{format} cut to {keep} of {} bytes: {result:?}",
                bytes.len()
            );
        }
    }
}

#[test]
fn trailing_bytes_after_the_end_marker_are_tolerated() {
    // Phones append data after EOI (e.g. motion photos); GIF/PNG files collect junk too.
    for (format, mut bytes) in samples() {
        if format == ImageFormat::Tiff {
            continue; // TIFF has no end marker: data is located by offsets
        }
        bytes.extend_from_slice(b"trailing junk \0\0\xFF\xD9");
        assert!(probe(&bytes, &limits()).is_ok(), "{format} with trailing bytes");
    }
}

#[test]
fn wrong_magic_is_unsupported() {
    let cases: [(&[u8], &str); 5] = [
        (b"", "empty file"),
        (b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n", "PDF"),
        (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", "HEIC"),
        (b"\x13\x37\xC0\xDE random bytes", "unrecognised"),
        (b"<!DOCTYPE html><html>", "HTML"),
    ];
    for (bytes, expected) in cases {
        match probe(bytes, &limits()) {
            Err(ImageError::UnsupportedFormat(message)) => {
                assert!(message.contains(expected), "{message:?} should mention {expected}")
            }
            other => panic!("{expected}: {other:?}"),
        }
    }
}

#[test]
fn byte_limit_comes_first() {
    let bytes = png_rgba8(64, 64);
    let tight = Limits { max_bytes: bytes.len() as u64 - 1, ..limits() };
    assert!(matches!(probe(&bytes, &tight), Err(ImageError::ImageTooLarge(_))));
    let exact = Limits { max_bytes: bytes.len() as u64, ..limits() };
    assert!(probe(&bytes, &exact).is_ok());
    // Over the byte limit wins even over an unsupported format.
    let pdf = b"%PDF-1.7 and then a long document".to_vec();
    let tiny = Limits { max_bytes: 4, ..limits() };
    assert!(matches!(probe(&pdf, &tiny), Err(ImageError::ImageTooLarge(_))));
}

#[test]
fn pixel_limit() {
    let bytes = png_rgba8(100, 50);
    let tight = Limits { max_pixels: 4_999, ..limits() };
    match probe(&bytes, &tight) {
        Err(ImageError::ImageTooLarge(message)) => assert!(message.contains("100x50"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(probe(&bytes, &Limits { max_pixels: 5_000, ..limits() }).is_ok());
}

#[test]
fn zero_dimensions_are_invalid() {
    assert!(matches!(probe(&png_claiming(0, 10), &limits()), Err(ImageError::InvalidImage(_))));
    assert!(matches!(probe(&jpeg_claiming(10, 0), &limits()), Err(ImageError::InvalidImage(_))));
}

#[test]
fn orientation_from_exif_swaps_displayed_size() {
    let base = jpeg(&quadrants(40, 20));
    for orientation in 1..=8u16 {
        let bytes = splice_exif(&base, &orientation_exif(orientation));
        let probed = probe(&bytes, &limits()).unwrap();
        assert_eq!(probed.orientation, orientation as u8);
        assert_eq!((probed.stored_width, probed.stored_height), (40, 20));
        let expected = if orientation >= 5 { (20, 40) } else { (40, 20) };
        assert_eq!((probed.width, probed.height), expected, "orientation {orientation}");
        assert_eq!(probed.swaps_dimensions(), orientation >= 5);
    }
    // Out of range or unreadable orientation counts as 1.
    let bytes = splice_exif(&base, &orientation_exif(42));
    assert_eq!(probe(&bytes, &limits()).unwrap().orientation, 1);
    let bytes = splice_exif(&base, b"II*\0\xFF\xFF\xFF\xFF");
    assert_eq!(probe(&bytes, &limits()).unwrap().orientation, 1);
}

#[test]
fn corrupt_structures_are_invalid() {
    // PNG chunk length pointing far beyond the file.
    let mut png = png_rgba8(8, 8);
    png[33..37].copy_from_slice(&0x7FFF_0000u32.to_be_bytes());
    assert!(matches!(probe(&png, &limits()), Err(ImageError::InvalidImage(_))));

    // WebP whose RIFF size claims more than the file holds.
    let image = DynamicImage::ImageRgb8(quadrants(8, 8));
    let mut webp = encode(&image, Codec::WebP);
    let claimed = webp.len() as u32 + 100;
    webp[4..8].copy_from_slice(&claimed.to_le_bytes());
    assert!(matches!(probe(&webp, &limits()), Err(ImageError::InvalidImage(_))));

    // JPEG without any scan: SOI, then EOI.
    let bytes = [0xFF, 0xD8, 0xFF, 0xD9];
    assert!(matches!(probe(&bytes, &limits()), Err(ImageError::InvalidImage(_))));

    // TIFF whose strip offset points past the end.
    let mut tiff = encode(&image, Codec::Tiff);
    let len = tiff.len();
    let entries = probe_tiff_strip_offset_position(&tiff);
    tiff[entries..entries + 4].copy_from_slice(&(len as u32).to_le_bytes());
    assert!(matches!(probe(&tiff, &limits()), Err(ImageError::InvalidImage(_))));
}

/// The byte position of the (single, inline) StripOffsets value in a little-endian TIFF.
fn probe_tiff_strip_offset_position(tiff: &[u8]) -> usize {
    let ifd = u32::from_le_bytes(tiff[4..8].try_into().unwrap()) as usize;
    let count = u16::from_le_bytes(tiff[ifd..ifd + 2].try_into().unwrap()) as usize;
    (0..count)
        .map(|i| ifd + 2 + i * 12)
        .find(|&at| u16::from_le_bytes(tiff[at..at + 2].try_into().unwrap()) == 273)
        .map(|at| at + 8)
        .expect("StripOffsets entry")
}

#[test]
fn unsupported_jpeg_coding_is_named() {
    // Same file, frame header marker changed to SOF9 (arithmetic coding).
    let mut bytes = jpeg(&quadrants(16, 16));
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bytes[sof + 1] = 0xC9;
    match probe(&bytes, &limits()) {
        Err(ImageError::UnsupportedFormat(message)) => assert!(message.contains("arithmetic")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn probe_serialises_in_camel_case() {
    let probed = probe(&jpeg(&quadrants(40, 20)), &limits()).unwrap();
    let json = serde_json::to_value(&probed).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"format": "jpeg", "storedWidth": 40, "storedHeight": 20,
                           "orientation": 1, "width": 40, "height": 20})
    );
    let limits_json = serde_json::to_value(Limits::default()).unwrap();
    assert_eq!(limits_json, serde_json::json!({"maxBytes": 50_000_000, "maxPixels": 50_000_000}));
}

#[test]
fn orientation_from_png_and_webp_exif() {
    let image = DynamicImage::ImageRgb8(quadrants(40, 20));
    let png = png_with_exif(&encode(&image, Codec::Png), &orientation_exif(6));
    let webp = webp_with_exif(&encode(&image, Codec::WebP), 40, 20, &orientation_exif(8));
    for (bytes, format, orientation) in [(png, ImageFormat::Png, 6), (webp, ImageFormat::Webp, 8)] {
        let probed = probe(&bytes, &limits()).unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(probed.format, format);
        assert_eq!(probed.orientation, orientation, "{format}");
        assert_eq!((probed.width, probed.height), (20, 40), "{format}");
        let report = imgflow_imaging::read_exif(&bytes, false);
        assert_eq!(report.exif.and_then(|e| e.orientation), Some(orientation), "{format}: {:?}", report.warnings);
        let rendered = imgflow_imaging::render(&bytes, &imgflow_imaging::RenditionSpec::defaults(), &limits())
            .unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!((rendered[0].width, rendered[0].height), (20, 40), "{format}");
    }
}
