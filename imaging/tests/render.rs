mod common;

use common::*;
use image::{DynamicImage, GenericImageView, ImageFormat as Codec};
use imgflow_imaging::{ImageError, Limits, Rendered, RenditionFormat, RenditionSpec, render};

fn spec(name: &str, max_width: u32, max_height: u32, format: RenditionFormat) -> RenditionSpec {
    RenditionSpec { name: name.to_owned(), max_width, max_height, format, quality: 90 }
}

fn decode(rendered: &Rendered) -> DynamicImage {
    let codec = match rendered.format {
        RenditionFormat::Jpeg => Codec::Jpeg,
        RenditionFormat::Webp => Codec::WebP,
        RenditionFormat::Png => Codec::Png,
    };
    let image = image::load_from_memory_with_format(&rendered.bytes, codec).unwrap();
    assert_eq!(image.dimensions(), (rendered.width, rendered.height), "{}", rendered.name);
    image
}

fn render_one(bytes: &[u8], spec: RenditionSpec) -> Rendered {
    let mut out = render(bytes, &[spec], &Limits::default()).unwrap();
    assert_eq!(out.len(), 1);
    out.remove(0)
}

/// For each EXIF orientation, the stored corner that must end up top-left when displayed.
const DISPLAYED_TOP_LEFT: [[u8; 3]; 8] = [
    TOP_LEFT,     // 1: as stored
    TOP_RIGHT,    // 2: mirrored horizontally
    BOTTOM_RIGHT, // 3: rotated 180°
    BOTTOM_LEFT,  // 4: mirrored vertically
    TOP_LEFT,     // 5: transposed
    BOTTOM_LEFT,  // 6: rotated 90° clockwise
    BOTTOM_RIGHT, // 7: transversed
    TOP_RIGHT,    // 8: rotated 90° counter-clockwise
];

#[test]
fn all_orientations_are_applied() {
    let base = jpeg(&quadrants(64, 32));
    for orientation in 1..=8u16 {
        let bytes = splice_exif(&base, &orientation_exif(orientation));
        let transposed = orientation >= 5;
        // Full size (no resize) and downscaled, in a lossless format to compare colours.
        for (max, expected) in [(1000, (64, 32)), (16, (16, 8))] {
            let rendered = render_one(&bytes, spec("r", max, max, RenditionFormat::Png));
            let expected = if transposed { (expected.1, expected.0) } else { expected };
            assert_eq!((rendered.width, rendered.height), expected, "orientation {orientation}");
            let image = decode(&rendered);
            let top_left = pixel_rgb(&image, 1, 1);
            let wanted = DISPLAYED_TOP_LEFT[usize::from(orientation) - 1];
            assert!(
                close(top_left, wanted, 40),
                "orientation {orientation}, max {max}: top-left {top_left:?}, expected {wanted:?}"
            );
            // And the opposite corner is the opposite stored corner.
            let (w, h) = image.dimensions();
            let bottom_right = pixel_rgb(&image, w - 2, h - 2);
            let opposite = match wanted {
                TOP_LEFT => BOTTOM_RIGHT,
                BOTTOM_RIGHT => TOP_LEFT,
                TOP_RIGHT => BOTTOM_LEFT,
                _ => TOP_RIGHT,
            };
            assert!(close(bottom_right, opposite, 40), "orientation {orientation}: {bottom_right:?}");
        }
    }
}

#[test]
fn fits_inside_the_box_without_upscaling() {
    let bytes = jpeg(&quadrants(400, 100));
    let cases = [
        ((256, 256), (256, 64)),
        ((100, 100), (100, 25)),
        ((1000, 1000), (400, 100)), // never upscaled
        ((400, 10), (40, 10)),
        ((1, 1), (1, 1)),
    ];
    for ((max_width, max_height), expected) in cases {
        let rendered = render_one(&bytes, spec("r", max_width, max_height, RenditionFormat::Jpeg));
        assert_eq!((rendered.width, rendered.height), expected, "box {max_width}x{max_height}");
        decode(&rendered);
    }
    // Extreme aspect ratios still get at least one pixel.
    let line = jpeg(&quadrants(2000, 2));
    let rendered = render_one(&line, spec("r", 256, 256, RenditionFormat::Jpeg));
    assert_eq!((rendered.width, rendered.height), (256, 1));
}

