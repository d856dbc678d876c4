//! The real photos of ../shared/images (skipped when absent): header facts against the
//! README table, default renditions, and colours of the CMYK photo.

use std::path::PathBuf;

use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView, ImageFormat as Codec};
use imgflow_imaging::{ImageFormat, Limits, RenditionFormat, RenditionSpec, probe, read_exif, render};

fn images_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/images"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent", dir.display());
        None
    }
}

/// file, format, stored width, stored height, EXIF orientation (README table).
const PHOTOS: [(&str, ImageFormat, u32, u32, u8); 16] = [
    ("pixel5_3024x4032.jpg", ImageFormat::Jpeg, 3024, 4032, 1),
    ("motog9plus_4640x3472.jpg", ImageFormat::Jpeg, 4640, 3472, 1),
    ("craft_beer_6000x4000_progressive.jpg", ImageFormat::Jpeg, 6000, 4000, 1),
    ("book_flowers_3024x4032_progressive.jpg", ImageFormat::Jpeg, 3024, 4032, 1),
    ("iphone6_3264x2448.jpg", ImageFormat::Jpeg, 3264, 2448, 1),
    ("nokia83_4608x1976.jpg", ImageFormat::Jpeg, 4608, 1976, 1),
    ("canon_sx60_orient6.jpg", ImageFormat::Jpeg, 2048, 1536, 6),
    ("landscape_orient2.jpg", ImageFormat::Jpeg, 1800, 1200, 2),
    ("landscape_orient3.jpg", ImageFormat::Jpeg, 1800, 1200, 3),
    ("portrait_orient5.jpg", ImageFormat::Jpeg, 1800, 1200, 5),
    ("portrait_orient7.jpg", ImageFormat::Jpeg, 1800, 1200, 7),
    ("portrait_orient8.jpg", ImageFormat::Jpeg, 1800, 1200, 8),
    ("cmyk_canon5d3_orient6.jpg", ImageFormat::Jpeg, 800, 533, 6),
    ("flower_rgba_alpha.png", ImageFormat::Png, 510, 532, 1),
    ("hdr_room_16bit.png", ImageFormat::Png, 676, 449, 1),
    ("denali.webp", ImageFormat::Webp, 600, 315, 1),
];

/// Fit `width`×`height` in a `size` square, never upscaling (computed independently of the
/// crate's integer arithmetic).
fn expected_fit(width: u32, height: u32, size: u32) -> (u32, u32) {
    let scale = (f64::from(size) / f64::from(width.max(height))).min(1.0);
    let fit = |v: u32| ((f64::from(v) * scale).round() as u32).max(1);
    (fit(width), fit(height))
}

