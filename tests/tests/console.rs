//! The console in headless Chromium against a real twin (`TestTwin`: `Twin::start` in a
//! temporary folder, retry delays taking no time), driven by `tests/console/drive.mjs` (playwright-core):
//! - upload a photo through the page's file picker, watch its execution turn SUCCEEDED and its
//!   graph colour in, open its events and its image page;
//! - on a twin whose resize step fails past its retries (`resize=TransientError*6`), open the
//!   FAILED execution from the list, press Redrive, watch it succeed.
//!
//! What the browser saw is checked here, and the outcome again through the Step Functions API.
//! Screenshots go to `target/console-screenshots/`. Needs Node.js, Debian's `chromium` and
//! playwright-core under `$IMGFLOW_TOOLS/playwright` (scripts/test installs them): without them
//! the test fails and says how to install them. Skipped when ../shared/images is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_sfn::types::ExecutionStatus;
use imgflow_tests::shared_dir;
use imgflow_tests::twin::TestTwin;
use serde_json::Value;

/// A camera photo with EXIF (orientation 6), under 1 MB.
const PHOTO: &str = "canon_sx60_orient6.jpg";

fn tools_dir() -> PathBuf {
    match std::env::var_os("IMGFLOW_TOOLS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/imgflow-tools"),
    }
}

fn chromium_path() -> PathBuf {
    std::env::var_os("IMGFLOW_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Why the browser test cannot run here, with how to fix it; `None` when it can.
fn missing_browser_tools() -> Option<String> {
    let mut missing = Vec::new();
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("Node.js (apt-get install nodejs npm)".to_owned());
    }
    if !chromium_path().exists() {
        missing.push(format!(
            "Chromium at {} (apt-get install chromium, or set IMGFLOW_CHROMIUM)",
            chromium_path().display()
        ));
    }
    let playwright = tools_dir().join("playwright");
    if !playwright.join("node_modules/playwright-core").is_dir() {
        missing.push(format!("playwright-core (npm install --prefix {} playwright-core@1.65.1)", playwright.display()));
    }
    (!missing.is_empty()).then(|| format!("the console test needs {}; scripts/test installs them", missing.join(", ")))
}

fn screenshots_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`: the screenshots go next to it.
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("the target dir").join("console-screenshots")
}

/// Runs one scenario of drive.mjs (blocking, off the runtime that serves the twin) and returns
/// what it saw; fails the test with the driver's reason when a step did not happen.
async fn drive(scenario: &'static str, url: String, photo: PathBuf) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/console/drive.mjs");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(scenario)
            .args(["--url", &url, "--screenshots"])
            .arg(screenshots_dir())
            .arg("--photo")
            .arg(photo)
            .env("IMGFLOW_TOOLS", tools_dir())
            .env("IMGFLOW_CHROMIUM", chromium_path())
            .output()
    })
    .await
    .expect("the driver thread")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let seen: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("{scenario}: the driver printed no result\nstdout: {stdout}\nstderr: {stderr}"));
    for shot in seen["screenshots"].as_array().into_iter().flatten() {
        println!("screenshot: {}", shot.as_str().unwrap_or_default());
    }
    assert!(output.status.success(), "{scenario}: {stderr}\nsaw: {seen:#}");
    assert_eq!(seen["pageErrors"], serde_json::json!([]), "{scenario}: the page logged errors");
    seen
}

fn photo() -> Option<PathBuf> {
    let Some(shared) = shared_dir() else {
        println!("skipped: ../shared/images is absent");
        return None;
    };
    let photo = shared.join("images").join(PHOTO);
    if !photo.is_file() {
        println!("skipped: {} is absent", photo.display());
        return None;
    }
    Some(photo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_through_the_page_succeeds_and_its_graph_colours_in() {
    let Some(photo) = photo() else { return };
    if let Some(reason) = missing_browser_tools() {
        panic!("{reason}");
    }
    let twin = TestTwin::start("").await;

    let seen = drive("upload", twin.url(), photo).await;

    assert_eq!(seen["imageStatus"], "SUCCEEDED", "{seen:#}");
    assert_eq!(seen["executionStatus"], "SUCCEEDED");
    for state in ["Validate", "Analyse", "ReadExif", "Resize", "WriteMetadata"] {
        assert_eq!(seen["states"][state], "succeeded", "{state} in {:#}", seen["states"]);
    }
    for state in ["RecordRejected", "Rejected"] {
        assert_eq!(seen["states"][state], "not-reached", "{state} in {:#}", seen["states"]);
    }
    assert!(seen["resizeOutput"].as_str().unwrap_or_default().contains("renditions"), "{seen:#}");
    let pictures: Vec<&str> =
        seen["pictures"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap_or_default()).collect();
    assert_eq!(pictures, ["thumb", "medium", "original"], "{seen:#}");
    assert!(seen["pictures"].as_array().unwrap().iter().all(|p| p["width"].as_u64() > Some(0)));
    assert!(seen["exif"].as_str().unwrap_or_default().contains("Canon"), "{seen:#}");

    let described = twin
        .sfn()
        .describe_execution()
        .execution_arn(seen["executionArn"].as_str().unwrap())
        .send()
        .await
        .expect("DescribeExecution");
    assert_eq!(described.status(), &ExecutionStatus::Succeeded);
    twin.twin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_execution_is_redriven_from_the_page() {
    let Some(photo) = photo() else { return };
    if let Some(reason) = missing_browser_tools() {
        panic!("{reason}");
    }
    let twin = TestTwin::start("resize=TransientError*6").await;

    let seen = drive("redrive", twin.url(), photo).await;

    let failed = &seen["failedStates"];
    assert_eq!(failed["Resize"], "failed", "{failed:#}");
    assert_eq!(failed["Analyse"], "failed", "{failed:#}");
    assert_eq!(failed["Validate"], "succeeded", "{failed:#}");
    assert_eq!(failed["WriteMetadata"], "not-reached", "{failed:#}");
    assert!(seen["failure"].as_str().unwrap_or_default().contains("TransientError"), "{seen:#}");
    let redriven = &seen["redrivenStates"];
    assert_eq!(redriven["Resize"], "retried", "{redriven:#}");
    assert_eq!(redriven["WriteMetadata"], "succeeded", "{redriven:#}");
    assert_eq!(seen["redriveDisabledAfter"], true, "a SUCCEEDED execution is not redrivable");

    let described = twin
        .sfn()
        .describe_execution()
        .execution_arn(seen["executionArn"].as_str().unwrap())
        .send()
        .await
        .expect("DescribeExecution");
    assert_eq!(described.status(), &ExecutionStatus::Succeeded);
    assert_eq!(described.redrive_count(), Some(1));
    twin.twin.shutdown().await;
}