#[test]
fn renditions_come_back_in_spec_order_from_one_call() {
    let bytes = jpeg(&quadrants(1500, 1000));
    let specs = vec![
        spec("small", 100, 100, RenditionFormat::Jpeg),
        spec("large", 900, 900, RenditionFormat::Webp),
        spec("middle", 300, 300, RenditionFormat::Png),
    ];
    let out = render(&bytes, &specs, &Limits::default()).unwrap();
    let summary: Vec<_> = out.iter().map(|r| (r.name.as_str(), r.format, r.width, r.height)).collect();
    assert_eq!(
        summary,
        [
            ("small", RenditionFormat::Jpeg, 100, 67),
            ("large", RenditionFormat::Webp, 900, 600),
            ("middle", RenditionFormat::Png, 300, 200),
        ]
    );
    for rendered in &out {
        let image = decode(rendered);
        let (w, h) = image.dimensions();
        // The small one is resampled from a larger rendition: colours must survive that too.
        assert!(close(pixel_rgb(&image, w / 4, h / 4), TOP_LEFT, 40), "{}", rendered.name);
        assert!(close(pixel_rgb(&image, 3 * w / 4, 3 * h / 4), BOTTOM_RIGHT, 40), "{}", rendered.name);
    }
    assert!(render(&bytes, &[], &Limits::default()).unwrap().is_empty());
}

#[test]
fn alpha_is_kept_for_png_and_webp_and_flattened_on_white_for_jpeg() {
    for (bytes, opaque) in [(png_rgba8(64, 32), [255, 0, 0]), (png_rgba16(64, 32), [255, 128, 0])] {
        let png = decode(&render_one(&bytes, spec("p", 32, 32, RenditionFormat::Png)));
        assert!(png.color().has_alpha());
        let rgba = png.to_rgba8();
        assert_eq!(rgba.get_pixel(2, 2)[3], 255);
        assert_eq!(rgba.get_pixel(30, 2)[3], 0);

        let webp = decode(&render_one(&bytes, spec("w", 32, 32, RenditionFormat::Webp)));
        assert!(webp.color().has_alpha());
        let rgba = webp.to_rgba8();
        assert!(rgba.get_pixel(2, 2)[3] > 250);
        assert!(rgba.get_pixel(30, 2)[3] < 5);

        let jpeg = decode(&render_one(&bytes, spec("j", 32, 32, RenditionFormat::Jpeg)));
        assert!(!jpeg.color().has_alpha());
        // Transparent blue becomes white, not blue or black.
        assert!(close(pixel_rgb(&jpeg, 30, 2), [255, 255, 255], 8), "{:?}", pixel_rgb(&jpeg, 30, 2));
        assert!(close(pixel_rgb(&jpeg, 2, 2), opaque, 12), "{:?}", pixel_rgb(&jpeg, 2, 2));
    }
}

#[test]
fn sixteen_bit_input_gives_correct_eight_bit_output() {
    // 32896/65535 is 128.0 in 8 bits: a naive `>> 8` gives 128 too, but truncation of the
    // whole range would show at the extremes, so check both ends and the middle.
    let rendered = render_one(&png_rgba16(64, 32), spec("p", 64, 32, RenditionFormat::Png));
    let rgba = decode(&rendered).to_rgba8();
    assert_eq!(rgba.get_pixel(4, 4).0, [255, 128, 0, 255]);
    assert!(matches!(decode(&rendered), DynamicImage::ImageRgba8(_)));
}

