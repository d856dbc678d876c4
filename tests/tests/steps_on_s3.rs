//! The validate, read-exif and resize handlers against the embedded S3 endpoint (real protocol).

use imgflow_imaging::{ImageFormat, Limits, RenditionSpec};
use imgflow_steps::StepConfig;
use imgflow_steps::objects::S3Objects;
use imgflow_steps::{read_exif, resize, validate};
use imgflow_tests::{S3Fixture, fixtures};

fn config() -> StepConfig {
    StepConfig::default()
}

#[tokio::test]
async fn validate_reads_the_object_the_event_names_with_a_tricky_key() {
    let s3 = S3Fixture::start().await;
    let key = "uploads/a b+c(1)é.jpg";
    let bytes = fixtures::jpeg(640, 480);
    let event = s3.upload(key, bytes.clone()).await;
    assert_eq!(event.detail.object.key, "uploads/a+b%2Bc%281%29%C3%A9.jpg");
    let image = validate::handle(&S3Objects::new(s3.client.clone()), &config().limits, &event).await.unwrap();
    assert_eq!(image.key, key);
    assert_eq!(image.bucket, "images");
    assert_eq!(image.format, ImageFormat::Jpeg);
    assert_eq!(image.content_type, "image/jpeg");
    assert_eq!((image.width, image.height), (640, 480));
    assert_eq!(image.bytes, bytes.len() as u64);
    assert_eq!(image.sha256.len(), 64);
    assert!(image.image_id.starts_with("k-"), "{}", image.image_id);
}

#[tokio::test]
async fn validate_names_every_permanent_error() {
    let s3 = S3Fixture::start().await;
    let objects = S3Objects::new(s3.client.clone());
    let limits = Limits::default();
    let jpeg = fixtures::jpeg(64, 64);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("uploads/truncated", jpeg[..jpeg.len() / 2].to_vec(), "InvalidImage"),
        ("uploads/pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n".to_vec(), "UnsupportedFormat"),
        ("uploads/bomb", fixtures::png_claiming(100_000, 100_000), "ImageTooLarge"),
    ];
    for (key, bytes, expected) in cases {
        let event = s3.upload(key, bytes).await;
        let error = validate::handle(&objects, &limits, &event).await.unwrap_err();
        assert_eq!(error.asl_name(), expected, "{key}: {error}");
    }
    // Over the byte limit: refused from the event's size, before the body is read.
    let event = s3.upload("uploads/big", fixtures::jpeg(64, 64)).await;
    let small = Limits { max_bytes: 100, ..limits };
    assert_eq!(validate::handle(&objects, &small, &event).await.unwrap_err().asl_name(), "ImageTooLarge");
    // Gone before validate ran.
    s3.client.delete_object().bucket(&s3.bucket).key("uploads/big").send().await.unwrap();
    let error = validate::handle(&objects, &limits, &event).await.unwrap_err();
    assert_eq!(error.asl_name(), "ObjectNotFound", "{error}");
}

#[tokio::test]
async fn an_unreachable_s3_is_a_transient_error() {
    let s3 = S3Fixture::start().await;
    let event = s3.upload("uploads/x", fixtures::jpeg(32, 32)).await;
    let client = s3.client.clone();
    drop(s3);
    let error = validate::handle(&S3Objects::new(client), &Limits::default(), &event).await.unwrap_err();
    assert_eq!(error.asl_name(), "TransientError", "{error}");
}

#[tokio::test]
async fn read_exif_without_exif_is_null_not_an_error() {
    let s3 = S3Fixture::start().await;
    let objects = S3Objects::new(s3.client.clone());
    let event = s3.upload("uploads/plain", fixtures::png(40, 30)).await;
    let image = validate::handle(&objects, &config().limits, &event).await.unwrap();
    let report = read_exif::handle(&objects, config().limits.max_bytes, false, &image).await.unwrap();
    assert!(report.exif.is_none());
    assert_eq!(serde_json::to_value(&report).unwrap()["exif"], serde_json::Value::Null);
}

#[tokio::test]
async fn resize_stores_every_rendition_and_reruns_overwrite_them() {
    let s3 = S3Fixture::start().await;
    let objects = S3Objects::new(s3.client.clone());
    let event = s3.upload("uploads/photo-1", fixtures::jpeg(2000, 1000)).await;
    let cfg = config();
    let image = validate::handle(&objects, &cfg.limits, &event).await.unwrap();
    assert_eq!(image.image_id, "photo-1");
    let first = resize::handle(&objects, &cfg.limits, &cfg.renditions, &cfg.cache_control, &image).await.unwrap();
    let sizes: Vec<(&str, &str, u32, u32)> =
        first.renditions.iter().map(|r| (r.name.as_str(), r.key.as_str(), r.width, r.height)).collect();
    assert_eq!(
        sizes,
        vec![("thumb", "processed/photo-1/thumb.jpg", 256, 128), ("medium", "processed/photo-1/medium.jpg", 1280, 640)]
    );
    for rendition in &first.renditions {
        let (bytes, content_type, cache_control) = s3.object(&rendition.key).await.expect("stored");
        assert_eq!(bytes.len() as u64, rendition.bytes);
        assert_eq!(content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(cache_control.as_deref(), Some(cfg.cache_control.as_str()));
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (rendition.width, rendition.height));
    }
    let again = resize::handle(&objects, &cfg.limits, &cfg.renditions, &cfg.cache_control, &image).await.unwrap();
    assert_eq!(again, first);
    let listed = s3.client.list_objects_v2().bucket(&s3.bucket).prefix("processed/").send().await.unwrap();
    assert_eq!(listed.contents().len(), 2);
}

#[tokio::test]
async fn configured_renditions_never_upscale() {
    let s3 = S3Fixture::start().await;
    let objects = S3Objects::new(s3.client.clone());
    let event = s3.upload("uploads/small", fixtures::jpeg(300, 200)).await;
    let specs = RenditionSpec::parse_list(
        r#"[{"name":"tiny","maxWidth":30,"maxHeight":30,"format":"png"},{"name":"big","maxWidth":4000,"maxHeight":4000,"format":"webp","quality":70}]"#,
    )
    .unwrap();
    let limits = Limits::default();
    let image = validate::handle(&objects, &limits, &event).await.unwrap();
    let output = resize::handle(&objects, &limits, &specs, "no-cache", &image).await.unwrap();
    let got: Vec<(&str, &str, u32, u32)> =
        output.renditions.iter().map(|r| (r.key.as_str(), r.content_type.as_str(), r.width, r.height)).collect();
    assert_eq!(
        got,
        vec![("processed/small/tiny.png", "image/png", 30, 20), ("processed/small/big.webp", "image/webp", 300, 200)]
    );
}
