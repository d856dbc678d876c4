//! A small EXIF summary for the metadata item: camera, lens, capture time, exposure, optional
//! GPS. Never a raw dump, never an error: unreadable EXIF becomes warnings.

use std::io::Cursor;

use ::exif::{Exif, Field, In, Rational, Reader, Tag, Value};
use serde::{Deserialize, Serialize};

use crate::ImageFormat;

/// The EXIF facts we keep. Absent or unusable fields are `None` and omitted from JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExifSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub make: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lens_make: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lens_model: Option<String>,
    /// ISO 8601 local time, e.g. "2019-05-04T12:00:00", with the offset ("+02:00") when the
    /// file records one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_time_original: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<u8>,
    /// Seconds as photographers write them: "1/125", "2", "0.5".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f_number: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focal_length_mm: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gps: Option<GpsPosition>,
}

/// Decimal degrees, north and east positive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpsPosition {
    pub latitude: f64,
    pub longitude: f64,
    /// Metres above sea level (negative below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altitude_m: Option<f64>,
}

/// The summary (if any EXIF was found) and what could not be read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExifReport {
    pub exif: Option<ExifSummary>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Reads the EXIF of a JPEG, TIFF, PNG or WebP. No EXIF → `exif: None` without warnings;
/// corrupt EXIF → whatever parsed, plus warnings. GPS is kept only when `keep_gps`.
pub fn read_exif(bytes: &[u8], keep_gps: bool) -> ExifReport {
    let mut warnings = Vec::new();
    match ImageFormat::sniff(bytes) {
        // GIF has no EXIF.
        Ok(ImageFormat::Gif) => return ExifReport::default(),
        Ok(_) => {}
        Err(error) => {
            warnings.push(format!("no EXIF read: {error}"));
            return ExifReport { exif: None, warnings };
        }
    }
    let parsed = Reader::new().continue_on_error(true).read_from_container(&mut Cursor::new(bytes));
    let exif = match parsed {
        Ok(exif) => exif,
        Err(::exif::Error::PartialResult(partial)) => {
            let (exif, errors) = partial.into_inner();
            warnings.extend(errors.iter().map(|error| format!("EXIF partly unreadable: {error}")));
            exif
        }
        Err(::exif::Error::NotFound(_)) => return ExifReport::default(),
        Err(error) => {
            warnings.push(format!("EXIF unreadable: {error}"));
            return ExifReport { exif: None, warnings };
        }
    };
    let summary = summarise(&exif, keep_gps, &mut warnings);
    let exif = (summary != ExifSummary::default()).then_some(summary);
    ExifReport { exif, warnings }
}

fn summarise(exif: &Exif, keep_gps: bool, warnings: &mut Vec<String>) -> ExifSummary {
    let field = |tag: Tag| exif.get_field(tag, In::PRIMARY);
    let text = |tag: Tag| field(tag).and_then(ascii_text);
    ExifSummary {
        make: text(Tag::Make),
        model: text(Tag::Model),
        lens_make: text(Tag::LensMake),
        lens_model: text(Tag::LensModel),
        date_time_original: text(Tag::DateTimeOriginal)
            .and_then(|local| capture_time(&local, text(Tag::OffsetTimeOriginal).as_deref(), warnings)),
        orientation: field(Tag::Orientation).and_then(|field| {
            let value = first_unsigned(field).and_then(|v| u8::try_from(v).ok());
            let valid = value.filter(|v| (1..=8).contains(v));
            if valid.is_none() {
                warnings.push(format!("EXIF Orientation {} is not 1..=8", field.display_value()));
            }
            valid
        }),
        exposure_time: field(Tag::ExposureTime).and_then(|field| first_rational(field, warnings)).map(format_exposure),
        f_number: field(Tag::FNumber).and_then(|field| first_ratio(field, warnings)),
        iso: field(Tag::PhotographicSensitivity).and_then(first_unsigned).filter(|&iso| iso > 0),
        focal_length_mm: field(Tag::FocalLength).and_then(|field| first_ratio(field, warnings)),
        gps: if keep_gps { gps_position(exif, warnings) } else { None },
    }
}

/// The first string of an ASCII field, without NULs and surrounding blanks; `None` if empty.
fn ascii_text(field: &Field) -> Option<String> {
    let Value::Ascii(strings) = &field.value else { return None };
    let raw = strings.first()?;
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!text.is_empty()).then(|| text.to_owned())
}

fn first_unsigned(field: &Field) -> Option<u32> {
    match &field.value {
        Value::Byte(values) => values.first().map(|&v| u32::from(v)),
        Value::Short(values) => values.first().map(|&v| u32::from(v)),
        Value::Long(values) => values.first().copied(),
        _ => None,
    }
}

/// A finite, non-negative rational as f64; a warning when the denominator is zero.
fn rational_value(rational: &Rational, tag: Tag, warnings: &mut Vec<String>) -> Option<f64> {
    if rational.denom == 0 {
        warnings.push(format!("EXIF {tag} has a zero denominator"));
        return None;
    }
    Some(f64::from(rational.num) / f64::from(rational.denom))
}

/// The first rational of a field, if it has a non-zero denominator.
fn first_rational(field: &Field, warnings: &mut Vec<String>) -> Option<Rational> {
    let Value::Rational(values) = &field.value else {
        warnings.push(format!("EXIF {} is not a rational number", field.tag));
        return None;
    };
    let rational = values.first()?;
    rational_value(rational, field.tag, warnings)?;
    Some(*rational)
}

fn first_ratio(field: &Field, warnings: &mut Vec<String>) -> Option<f64> {
    first_rational(field, warnings).map(|r| f64::from(r.num) / f64::from(r.denom))
}

