//! The resize step: every configured rendition under `processed/{imageId}/`.

use futures::future::try_join_all;
use imgflow_imaging::{Limits, Rendered, RenditionSpec, render};
use serde::{Deserialize, Serialize};

use crate::cpu_pool;
use crate::error::StepError;
use crate::event::PROCESSED_PREFIX;
use crate::objects::S3Objects;
use crate::validate::ValidatedImage;

/// One stored rendition, as the metadata records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenditionRecord {
    pub name: String,
    pub key: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResizeOutput {
    pub renditions: Vec<RenditionRecord>,
}

/// Where a rendition of an image is stored; re-running the step overwrites the same keys.
pub fn rendition_key(image_id: &str, rendered: &Rendered) -> String {
    format!("{PROCESSED_PREFIX}{image_id}/{}.{}", rendered.name, rendered.format.extension())
}

pub fn record(image_id: &str, rendered: &Rendered) -> RenditionRecord {
    RenditionRecord {
        name: rendered.name.clone(),
        key: rendition_key(image_id, rendered),
        width: rendered.width,
        height: rendered.height,
        bytes: rendered.bytes.len() as u64,
        content_type: rendered.format.content_type().to_owned(),
    }
}

/// The pure part of the step, what the handler runs on the object's bytes: every rendition in
/// `specs`, in their order. `imgflow bench` times exactly this function.
pub fn render_renditions(bytes: &[u8], specs: &[RenditionSpec], limits: &Limits) -> Result<Vec<Rendered>, StepError> {
    Ok(render(bytes, specs, limits)?)
}

/// The Lambda handler: input is validate's output.
pub async fn handle(
    s3: &S3Objects,
    limits: &Limits,
    specs: &[RenditionSpec],
    cache_control: &str,
    image: &ValidatedImage,
) -> Result<ResizeOutput, StepError> {
    let bytes = s3.get(&image.location(), limits.max_bytes).await?;
    // Decoding is CPU-bound: keep it off the async workers, on the threads kept for it.
    let specs_owned = specs.to_vec();
    let limits = *limits;
    let rendered = cpu_pool::run(move || render_renditions(&bytes, &specs_owned, &limits)).await??;
    let uploads = rendered.into_iter().map(|rendition| {
        let record = record(&image.image_id, &rendition);
        async move {
            s3.put(&image.bucket, &record.key, rendition.bytes, &record.content_type, cache_control).await?;
            Ok::<_, StepError>(record)
        }
    });
    Ok(ResizeOutput { renditions: try_join_all(uploads).await? })
}
