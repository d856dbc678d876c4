mod common;

use common::*;
use exif::{Tag, Value};
use image::{DynamicImage, ImageFormat as Codec};
use imgflow_imaging::{ExifSummary, GpsPosition, read_exif};

fn camera_fields() -> Vec<exif::Field> {
    vec![
        field(Tag::Make, ascii("Canon")),
        field(Tag::Model, ascii("Canon EOS 5D Mark III\0\0")),
        field(Tag::LensMake, ascii("  ")),
        field(Tag::LensModel, ascii("EF24-70mm f/2.8L II USM")),
        field(Tag::Orientation, Value::Short(vec![6])),
        field(Tag::DateTimeOriginal, ascii("2019:05:04 12:00:00")),
        field(Tag::OffsetTimeOriginal, ascii("+02:00")),
        field(Tag::ExposureTime, rationals(&[(1, 125)])),
        field(Tag::FNumber, rationals(&[(28, 10)])),
        field(Tag::PhotographicSensitivity, Value::Short(vec![400])),
        field(Tag::FocalLength, rationals(&[(50, 1)])),
        field(Tag::GPSLatitudeRef, ascii("S")),
        field(Tag::GPSLatitude, rationals(&[(33, 1), (51, 1), (3600, 100)])),
        field(Tag::GPSLongitudeRef, ascii("E")),
        field(Tag::GPSLongitude, rationals(&[(151, 1), (12, 1), (0, 1)])),
        field(Tag::GPSAltitudeRef, Value::Byte(vec![1])),
        field(Tag::GPSAltitude, rationals(&[(125, 10)])),
    ]
}

fn camera_jpeg() -> Vec<u8> {
    splice_exif(&jpeg(&quadrants(16, 16)), &exif_tiff(&camera_fields()))
}

#[test]
fn summary_of_a_camera_file() {
    let report = read_exif(&camera_jpeg(), true);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let expected = ExifSummary {
        make: Some("Canon".into()),
        model: Some("Canon EOS 5D Mark III".into()),
        lens_make: None,
        lens_model: Some("EF24-70mm f/2.8L II USM".into()),
        date_time_original: Some("2019-05-04T12:00:00+02:00".into()),
        orientation: Some(6),
        exposure_time: Some("1/125".into()),
        f_number: Some(2.8),
        iso: Some(400),
        focal_length_mm: Some(50.0),
        gps: Some(GpsPosition { latitude: -33.86, longitude: 151.2, altitude_m: Some(-12.5) }),
    };
    let summary = report.exif.expect("summary");
    let gps = summary.gps.expect("gps");
    assert!((gps.latitude - -33.86).abs() < 1e-9, "{gps:?}");
    assert!((gps.longitude - 151.2).abs() < 1e-9, "{gps:?}");
    assert_eq!(gps.altitude_m, Some(-12.5));
    assert_eq!(ExifSummary { gps: None, ..summary }, ExifSummary { gps: None, ..expected });
}

#[test]
fn gps_only_when_asked() {
    let report = read_exif(&camera_jpeg(), false);
    let summary = report.exif.expect("summary");
    assert_eq!(summary.gps, None);
    assert_eq!(summary.make.as_deref(), Some("Canon"));
    let json = serde_json::to_string(&summary).unwrap();
    assert!(!json.contains("gps") && !json.contains("latitude"), "{json}");
}

#[test]
fn json_is_camel_case_without_empty_fields() {
    let report = read_exif(&camera_jpeg(), true);
    let json = serde_json::to_value(&report).unwrap();
    let exif = &json["exif"];
    assert_eq!(exif["dateTimeOriginal"], "2019-05-04T12:00:00+02:00");
    assert_eq!(exif["exposureTime"], "1/125");
    assert_eq!(exif["fNumber"], 2.8);
    assert_eq!(exif["focalLengthMm"], 50.0);
    assert_eq!(exif["lensModel"], "EF24-70mm f/2.8L II USM");
    assert_eq!(exif["gps"]["altitudeM"], -12.5);
    assert!(exif.get("lensMake").is_none(), "blank strings are omitted");
    assert_eq!(json["warnings"], serde_json::json!([]));
    // Round trip, for steps that pass the report along.
    let back: imgflow_imaging::ExifReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn no_exif_is_none_without_warnings() {
    let image = DynamicImage::ImageRgb8(quadrants(8, 8));
    for bytes in
        [jpeg(&quadrants(8, 8)), encode(&image, Codec::Png), encode(&image, Codec::WebP), encode(&image, Codec::Gif)]
    {
        let report = read_exif(&bytes, true);
        assert_eq!(report.exif, None);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }
}

#[test]
fn corrupt_exif_is_a_warning_never_an_error() {
    let base = jpeg(&quadrants(8, 8));
    for tiff in
        [b"II*\0\xFF\xFF\xFF\x7F".to_vec(), b"MM\0*\0\0\0\x08\x00".to_vec(), b"not a tiff at all".to_vec(), Vec::new()]
    {
        let report = read_exif(&splice_exif(&base, &tiff), true);
        assert_eq!(report.exif, None, "{tiff:?}");
        assert!(!report.warnings.is_empty(), "{tiff:?}");
    }
}

#[test]
fn partly_corrupt_exif_keeps_what_parsed() {
    // IFD0: Make "Ab" (inline) and an Exif IFD pointer far beyond the data.
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&0x010Fu16.to_le_bytes()); // Make
    tiff.extend_from_slice(&2u16.to_le_bytes()); // ASCII
    tiff.extend_from_slice(&3u32.to_le_bytes());
    tiff.extend_from_slice(b"Ab\0\0");
    tiff.extend_from_slice(&0x8769u16.to_le_bytes()); // ExifIFDPointer
    tiff.extend_from_slice(&4u16.to_le_bytes()); // LONG
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&0x00FF_FFFFu32.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let report = read_exif(&splice_exif(&jpeg(&quadrants(8, 8)), &tiff), true);
    assert_eq!(report.exif.and_then(|e| e.make).as_deref(), Some("Ab"));
    assert!(!report.warnings.is_empty());
}

#[test]
fn unusable_values_are_dropped_with_warnings() {
    let fields = vec![
        field(Tag::Make, ascii("Nikon")),
        field(Tag::ExposureTime, rationals(&[(1, 0)])),
        field(Tag::Orientation, Value::Short(vec![0])),
        field(Tag::DateTimeOriginal, ascii("yesterday")),
        field(Tag::GPSLatitudeRef, ascii("N")),
        field(Tag::GPSLatitude, rationals(&[(95, 1), (0, 1), (0, 1)])),
        field(Tag::GPSLongitudeRef, ascii("W")),
        field(Tag::GPSLongitude, rationals(&[(10, 1), (0, 1), (0, 1)])),
    ];
    let bytes = splice_exif(&jpeg(&quadrants(8, 8)), &exif_tiff(&fields));
    let report = read_exif(&bytes, true);
    let summary = report.exif.expect("summary");
    assert_eq!(summary.make.as_deref(), Some("Nikon"));
    assert_eq!(summary.exposure_time, None);
    assert_eq!(summary.orientation, None);
    assert_eq!(summary.date_time_original, None);
    assert_eq!(summary.gps, None);
    assert_eq!(report.warnings.len(), 4, "{:?}", report.warnings);
}

#[test]
fn not_an_image_is_a_warning() {
    let report = read_exif(b"%PDF-1.4", true);
    assert_eq!(report.exif, None);
    assert_eq!(report.warnings.len(), 1);
}