/// "1/125" for short exposures, "0.5" or "2" for long ones (as cameras display them).
fn format_exposure(rational: Rational) -> String {
    let (num, denom) = (u64::from(rational.num), u64::from(rational.denom));
    if num == 0 {
        return "0".to_owned();
    }
    let seconds = num as f64 / denom as f64;
    if num < denom && seconds < 0.3 {
        if denom % num == 0 {
            format!("1/{}", denom / num)
        } else {
            format!("1/{}", (denom as f64 / num as f64).round())
        }
    } else {
        // At most one decimal, without a trailing ".0".
        let rounded = (seconds * 10.0).round() / 10.0;
        format!("{rounded}")
    }
}

/// "YYYY:MM:DD HH:MM:SS" → "YYYY-MM-DDTHH:MM:SS", plus a valid "±HH:MM" offset when present.
fn capture_time(local: &str, offset: Option<&str>, warnings: &mut Vec<String>) -> Option<String> {
    let bytes = local.as_bytes();
    let shape_ok = bytes.len() >= 19
        && bytes[..19].iter().enumerate().all(|(index, &b)| match index {
            4 | 7 => b == b':' || b == b'-',
            10 => b == b' ' || b == b'T',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        warnings.push(format!("EXIF DateTimeOriginal {local:?} is not a date"));
        return None;
    }
    // Cameras without a clock write zeros; that is "unknown", not a date.
    if &local[..4] == "0000" || &local[5..7] == "00" || &local[8..10] == "00" {
        return None;
    }
    let mut iso = format!("{}-{}-{}T{}", &local[..4], &local[5..7], &local[8..10], &local[11..19]);
    if let Some(offset) = offset {
        let o = offset.as_bytes();
        let valid = o.len() == 6
            && (o[0] == b'+' || o[0] == b'-')
            && o[1..3].iter().all(u8::is_ascii_digit)
            && o[3] == b':'
            && o[4..6].iter().all(u8::is_ascii_digit);
        if valid {
            iso.push_str(offset);
        } else {
            warnings.push(format!("EXIF OffsetTimeOriginal {offset:?} is not an offset"));
        }
    }
    Some(iso)
}

fn gps_position(exif: &Exif, warnings: &mut Vec<String>) -> Option<GpsPosition> {
    let field = |tag: Tag| exif.get_field(tag, In::PRIMARY);
    let latitude = field(Tag::GPSLatitude)?;
    let longitude = field(Tag::GPSLongitude)?;
    let hemisphere = |tag: Tag| field(tag).and_then(ascii_text);
    let latitude =
        degrees(latitude, warnings)? * if hemisphere(Tag::GPSLatitudeRef).as_deref() == Some("S") { -1.0 } else { 1.0 };
    let longitude = degrees(longitude, warnings)?
        * if hemisphere(Tag::GPSLongitudeRef).as_deref() == Some("W") { -1.0 } else { 1.0 };
    if latitude.abs() > 90.0 || longitude.abs() > 180.0 {
        warnings.push(format!("EXIF GPS position {latitude},{longitude} is out of range"));
        return None;
    }
    let below_sea_level = field(Tag::GPSAltitudeRef).and_then(first_unsigned) == Some(1);
    let altitude_m = field(Tag::GPSAltitude)
        .and_then(|field| first_ratio(field, warnings))
        .map(|metres| if below_sea_level { -metres } else { metres });
    Some(GpsPosition { latitude, longitude, altitude_m })
}

/// Degrees, minutes, seconds → decimal degrees.
fn degrees(field: &Field, warnings: &mut Vec<String>) -> Option<f64> {
    let Value::Rational(parts) = &field.value else {
        warnings.push(format!("EXIF {} is not a list of rationals", field.tag));
        return None;
    };
    if parts.is_empty() || parts.len() > 3 {
        warnings.push(format!("EXIF {} has {} parts instead of 3", field.tag, parts.len()));
        return None;
    }
    let mut total = 0.0;
    for (part, scale) in parts.iter().zip([1.0, 60.0, 3600.0]) {
        total += rational_value(part, field.tag, warnings)? / scale;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_formatting() {
        let r = |num, denom| Rational { num, denom };
        assert_eq!(format_exposure(r(1, 125)), "1/125");
        assert_eq!(format_exposure(r(10, 1250)), "1/125");
        assert_eq!(format_exposure(r(1, 3)), "0.3");
        assert_eq!(format_exposure(r(3, 1000)), "1/333");
        assert_eq!(format_exposure(r(1, 2)), "0.5");
        assert_eq!(format_exposure(r(2, 1)), "2");
        assert_eq!(format_exposure(r(25, 10)), "2.5");
    }

    #[test]
    fn capture_time_formatting() {
        let mut warnings = Vec::new();
        assert_eq!(
            capture_time("2019:05:04 12:00:00", Some("+02:00"), &mut warnings).as_deref(),
            Some("2019-05-04T12:00:00+02:00")
        );
        assert_eq!(capture_time("2019:05:04 12:00:00", None, &mut warnings).as_deref(), Some("2019-05-04T12:00:00"));
        assert!(warnings.is_empty());
        assert_eq!(capture_time("0000:00:00 00:00:00", None, &mut warnings), None);
        assert!(warnings.is_empty(), "an unset clock is not worth a warning");
        assert_eq!(capture_time("yesterday", None, &mut warnings), None);
        assert_eq!(warnings.len(), 1);
        assert_eq!(
            capture_time("2019:05:04 12:00:00", Some("CEST"), &mut warnings).as_deref(),
            Some("2019-05-04T12:00:00")
        );
        assert_eq!(warnings.len(), 2);
    }
}
