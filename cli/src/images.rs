//! `imgflow images get|list`: the metadata items of processed images.

use anyhow::Result;
use clap::{Args, Subcommand};
use imgflow_steps::metadata::ImageStatus;
use serde_json::{Value, json};

use crate::client::{Backend, ClientArgs, ImageStatusArg, OutputFormat};
use crate::table;

#[derive(Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    command: ImagesCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// One image: status, format, size, EXIF, renditions, and the error when not SUCCEEDED.
    Get {
        /// The imageId `upload` printed.
        image_id: String,
    },
    /// Images, newest upload first.
    List {
        /// Only images in this status.
        #[arg(long, value_enum, ignore_case = true)]
        status: Option<ImageStatusArg>,
        /// At most this many images.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
    },
}

pub async fn run(args: ImagesArgs) -> Result<u8> {
    let backend = Backend::connect(&args.client).await?;
    let output = args.client.output;
    match args.command {
        ImagesCommand::Get { image_id } => {
            let Some(item) = backend.images.image(&image_id).await? else {
                eprintln!("no image {image_id} at {} (or it is still being processed)", backend.description);
                return Ok(1);
            };
            match output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&item)?),
                OutputFormat::Table => print!("{}", image_details(&item)),
            }
            Ok(0)
        }
        ImagesCommand::List { status, limit } => {
            let status = status.map(ImageStatus::from);
            let mut items = Vec::new();
            let mut next_token = None;
            // Pages until `limit` items, or the end.
            loop {
                let wanted = limit - u32::try_from(items.len()).unwrap_or(limit);
                let page = backend.images.list_images(status, wanted.min(1000), next_token).await?;
                items.extend(page.items);
                next_token = page.next_token;
                if next_token.is_none() || items.len() >= limit as usize {
                    break;
                }
            }
            items.truncate(limit as usize);
            match output {
                OutputFormat::Json => {
                    let mut answer = json!({"items": items});
                    if let Some(token) = next_token {
                        answer["nextToken"] = Value::String(token);
                    }
                    println!("{}", serde_json::to_string_pretty(&answer)?);
                }
                OutputFormat::Table => print!("{}", image_table(&items)),
            }
            Ok(0)
        }
    }
}