#[test]
fn sixteen_bit_rgb_and_grey_are_resampled_in_sixteen_bits_and_rounded() {
    let (rgb, gray) = png_rgb16_and_gray16(64, 32);
    let rendered = render_one(&rgb, spec("p", 32, 16, RenditionFormat::Png));
    assert_eq!((rendered.width, rendered.height), (32, 16));
    let image = decode(&rendered);
    assert_eq!(pixel_rgb(&image, 4, 8), [255, 128, 0]);
    assert_eq!(pixel_rgb(&image, 28, 8), [0, 0, 255]);
    let rendered = render_one(&gray, spec("g", 32, 16, RenditionFormat::Png));
    let luma = decode(&rendered).to_luma8();
    assert_eq!((luma.get_pixel(4, 8)[0], luma.get_pixel(28, 8)[0]), (128, 255));
}

#[test]
fn grayscale_stays_grayscale_and_correct() {
    let bytes = gray_jpeg(64, 32);
    let rendered = render_one(&bytes, spec("g", 32, 32, RenditionFormat::Jpeg));
    let image = decode(&rendered);
    assert!(matches!(image, DynamicImage::ImageLuma8(_)));
    let luma = image.to_luma8();
    assert!(luma.get_pixel(2, 8)[0].abs_diff(40) <= 4);
    assert!(luma.get_pixel(29, 8)[0].abs_diff(200) <= 4);
    // WebP needs RGB: the grey is expanded, not tinted.
    let webp = decode(&render_one(&bytes, spec("w", 32, 32, RenditionFormat::Webp)));
    let [r, g, b] = pixel_rgb(&webp, 29, 8);
    assert!(r.abs_diff(g) <= 3 && g.abs_diff(b) <= 3 && r.abs_diff(200) <= 8, "{r} {g} {b}");
}

#[test]
fn gif_renders_its_first_frame() {
    let rendered = render_one(&two_frame_gif(20, 10), spec("g", 100, 100, RenditionFormat::Png));
    assert_eq!((rendered.width, rendered.height), (20, 10));
    assert!(close(pixel_rgb(&decode(&rendered), 5, 5), [255, 0, 0], 2));
}

#[test]
fn webp_and_tiff_inputs_render() {
    let image = DynamicImage::ImageRgb8(quadrants(80, 40));
    for codec in [Codec::WebP, Codec::Tiff, Codec::Png, Codec::Gif] {
        let bytes = encode(&image, codec);
        let rendered = render_one(&bytes, spec("r", 40, 40, RenditionFormat::Jpeg));
        assert_eq!((rendered.width, rendered.height), (40, 20), "{codec:?}");
        let decoded = decode(&rendered);
        assert!(close(pixel_rgb(&decoded, 5, 5), TOP_LEFT, 40), "{codec:?}");
        assert!(close(pixel_rgb(&decoded, 35, 15), BOTTOM_RIGHT, 40), "{codec:?}");
    }
}

#[test]
fn cmyk_jpegs_keep_their_colours() {
    // Ink amounts → expected sRGB without a profile: cyan ink removes red, and so on.
    let cases = [
        ([0, 0, 0, 0], [255, 255, 255]),
        ([255, 0, 0, 0], [0, 255, 255]),
        ([0, 255, 0, 0], [255, 0, 255]),
        ([0, 0, 255, 0], [255, 255, 0]),
        ([0, 0, 0, 255], [0, 0, 0]),
        ([0, 128, 255, 0], [255, 127, 0]),
    ];
    for as_ycck in [false, true] {
        for (ink, expected) in cases {
            let bytes = cmyk_jpeg(ink, 16, 16, as_ycck);
            let rendered = render_one(&bytes, spec("c", 16, 16, RenditionFormat::Png));
            let colour = pixel_rgb(&decode(&rendered), 8, 8);
            assert!(
                close(colour, expected, 12),
                "ink {ink:?} (YCCK: {as_ycck}) gave {colour:?}, expected {expected:?}"
            );
        }
    }
}