#[test]
fn photos_probe_and_render() {
    let Some(dir) = images_dir() else { return };
    for (file, format, stored_width, stored_height, orientation) in PHOTOS {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let probed = probe(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        let (width, height) =
            if orientation >= 5 { (stored_height, stored_width) } else { (stored_width, stored_height) };
        assert_eq!(probed.format, format, "{file}");
        assert_eq!((probed.stored_width, probed.stored_height), (stored_width, stored_height));
        assert_eq!(probed.orientation, orientation, "{file}");
        assert_eq!((probed.width, probed.height), (width, height), "{file}");

        let renditions =
            render(&bytes, &RenditionSpec::defaults(), &Limits::default()).unwrap_or_else(|e| panic!("{file}: {e}"));
        let sizes: Vec<_> = renditions.iter().map(|r| (r.name.as_str(), r.width, r.height)).collect();
        let (thumb, medium) = (expected_fit(width, height, 256), expected_fit(width, height, 1280));
        assert_eq!(sizes, [("thumb", thumb.0, thumb.1), ("medium", medium.0, medium.1)], "{file}");
        for rendition in &renditions {
            let decoded = image::load_from_memory_with_format(&rendition.bytes, Codec::Jpeg)
                .unwrap_or_else(|e| panic!("{file} {}: {e}", rendition.name));
            assert_eq!(decoded.dimensions(), (rendition.width, rendition.height));
        }
    }
}

#[test]
fn photos_exif() {
    let Some(dir) = images_dir() else { return };
    let makes = [
        ("pixel5_3024x4032.jpg", Some("Google")),
        ("motog9plus_4640x3472.jpg", Some("motorola")),
        ("iphone6_3264x2448.jpg", Some("Apple")),
        ("canon_sx60_orient6.jpg", Some("Canon")),
        ("denali.webp", Some("Canon")),
        ("craft_beer_6000x4000_progressive.jpg", None),
    ];
    for (file, make) in makes {
        let report = read_exif(&std::fs::read(dir.join(file)).unwrap(), false);
        let summary = report.exif.clone().unwrap_or_default();
        assert_eq!(summary.make.as_deref(), make, "{file}: {report:?}");
        assert_eq!(summary.gps, None, "{file}: GPS must stay out unless asked");
    }
    for (file, _, _, _, orientation) in PHOTOS {
        let report = read_exif(&std::fs::read(dir.join(file)).unwrap(), true);
        if let Some(tagged) = report.exif.and_then(|e| e.orientation) {
            assert_eq!(tagged, orientation, "{file}");
        }
    }
}

/// Mean R, G, B of an image.
fn mean_rgb(image: &DynamicImage) -> [f64; 3] {
    let rgb = image.to_rgb8();
    let mut sums = [0f64; 3];
    for pixel in rgb.pixels() {
        for (sum, &value) in sums.iter_mut().zip(&pixel.0) {
            *sum += f64::from(value);
        }
    }
    sums.map(|sum| sum / f64::from(rgb.width() * rgb.height()))
}

/// Mean R, G, B of a box given as fractions of the image.
fn mean_rgb_of(image: &DynamicImage, x: (f64, f64), y: (f64, f64)) -> [f64; 3] {
    let (w, h) = image.dimensions();
    let crop = image.crop_imm(
        (x.0 * f64::from(w)) as u32,
        (y.0 * f64::from(h)) as u32,
        ((x.1 - x.0) * f64::from(w)) as u32,
        ((y.1 - y.0) * f64::from(h)) as u32,
    );
    mean_rgb(&crop)
}

fn render_medium(bytes: &[u8], format: RenditionFormat) -> DynamicImage {
    let spec = RenditionSpec { format, ..RenditionSpec::defaults().remove(1) };
    let rendered = render(bytes, &[spec], &Limits::default()).unwrap().remove(0);
    let codec = if format == RenditionFormat::Png { Codec::Png } else { Codec::Jpeg };
    image::load_from_memory_with_format(&rendered.bytes, codec).unwrap()
}

#[test]
fn jpeg_renditions_match_lossless_ones() {
    let Some(dir) = images_dir() else { return };
    for file in ["portrait_orient7.jpg", "cmyk_canon5d3_orient6.jpg"] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let jpeg = render_medium(&bytes, RenditionFormat::Jpeg).to_rgb8();
        let png = render_medium(&bytes, RenditionFormat::Png).to_rgb8();
        let total: u64 = jpeg.as_raw().iter().zip(png.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
        let mean = total as f64 / png.as_raw().len() as f64;
        assert!(mean < 6.0, "{file}: JPEG differs from PNG by {mean} on average");
    }
}

#[test]
fn cmyk_photo_has_natural_colours() {
    let Some(dir) = images_dir() else { return };
    let bytes = std::fs::read(dir.join("cmyk_canon5d3_orient6.jpg")).unwrap();
    let image = render_medium(&bytes, RenditionFormat::Png);
    let [r, g, b] = mean_rgb(&image);
    // A dark portrait in front of foliage: dark overall, green dominant. Inverted CMYK
    // (the image-rs#1440 failure) makes it bright and magenta; ignoring the Adobe inversion
    // makes it a negative.
    assert!(r < 80.0 && g < 80.0 && b < 80.0, "too bright: {r:.0} {g:.0} {b:.0}");
    assert!(g > r && g > b, "foliage is not green: {r:.0} {g:.0} {b:.0}");
    // The forehead (the photo is displayed sideways, as its orientation tag says): skin tone,
    // light and red-dominant.
    let [r, g, b] = mean_rgb_of(&image, (0.70, 0.80), (0.44, 0.50));
    assert!(r > 150.0 && r > g + 10.0 && r > b + 10.0, "not a skin tone: {r:.0} {g:.0} {b:.0}");
    // And it agrees with the device conversion of a second decoder, rotated and scaled alike.
    let reference = image::load_from_memory(&bytes).unwrap().rotate90();
    let reference = reference.resize_exact(image.width(), image.height(), FilterType::Triangle);
    let ours = mean_rgb(&image);
    for (channel, (a, b)) in ours.iter().zip(mean_rgb(&reference)).enumerate() {
        assert!((a - b).abs() < 6.0, "channel {channel}: {a:.1} vs reference {b:.1}");
    }
}

#[test]
fn jpegs_with_optimised_huffman_tables_decode_correctly() {
    // zune-jpeg 0.5.15 turns this file (a real photo re-encoded by jpeg-encoder with optimised
    // Huffman tables) into green stripes; render must not.
    let Some(dir) = images_dir() else { return };
    let bytes = std::fs::read(dir.join("portrait_orient7.jpg")).unwrap();
    let source = image::load_from_memory(&bytes).unwrap().resize_exact(853, 1280, FilterType::Triangle).to_rgb8();
    let mut reencoded = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut reencoded, 80);
    encoder.set_optimized_huffman_tables(true);
    encoder.encode(source.as_raw(), 853, 1280, jpeg_encoder::ColorType::Rgb).unwrap();
    // A box larger than the image: decoded at full size, no resampling.
    let spec = RenditionSpec {
        name: "full".into(),
        max_width: 2000,
        max_height: 2000,
        format: RenditionFormat::Png,
        quality: 80,
    };
    let rendered = render(&reencoded, &[spec], &Limits::default()).unwrap().remove(0);
    let decoded = image::load_from_memory_with_format(&rendered.bytes, Codec::Png).unwrap().to_rgb8();
    let total: u64 = decoded.as_raw().iter().zip(source.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
    let mean = total as f64 / source.as_raw().len() as f64;
    assert!(mean < 4.0, "decoded pixels differ from the encoded ones by {mean} on average");
}
