//! Renditions: decode once, resize to fit each spec (never upscaling), apply the EXIF
//! orientation, convert to sRGB 8-bit, encode.

mod cmyk;
mod colour;
mod decode;
mod encode;
mod jpeg;
mod orient;
mod pixels;

use std::borrow::Cow;
use std::collections::HashSet;

use fast_image_resize::Resizer;
use serde::{Deserialize, Serialize};

use crate::probe::orientation_swaps_dimensions;
use crate::{ImageError, Limits, probe};
use pixels::{Channels, Decoded, Image8};

/// The encoding of a rendition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RenditionFormat {
    #[default]
    Jpeg,
    Webp,
    Png,
}

impl RenditionFormat {
    /// File extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            RenditionFormat::Jpeg => "jpg",
            RenditionFormat::Webp => "webp",
            RenditionFormat::Png => "png",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            RenditionFormat::Jpeg => "image/jpeg",
            RenditionFormat::Webp => "image/webp",
            RenditionFormat::Png => "image/png",
        }
    }
}

fn default_quality() -> u8 {
    80
}

/// One configured rendition: a name (used in the object key), the box it must fit in, and
/// its encoding. `quality` applies to JPEG and WebP (1..=100); PNG is lossless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenditionSpec {
    pub name: String,
    pub max_width: u32,
    pub max_height: u32,
    #[serde(default)]
    pub format: RenditionFormat,
    #[serde(default = "default_quality")]
    pub quality: u8,
}

impl RenditionSpec {
    /// `thumb` fitting 256×256 and `medium` fitting 1280×1280, JPEG quality 80.
    pub fn defaults() -> Vec<RenditionSpec> {
        [("thumb", 256), ("medium", 1280)]
            .into_iter()
            .map(|(name, size)| RenditionSpec {
                name: name.to_owned(),
                max_width: size,
                max_height: size,
                format: RenditionFormat::Jpeg,
                quality: default_quality(),
            })
            .collect()
    }

    /// Parses and validates a JSON list (the `IMGFLOW_RENDITIONS` setting), e.g.
    /// `[{"name":"thumb","maxWidth":256,"maxHeight":256,"format":"webp","quality":75}]`.
    pub fn parse_list(json: &str) -> Result<Vec<RenditionSpec>, String> {
        let specs: Vec<RenditionSpec> = serde_json::from_str(json).map_err(|error| format!("renditions: {error}"))?;
        if specs.is_empty() {
            return Err("renditions: the list is empty".to_owned());
        }
        let mut names = HashSet::new();
        for spec in &specs {
            spec.validate()?;
            if !names.insert(spec.name.as_str()) {
                return Err(format!("renditions: the name {:?} is used twice", spec.name));
            }
        }
        Ok(specs)
    }

    /// Checks one spec: name `[a-z0-9_-]{1,32}`, non-zero box, quality 1..=100.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = (1..=32).contains(&self.name.len())
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(format!("renditions: name {:?} must be 1 to 32 characters of a-z, 0-9, _ or -", self.name));
        }
        if self.max_width == 0 || self.max_height == 0 {
            return Err(format!("renditions: {} must have a non-zero maxWidth and maxHeight", self.name));
        }
        if !(1..=100).contains(&self.quality) {
            return Err(format!("renditions: {} has quality {}, expected 1 to 100", self.name, self.quality));
        }
        Ok(())
    }

    /// The size of this rendition for an image displayed at `width`×`height`: the largest
    /// size with the same aspect ratio inside the box, never larger than the image, at least
    /// 1×1.
    pub fn fitted_size(&self, width: u32, height: u32) -> (u32, u32) {
        let (max_width, max_height) = (self.max_width.max(1), self.max_height.max(1));
        if width <= max_width && height <= max_height {
            return (width.max(1), height.max(1));
        }
        let (w, h) = (u64::from(width), u64::from(height));
        let (box_w, box_h) = (u64::from(max_width), u64::from(max_height));
        if w * box_h >= h * box_w {
            let fitted = ((h * box_w + w / 2) / w).clamp(1, box_h);
            (max_width, fitted as u32)
        } else {
            let fitted = ((w * box_h + h / 2) / h).clamp(1, box_w);
            (fitted as u32, max_height)
        }
    }
}

/// One encoded rendition.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    pub name: String,
    pub format: RenditionFormat,
    /// Displayed size (after orientation).
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .finish()
    }
}