#[test]
fn broken_input_is_a_typed_error() {
    let bytes = jpeg(&quadrants(64, 64));
    let truncated = &bytes[..bytes.len() / 2];
    let specs = RenditionSpec::defaults();
    assert!(matches!(render(truncated, &specs, &Limits::default()), Err(ImageError::InvalidImage(_))));
    assert!(matches!(render(b"", &specs, &Limits::default()), Err(ImageError::UnsupportedFormat(_))));
    // Scan data replaced by garbage (structure intact): the decoder's verdict, not a panic.
    let mut garbage = bytes.clone();
    let sos = garbage.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let end = garbage.len() - 2;
    for (i, byte) in garbage[sos + 14..end].iter_mut().enumerate() {
        *byte = if i % 2 == 0 { 0x00 } else { 0x5A };
    }
    let result = render(&garbage, &specs, &Limits::default());
    assert!(result.is_ok() || matches!(result, Err(ImageError::InvalidImage(_))), "{result:?}");
}

#[test]
fn rendition_format_names() {
    let cases = [
        (RenditionFormat::Jpeg, "jpg", "image/jpeg", "\"jpeg\""),
        (RenditionFormat::Webp, "webp", "image/webp", "\"webp\""),
        (RenditionFormat::Png, "png", "image/png", "\"png\""),
    ];
    for (format, extension, content_type, json) in cases {
        assert_eq!(format.extension(), extension);
        assert_eq!(format.content_type(), content_type);
        assert_eq!(serde_json::to_string(&format).unwrap(), json);
    }
    assert_eq!(RenditionFormat::default(), RenditionFormat::Jpeg);
}

#[test]
fn spec_lists_are_validated() {
    let parsed = RenditionSpec::parse_list(
        r#"[{"name":"thumb","maxWidth":256,"maxHeight":256},
            {"name":"hero_2x","maxWidth":2560,"maxHeight":1440,"format":"webp","quality":70}]"#,
    )
    .unwrap();
    assert_eq!(parsed[0], RenditionSpec::defaults()[0]);
    assert_eq!(parsed[1].format, RenditionFormat::Webp);
    assert_eq!(parsed[1].quality, 70);

    let rejected = [
        "[]",
        "not json",
        r#"[{"name":"a","maxWidth":1,"maxHeight":1},{"name":"a","maxWidth":2,"maxHeight":2}]"#,
        r#"[{"name":"Thumb","maxWidth":1,"maxHeight":1}]"#,
        r#"[{"name":"","maxWidth":1,"maxHeight":1}]"#,
        r#"[{"name":"a/b","maxWidth":1,"maxHeight":1}]"#,
        r#"[{"name":"abcdefghijklmnopqrstuvwxyz0123456","maxWidth":1,"maxHeight":1}]"#,
        r#"[{"name":"a","maxWidth":0,"maxHeight":1}]"#,
        r#"[{"name":"a","maxWidth":1,"maxHeight":0}]"#,
        r#"[{"name":"a","maxWidth":1,"maxHeight":1,"quality":0}]"#,
        r#"[{"name":"a","maxWidth":1,"maxHeight":1,"quality":101}]"#,
        r#"[{"name":"a","maxWidth":1,"maxHeight":1,"format":"avif"}]"#,
        r#"[{"name":"a","maxwidth":1,"maxHeight":1}]"#,
    ];
    for json in rejected {
        assert!(RenditionSpec::parse_list(json).is_err(), "accepted {json}");
    }
    let defaults = RenditionSpec::defaults();
    assert_eq!(
        defaults.iter().map(|s| (s.name.as_str(), s.max_width, s.max_height, s.format, s.quality)).collect::<Vec<_>>(),
        [("thumb", 256, 256, RenditionFormat::Jpeg, 80), ("medium", 1280, 1280, RenditionFormat::Jpeg, 80)]
    );
}

