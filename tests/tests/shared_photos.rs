//! Every real camera photo in ../shared/images through validate, read-exif and resize on the
//! embedded S3 endpoint, checked against the table in that folder's README (skipped when absent).

use imgflow_steps::StepConfig;
use imgflow_steps::objects::S3Objects;
use imgflow_steps::{read_exif, resize, validate};
use imgflow_tests::{S3Fixture, shared_dir};

/// A row of the README table: file, stored size and EXIF orientation.
struct Photo {
    file: String,
    stored: (u32, u32),
    orientation: u8,
}

fn photos_from_readme(readme: &str) -> Vec<Photo> {
    readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let file = cells.get(1)?;
            if !file.contains('.') || file.contains(' ') {
                return None;
            }
            let size = cells.get(2)?.split_whitespace().next()?;
            let (w, h) = size.split_once('x')?;
            let orientation = cells.get(4)?.split_whitespace().next()?.trim_matches('*').parse().unwrap_or(1);
            Some(Photo { file: file.to_string(), stored: (w.parse().ok()?, h.parse().ok()?), orientation })
        })
        .collect()
}

fn fit(width: u32, height: u32, max: u32) -> (u32, u32) {
    if width <= max && height <= max {
        return (width, height);
    }
    let scale = f64::from(max) / f64::from(width.max(height));
    let w = (f64::from(width) * scale).round().max(1.0) as u32;
    let h = (f64::from(height) * scale).round().max(1.0) as u32;
    (w.min(max), h.min(max))
}

#[tokio::test]
async fn every_shared_photo_goes_through_the_steps() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: ../shared/images is not here");
        return;
    };
    let readme = std::fs::read_to_string(shared.join("images/README.md")).unwrap();
    let photos = photos_from_readme(&readme);
    assert!(photos.len() >= 16, "the README table lists {} photos", photos.len());
    let s3 = S3Fixture::start().await;
    let objects = S3Objects::new(s3.client.clone());
    let config = StepConfig::default();
    for photo in photos {
        let bytes = std::fs::read(shared.join("images").join(&photo.file)).unwrap();
        let event = s3.upload(&format!("uploads/{}", photo.file), bytes).await;
        let image =
            validate::handle(&objects, &config.limits, &event).await.unwrap_or_else(|e| panic!("{}: {e}", photo.file));
        let (w, h) = photo.stored;
        let displayed = if photo.orientation >= 5 { (h, w) } else { (w, h) };
        assert_eq!((image.width, image.height), displayed, "{}", photo.file);
        assert_eq!(image.orientation, photo.orientation, "{}", photo.file);

        let report = read_exif::handle(&objects, config.limits.max_bytes, false, &image).await.unwrap();
        if photo.orientation != 1 {
            let exif = report.exif.as_ref().unwrap_or_else(|| panic!("{}: EXIF expected", photo.file));
            assert_eq!(exif.orientation, Some(photo.orientation), "{}", photo.file);
        }
        assert!(
            report.exif.as_ref().is_none_or(|e| e.gps.is_none()),
            "{}: GPS kept without IMGFLOW_KEEP_GPS",
            photo.file
        );

        let output =
            resize::handle(&objects, &config.limits, &config.renditions, &config.cache_control, &image).await.unwrap();
        for rendition in &output.renditions {
            let max = if rendition.name == "thumb" { 256 } else { 1280 };
            let expected = fit(displayed.0, displayed.1, max);
            let close = rendition.width.abs_diff(expected.0) <= 1 && rendition.height.abs_diff(expected.1) <= 1;
            assert!(
                close,
                "{} {}: {}×{} expected about {:?}",
                photo.file, rendition.name, rendition.width, rendition.height, expected
            );
            let (stored, _, _) = s3.object(&rendition.key).await.unwrap();
            let decoded = image::load_from_memory(&stored).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (rendition.width, rendition.height));
        }
    }
}