/// Renders every spec from one decode of `bytes`, in the order of `specs`. The probe's checks
/// (limits, format, integrity) run first, so nothing is decoded for a refused image.
pub fn render(bytes: &[u8], specs: &[RenditionSpec], limits: &Limits) -> Result<Vec<Rendered>, ImageError> {
    let probe = probe(bytes, limits)?;
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let swapped = orientation_swaps_dimensions(probe.orientation);
    // Renditions are sized at displayed size; resizing happens in stored orientation.
    let stored_size = |index: usize| {
        let (width, height) = specs[index].fitted_size(probe.width, probe.height);
        if swapped { (height, width) } else { (width, height) }
    };
    let needed = (0..specs.len()).map(stored_size).fold((1, 1), |(w, h), (sw, sh)| (w.max(sw), h.max(sh)));
    let (source, icc) = decode::decode(bytes, &probe, needed)?;
    let to_srgb = icc.as_deref().and_then(|icc| colour::ToSrgb::new(icc, source.channels));
    let mut resizer = Resizer::new();

    // Largest first, so that smaller renditions can be made from a larger one.
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by_key(|&index| {
        let (width, height) = stored_size(index);
        std::cmp::Reverse(u64::from(width) * u64::from(height))
    });

    let mut made: Vec<Image8<'_>> = Vec::with_capacity(specs.len());
    let mut rendered: Vec<Option<Rendered>> = vec![None; specs.len()];
    for index in order {
        let spec = &specs[index];
        // Orientation is applied to the small result (see `orient`).
        let resized = resize_from_best(&source, &made, stored_size(index), &mut resizer)?;
        rendered[index] = Some(finish(&resized, spec, probe.orientation, to_srgb.as_ref())?);
        made.push(resized);
    }
    Ok(rendered.into_iter().flatten().collect())
}

/// A smaller rendition is resampled from an earlier, larger one when that one is still at
/// least twice its size (no visible loss, a fraction of the work); otherwise from the source.
fn resize_from_best<'s>(
    source: &'s Decoded,
    made: &[Image8<'s>],
    (width, height): (u32, u32),
    resizer: &mut Resizer,
) -> Result<Image8<'s>, ImageError> {
    if (width, height) == (source.width, source.height) {
        return Ok(source.to_eight_bit());
    }
    let intermediate = made
        .iter()
        .filter(|image| image.width >= 2 * width && image.height >= 2 * height)
        .min_by_key(|image| u64::from(image.width) * u64::from(image.height));
    let (data, channels) = match intermediate {
        Some(image) => (image.resample((width, height), resizer)?, image.channels),
        None => (source.resample((width, height), resizer)?, source.channels),
    };
    Ok(Image8 { width, height, channels, data: Cow::Owned(data) })
}

/// Colour conversion, the channel layout the format wants, orientation, encoding.
fn finish(
    resized: &Image8<'_>,
    spec: &RenditionSpec,
    orientation: u8,
    to_srgb: Option<&colour::ToSrgb>,
) -> Result<Rendered, ImageError> {
    let converted = match to_srgb {
        Some(transform) => Cow::Owned(transform.apply(&resized.data)),
        None => Cow::Borrowed(resized.data.as_ref()),
    };
    let (data, channels) = match spec.format {
        RenditionFormat::Jpeg => flatten_for_jpeg(&converted, resized.channels),
        RenditionFormat::Webp => expand_for_webp(&converted, resized.channels),
        RenditionFormat::Png => (converted, resized.channels),
    };
    let (data, width, height) = if orientation == 1 {
        (data, resized.width as usize, resized.height as usize)
    } else {
        let (data, width, height) =
            orient::apply(&data, resized.width as usize, resized.height as usize, channels, orientation);
        (Cow::Owned(data), width, height)
    };
    let (width, height) = (width as u32, height as u32);
    let bytes = match spec.format {
        RenditionFormat::Jpeg => encode::jpeg(&data, width, height, channels, spec.quality)?,
        RenditionFormat::Webp => encode::webp(&data, width, height, channels, spec.quality)?,
        RenditionFormat::Png => encode::png(&data, width, height, channels)?,
    };
    Ok(Rendered { name: spec.name.clone(), format: spec.format, width, height, bytes })
}

/// JPEG has no alpha: composite onto white.
fn flatten_for_jpeg(data: &[u8], channels: Channels) -> (Cow<'_, [u8]>, Channels) {
    let over_white = |colour: u8, alpha: u8| -> u8 {
        let (c, a) = (u32::from(colour), u32::from(alpha));
        ((c * a + 255 * (255 - a) + 127) / 255) as u8
    };
    match channels {
        Channels::Gray | Channels::Rgb => (Cow::Borrowed(data), channels),
        Channels::GrayAlpha => {
            (Cow::Owned(data.chunks_exact(2).map(|p| over_white(p[0], p[1])).collect()), Channels::Gray)
        }
        Channels::Rgba => (
            Cow::Owned(
                data.chunks_exact(4)
                    .flat_map(|p| [over_white(p[0], p[3]), over_white(p[1], p[3]), over_white(p[2], p[3])])
                    .collect(),
            ),
            Channels::Rgb,
        ),
    }
}

/// libwebp takes RGB or RGBA only.
fn expand_for_webp(data: &[u8], channels: Channels) -> (Cow<'_, [u8]>, Channels) {
    match channels {
        Channels::Rgb | Channels::Rgba => (Cow::Borrowed(data), channels),
        Channels::Gray => (Cow::Owned(data.iter().flat_map(|&v| [v, v, v]).collect()), Channels::Rgb),
        Channels::GrayAlpha => {
            (Cow::Owned(data.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect()), Channels::Rgba)
        }
    }
}