fn text(item: &Value, pointer: &str) -> Option<String> {
    match item.pointer(pointer)? {
        Value::String(text) => Some(text.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// `4032×3024`, when both are known.
fn dimensions(item: &Value) -> Option<String> {
    Some(format!("{}×{}", item.get("width")?.as_u64()?, item.get("height")?.as_u64()?))
}

fn image_table(items: &[Value]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            let renditions = item.get("renditions").and_then(Value::as_array).map_or(0, Vec::len);
            let problem = match (text(item, "/error"), text(item, "/cause")) {
                (Some(error), Some(cause)) => format!("{error}: {}", table::shorten(&cause, 80)),
                (Some(error), None) => error,
                _ => String::new(),
            };
            vec![
                text(item, "/imageId").unwrap_or_default(),
                text(item, "/status").unwrap_or_default(),
                text(item, "/format").unwrap_or_else(|| "-".into()),
                dimensions(item).unwrap_or_else(|| "-".into()),
                text(item, "/uploadedAt").unwrap_or_default(),
                renditions.to_string(),
                problem,
            ]
        })
        .collect();
    table::render(&["IMAGE ID", "STATUS", "FORMAT", "SIZE", "UPLOADED", "RENDITIONS", "ERROR"], &rows)
}

fn image_details(item: &Value) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    let mut add = |label, value: Option<String>| {
        if let Some(value) = value {
            fields.push((label, value));
        }
    };
    add("Image", text(item, "/imageId"));
    add("Status", text(item, "/status"));
    add("Object", text(item, "/bucket").zip(text(item, "/key")).map(|(bucket, key)| format!("s3://{bucket}/{key}")));
    add("Original", text(item, "/originalUrl"));
    add("Format", text(item, "/format"));
    add("Size", dimensions(item));
    add("Bytes", text(item, "/bytes"));
    add("SHA-256", text(item, "/sha256"));
    add("Uploaded", text(item, "/uploadedAt"));
    add("Processed", text(item, "/processedAt"));
    // Models often repeat the make ("Canon" + "Canon PowerShot SX60 HS").
    let camera = match (text(item, "/exif/make"), text(item, "/exif/model")) {
        (Some(make), Some(model)) if model.starts_with(&make) => Some(model),
        (Some(make), Some(model)) => Some(format!("{make} {model}")),
        (make, model) => make.or(model),
    };
    add("Camera", camera);
    add("Lens", text(item, "/exif/lensModel"));
    add("Taken", text(item, "/exif/dateTimeOriginal"));
    add("Orientation", text(item, "/exif/orientation"));
    let exposure = [
        text(item, "/exif/exposureTime").map(|t| format!("{t} s")),
        text(item, "/exif/fNumber").map(|f| format!("f/{f}")),
        text(item, "/exif/iso").map(|iso| format!("ISO {iso}")),
        text(item, "/exif/focalLengthMm").map(|mm| format!("{mm} mm")),
    ];
    let exposure: Vec<String> = exposure.into_iter().flatten().collect();
    add("Exposure", (!exposure.is_empty()).then(|| exposure.join(", ")));
    add(
        "GPS",
        text(item, "/exif/gps/latitude")
            .zip(text(item, "/exif/gps/longitude"))
            .map(|(lat, lon)| format!("{lat}, {lon}")),
    );
    add("Execution", text(item, "/executionArn"));
    add("Failed in", text(item, "/failedState"));
    add("Error", text(item, "/error"));
    add("Cause", text(item, "/cause"));
    if let Some(warnings) = item.get("warnings").and_then(Value::as_array).filter(|w| !w.is_empty()) {
        add("Warnings", Some(warnings.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")));
    }
    let mut out = table::fields(&fields);
    if let Some(renditions) = item.get("renditions").and_then(Value::as_array).filter(|r| !r.is_empty()) {
        let rows: Vec<Vec<String>> = renditions
            .iter()
            .map(|rendition| {
                vec![
                    text(rendition, "/name").unwrap_or_default(),
                    dimensions(rendition).unwrap_or_default(),
                    text(rendition, "/bytes").unwrap_or_default(),
                    text(rendition, "/url").unwrap_or_default(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table::render(&["RENDITION", "SIZE", "BYTES", "URL"], &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_show_what_the_item_has() {
        let item = json!({
            "imageId": "abc", "status": "SUCCEEDED", "bucket": "images", "key": "uploads/abc",
            "format": "jpeg", "width": 4032, "height": 3024, "bytes": 123456,
            "exif": {"make": "Canon", "model": "EOS 5D", "fNumber": 2.8, "iso": 200},
            "renditions": [{"name": "thumb", "width": 256, "height": 192, "bytes": 9000,
                             "url": "http://127.0.0.1:4566/images/processed/abc/thumb.jpg"}]
        });
        let shown = image_details(&item);
        assert!(shown.contains("Object    s3://images/uploads/abc\n"), "{shown}");
        assert!(shown.contains("Size      4032×3024\n"), "{shown}");
        assert!(shown.contains("Camera    Canon EOS 5D\n"), "{shown}");
        assert!(shown.contains("Exposure  f/2.8, ISO 200\n"), "{shown}");
        assert!(
            shown.contains("thumb      256×192  9000   http://127.0.0.1:4566/images/processed/abc/thumb.jpg"),
            "{shown}"
        );
        assert!(!shown.contains("Error"), "{shown}");
    }

    #[test]
    fn the_list_shows_errors_and_placeholders() {
        let items = vec![json!({"imageId": "x", "status": "REJECTED", "uploadedAt": "2026-11-26T00:00:00Z",
            "error": "InvalidImage", "cause": "truncated JPEG"})];
        let shown = image_table(&items);
        assert!(
            shown.lines().nth(1).unwrap().starts_with(
                "x         REJECTED  -       -     2026-11-26T00:00:00Z  0           InvalidImage: truncated JPEG"
            ),
            "{shown}"
        );
    }
}