#[test]
fn jpeg_renditions_of_textured_images_decode_to_the_same_picture() {
    // Gradients plus pseudo-random texture: lossy output must stay close to the lossless one
    // (channel order, chroma subsampling, quality), beyond what flat test patterns show.
    let mut state = 12_345u32;
    let textured = image::RgbImage::from_fn(600, 400, |x, y| {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let noise = (state >> 28) as u8;
        image::Rgb([(x * 240 / 600) as u8 + noise, (y * 200 / 400) as u8, ((x + y) % 97) as u8 + noise])
    });
    let bytes = jpeg(&textured);
    let reference = decode(&render_one(&bytes, spec("p", 300, 300, RenditionFormat::Png))).to_rgb8();
    for format in [RenditionFormat::Jpeg, RenditionFormat::Webp] {
        let lossy = decode(&render_one(&bytes, spec("l", 300, 300, format))).to_rgb8();
        let total: u64 = lossy.as_raw().iter().zip(reference.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
        let mean = total as f64 / reference.as_raw().len() as f64;
        assert!(mean < 8.0, "{format:?}: mean difference {mean} from the lossless rendition");
    }
}

/// A PNG of a grey half and an orange half, tagged with `icc`.
fn png_with_profile(icc: Vec<u8>) -> Vec<u8> {
    use image::ImageEncoder;
    let image =
        image::RgbImage::from_fn(
            32,
            16,
            |x, _| {
                if x < 16 { image::Rgb([128, 128, 128]) } else { image::Rgb([200, 100, 50]) }
            },
        );
    let mut out = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut out);
    encoder.set_icc_profile(icc).unwrap();
    encoder.write_image(image.as_raw(), 32, 16, image::ExtendedColorType::Rgb8).unwrap();
    out
}

#[test]
fn wide_gamut_sources_are_converted_to_srgb() {
    let p3 = moxcms::ColorProfile::new_display_p3().encode().unwrap();
    let rendered = render_one(&png_with_profile(p3), spec("p", 32, 32, RenditionFormat::Png));
    let image = decode(&rendered);
    let grey = pixel_rgb(&image, 4, 8);
    assert!(close(grey, [128, 128, 128], 2), "grey must stay grey: {grey:?}");
    // The same numbers mean a more saturated orange in Display P3 than in sRGB.
    let [r, g, b] = pixel_rgb(&image, 28, 8);
    assert!(r >= 205 && g <= 98 && b <= 45, "P3 orange not converted: {r} {g} {b}");

    // An sRGB-tagged source is left exactly as it is.
    let srgb = moxcms::ColorProfile::new_srgb().encode().unwrap();
    let rendered = render_one(&png_with_profile(srgb), spec("p", 32, 32, RenditionFormat::Png));
    assert_eq!(pixel_rgb(&decode(&rendered), 28, 8), [200, 100, 50]);
}

#[test]
fn jpeg_shrink_on_load_matches_a_full_decode() {
    // Smooth content (as in photos) where DCT-domain downscaling and a full decode followed by
    // Lanczos should agree closely; the PNG copy of the same pixels always takes the full path.
    let smooth = image::RgbImage::from_fn(800, 600, |x, y| {
        let wave = ((f64::from(x) / 40.0).sin() * 60.0 + (f64::from(y) / 25.0).cos() * 60.0) as i32;
        image::Rgb([(128 + wave) as u8, (x * 255 / 800) as u8, (y * 255 / 600) as u8])
    });
    let as_jpeg = jpeg(&smooth);
    let as_png = encode(&DynamicImage::ImageRgb8(smooth), Codec::Png);
    // 100 px fits in 1/4 (200×150) and 1/8 (100×75) is also enough for the 100×75 result.
    for size in [100, 190, 390] {
        let shrunk = decode(&render_one(&as_jpeg, spec("s", size, size, RenditionFormat::Png))).to_rgb8();
        let full = decode(&render_one(&as_png, spec("f", size, size, RenditionFormat::Png))).to_rgb8();
        assert_eq!(shrunk.dimensions(), full.dimensions());
        let total: u64 = shrunk.as_raw().iter().zip(full.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
        let mean = total as f64 / full.as_raw().len() as f64;
        assert!(mean < 3.0, "{size}: shrink-on-load differs by {mean} on average");
    }
}
