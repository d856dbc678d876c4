//! Conversion of RGB renditions to sRGB through the source's embedded ICC profile. Renditions
//! carry no profile, so viewers assume sRGB: a Display P3 or Adobe RGB photo (or the HLG
//! 16-bit PNG of the test corpus) would otherwise look washed out or too bright. Runs on the
//! resized pixels, where it is cheap.

use std::sync::Arc;

use moxcms::{ColorProfile, DataColorSpace, Layout, Transform8BitExecutor, TransformOptions, Xyzd};

use super::pixels::Channels;

pub(crate) struct ToSrgb {
    transform: Arc<Transform8BitExecutor>,
}

impl ToSrgb {
    /// `None` when no conversion is needed (sRGB already, or a profile we cannot use).
    pub fn new(icc: &[u8], channels: Channels) -> Option<ToSrgb> {
        let profile = ColorProfile::new_from_slice(icc).ok()?;
        let layout = match (profile.color_space, channels) {
            (DataColorSpace::Rgb, Channels::Rgb) => Layout::Rgb,
            (DataColorSpace::Rgb, Channels::Rgba) => Layout::Rgba,
            // Gray profiles differ from sRGB only in their curve; not worth a transform.
            _ => return None,
        };
        let srgb = ColorProfile::new_srgb();
        if has_srgb_primaries(&profile, &srgb) {
            return None;
        }
        let transform = profile.create_transform_8bit(layout, &srgb, layout, TransformOptions::default()).ok()?;
        Some(ToSrgb { transform })
    }

    /// The converted pixels (the input unchanged should the transform refuse the buffer).
    pub fn apply(&self, data: &[u8]) -> Vec<u8> {
        let mut out = vec![0; data.len()];
        match self.transform.transform(data, &mut out) {
            Ok(()) => out,
            Err(_) => data.to_vec(),
        }
    }
}

/// Matrix/TRC profiles with the sRGB colorants (the usual "sRGB IEC61966-2.1" and the
/// Google/Apple variants) need no work. Curves are not compared: linear-sRGB photos are rare.
fn has_srgb_primaries(profile: &ColorProfile, srgb: &ColorProfile) -> bool {
    let close =
        |a: &Xyzd, b: &Xyzd| (a.x - b.x).abs() < 0.002 && (a.y - b.y).abs() < 0.002 && (a.z - b.z).abs() < 0.002;
    profile.lut_a_to_b_perceptual.is_none()
        && profile.lut_a_to_b_colorimetric.is_none()
        && close(&profile.red_colorant, &srgb.red_colorant)
        && close(&profile.green_colorant, &srgb.green_colorant)
        && close(&profile.blue_colorant, &srgb.blue_colorant)
}
