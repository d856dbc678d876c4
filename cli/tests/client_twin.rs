//! The client commands against a real twin (`imgflow_local::twin::Twin` in a temporary folder,
//! on a free port, retry delays taking no time), through the built `imgflow` binary.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use imgflow_tests::fixtures;
use imgflow_tests::twin::TestTwin;
use serde_json::Value;
use support::{field, imgflow, run};

/// `imgflow ARGS… --endpoint <the twin>`.
fn imgflow_at(twin: &TestTwin, args: &[&str]) -> Command {
    let mut command = imgflow();
    command.args(args).args(["--endpoint", &twin.url()]);
    command
}

/// A JPEG cut short: its magic bytes say JPEG, its data does not decode.
fn truncated_jpeg() -> Vec<u8> {
    let mut bytes = fixtures::jpeg(64, 64);
    bytes.truncate(200);
    bytes
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The upload outcome of the file whose path ends with `name`.
fn uploaded<'a>(outcomes: &'a Value, name: &str) -> &'a Value {
    outcomes
        .as_array()
        .expect("an array of outcomes")
        .iter()
        .find(|o| o["path"].as_str().is_some_and(|p| p.ends_with(name)))
        .unwrap_or_else(|| panic!("no outcome for {name} in {outcomes}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_against_the_twin() {
    let twin = TestTwin::start("").await;
    let folder = tempfile::tempdir().unwrap();
    write(folder.path(), "a.jpg", &fixtures::jpeg(640, 480));
    write(folder.path(), "b.png", &fixtures::png(300, 200));
    write(folder.path(), "nested/c.JPG", &fixtures::jpeg(320, 240));
    write(folder.path(), "broken.jpg", &truncated_jpeg());
    let notes = write(folder.path(), "notes.txt", b"not an image");
    let folder_arg = folder.path().to_str().unwrap();

    // upload: a folder (walked for images), waiting for the outcome of each.
    let uploads = run(imgflow_at(&twin, &["upload", folder_arg, "--wait", "--output", "json"])).await.expect_code(1);
    let outcomes = uploads.json();
    assert_eq!(outcomes.as_array().unwrap().len(), 4, "notes.txt is not walked into: {outcomes}");
    for name in ["a.jpg", "b.png", "c.JPG"] {
        assert_eq!(uploaded(&outcomes, name)["status"], "SUCCEEDED", "{outcomes}");
    }
    let broken = uploaded(&outcomes, "broken.jpg");
    assert_eq!(broken["status"], "REJECTED", "{outcomes}");
    assert!(uploads.stderr.contains("4 of 4 uploaded, 3 processed successfully"), "{}", uploads.stderr);
    let a_id = uploaded(&outcomes, "a.jpg")["imageId"].as_str().unwrap().to_owned();
    let broken_id = broken["imageId"].as_str().unwrap().to_owned();
    let broken_execution = broken["executionArn"].as_str().unwrap().to_owned();

    // upload without --wait: the table of image ids; a named non-image fails the command.
    let table =
        run(imgflow_at(&twin, &["upload", notes.to_str().unwrap(), folder.path().join("a.jpg").to_str().unwrap()]))
            .await
            .expect_code(1);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("FILE") && lines[0].contains("IMAGE ID"), "{}", table.stdout);
    assert!(lines[1].contains("notes.txt") && lines[1].contains("is not an image"), "{}", table.stdout);
    assert!(lines[2].ends_with("accepted"), "{}", table.stdout);
    let second_upload = lines[2].split_whitespace().nth(1).expect("an image id");
    twin.wait_for_image(second_upload).await;

    // images get: the metadata, the renditions with their URLs.
    let shown = run(imgflow_at(&twin, &["images", "get", &a_id])).await.expect_code(0);
    assert_eq!(field(&shown.stdout, "Status"), Some("SUCCEEDED"), "{}", shown.stdout);
    assert_eq!(field(&shown.stdout, "Size"), Some("640×480"), "{}", shown.stdout);
    for expected in ["RENDITION", "thumb", "medium"] {
        assert!(shown.stdout.contains(expected), "{expected:?} in\n{}", shown.stdout);
    }
    let item = run(imgflow_at(&twin, &["images", "get", &a_id, "--output", "json"])).await.expect_code(0).json();
    assert_eq!(item["imageId"], a_id.as_str());
    let thumb_url = item["renditions"][0]["url"].as_str().expect("a rendition URL");
    let (status, bytes) = twin.fetch(thumb_url).await;
    assert_eq!((status, &bytes[..3]), (200, &[0xFF, 0xD8, 0xFF][..]), "{thumb_url} serves a JPEG");
    let rejected = run(imgflow_at(&twin, &["images", "get", &broken_id])).await.expect_code(0);
    assert_eq!(field(&rejected.stdout, "Error"), Some("InvalidImage"), "{}", rejected.stdout);
    let missing = run(imgflow_at(&twin, &["images", "get", "no-such-image"])).await.expect_code(1);
    assert!(missing.stderr.contains("no image no-such-image"), "{}", missing.stderr);

    // images list: by status, newest first, and a limit.
    let listed =
        run(imgflow_at(&twin, &["images", "list", "--status", "rejected", "--output", "json"])).await.expect_code(0);
    let ids: Vec<Value> = listed.json()["items"].as_array().unwrap().iter().map(|i| i["imageId"].clone()).collect();
    assert_eq!(ids, [Value::String(broken_id.clone())]);
    let all = run(imgflow_at(&twin, &["images", "list"])).await.expect_code(0);
    assert_eq!(all.stdout.lines().count(), 1 + 5, "a header and five images (a.jpg twice):\n{}", all.stdout);
    let two =
        run(imgflow_at(&twin, &["images", "list", "--limit", "2", "--output", "json"])).await.expect_code(0).json();
    assert_eq!(two["items"].as_array().unwrap().len(), 2);

    // executions list: every upload started one.
    let executions = run(imgflow_at(&twin, &["executions", "list", "--output", "json"])).await.expect_code(0).json();
    let executions = executions.as_array().unwrap();
    assert_eq!(executions.len(), 5, "{executions:?}");
    let failed =
        run(imgflow_at(&twin, &["executions", "list", "--status", "FAILED", "--since", "10m"])).await.expect_code(0);
    assert_eq!(failed.stdout.lines().count(), 2, "only the rejected upload failed:\n{}", failed.stdout);
    let ancient =
        run(imgflow_at(&twin, &["executions", "list", "--since", "1ms", "--output", "json"])).await.expect_code(0);
    assert_eq!(ancient.json(), Value::Array(vec![]), "nothing started within the last millisecond");

    // executions show: a rejected upload fails in the Fail state, with the error and cause.
    let shown = run(imgflow_at(&twin, &["executions", "show", &broken_execution])).await.expect_code(0);
    assert_eq!(field(&shown.stdout, "Status"), Some("FAILED"), "{}", shown.stdout);
    assert_eq!(field(&shown.stdout, "Failed in"), Some("Rejected"), "{}", shown.stdout);
    assert_eq!(
        field(&shown.stdout, "Error"),
        Some("InvalidImage (REJECTED: a replay cannot fix the upload)"),
        "{}",
        shown.stdout
    );
    let validate = shown.stdout.lines().find(|l| l.starts_with("Validate ")).expect("a Validate line");
    assert!(validate.ends_with("caught InvalidImage"), "{}", shown.stdout);
    let succeeded = executions.iter().find(|e| e["status"] == "SUCCEEDED").unwrap();
    let by_name = run(imgflow_at(&twin, &["executions", "show", succeeded["name"].as_str().unwrap(), "--events"]))
        .await
        .expect_code(0);
    assert_eq!(field(&by_name.stdout, "Status"), Some("SUCCEEDED"), "{}", by_name.stdout);
    let object = field(&by_name.stdout, "Object");
    assert!(object.is_some_and(|o| o.starts_with("s3://images/uploads/")), "{}", by_name.stdout);
    for expected in ["ReadExif", "Resize", "ExecutionSucceeded"] {
        assert!(by_name.stdout.contains(expected), "{expected:?} in\n{}", by_name.stdout);
    }
    assert!(!by_name.stdout.contains("Failed in"), "{}", by_name.stdout);
    let report = run(imgflow_at(&twin, &["executions", "show", &broken_execution, "--output", "json"]))
        .await
        .expect_code(0)
        .json();
    assert_eq!(report["failedState"], "Rejected");
    assert_eq!(report["input"]["detail-type"], "Object Created");
    let unknown = run(imgflow_at(&twin, &["executions", "show", "no-such-execution"])).await.expect_code(2);
    assert!(unknown.stderr.contains("ExecutionDoesNotExist"), "{}", unknown.stderr);

    // replay of a rejected upload: skipped, with the reason.
    let replay = run(imgflow_at(&twin, &["replay", &broken_execution])).await.expect_code(0);
    assert!(replay.stdout.contains("skipped") && replay.stdout.contains("REJECTED"), "{}", replay.stdout);

    // executions watch: a live table until Ctrl-C.
    let watch_twin_url = twin.url();
    let watched = tokio::task::spawn_blocking(move || watch_until_interrupted(&watch_twin_url)).await.unwrap();
    assert!(watched.contains("NAME") && watched.contains("SUCCEEDED"), "{watched}");
}

/// Runs `imgflow executions watch` until it has drawn two tables, then sends SIGINT (Ctrl-C)
/// and expects a clean exit. Returns what it printed.
fn watch_until_interrupted(endpoint: &str) -> String {
    let mut child = imgflow()
        .args(["executions", "watch", "--interval", "200ms", "--endpoint", endpoint])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("imgflow executions watch starts");
    let mut printed = String::new();
    let mut headers = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.expect("a line of output");
        headers += usize::from(line.contains("(Ctrl-C to stop)"));
        printed.push_str(&line);
        printed.push('\n');
        if headers == 3 {
            // The second table has been printed in full.
            let interrupted = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
            assert!(interrupted.success());
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "watch ended with {status} after Ctrl-C:\n{printed}");
    printed
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_replay_redrives_twenty_failed_executions() {
    // Every execution tries Resize 6 times (1 + 5 retries): 120 faults fail 20 executions, and
    // are used up by then.
    let twin = TestTwin::start("resize=TransientError*120").await;
    let folder = tempfile::tempdir().unwrap();
    for index in 0..20 {
        write(folder.path(), &format!("photo-{index:02}.jpg"), &fixtures::jpeg(640, 480));
    }
    write(folder.path(), "zz-broken.jpg", &truncated_jpeg());
    let folder_arg = folder.path().to_str().unwrap();

    let uploads = run(imgflow_at(&twin, &["upload", folder_arg, "--wait", "--concurrency", "8", "--output", "json"]))
        .await
        .expect_code(1);
    let outcomes = uploads.json();
    let statuses: Vec<&str> = outcomes.as_array().unwrap().iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "FAILED").count(), 20, "{outcomes}");
    assert_eq!(statuses.last(), Some(&"REJECTED"), "{outcomes}");

    let dry = run(imgflow_at(&twin, &["replay", "--all-failed", "--since", "1h", "--dry-run"])).await.expect_code(0);
    assert!(dry.stderr.contains("20 would redrive, 1 skipped"), "{}", dry.stderr);
    assert_eq!(
        run(imgflow_at(&twin, &["executions", "list", "--status", "FAILED", "--output", "json"]))
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        21,
        "a dry run replays nothing"
    );

    let replay = run(imgflow_at(&twin, &["replay", "--all-failed", "--wait", "--output", "json"])).await.expect_code(0);
    assert!(replay.stderr.contains("20 redriven, 1 skipped; then 20 SUCCEEDED"), "{}", replay.stderr);
    let replayed = replay.json();
    let replayed = replayed.as_array().unwrap();
    assert_eq!(replayed.len(), 21);
    let skipped: Vec<&Value> = replayed.iter().filter(|o| o["action"] == "skipped").collect();
    assert_eq!(skipped.len(), 1);
    let reason = skipped[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("REJECTED, a replay cannot fix the upload (InvalidImage"), "{reason}");
    assert!(replayed.iter().filter(|o| o["action"] == "redriven").all(|o| o["finalStatus"] == "SUCCEEDED"));

    // The images followed: 20 SUCCEEDED, none FAILED; only the rejected execution still failed.
    let succeeded =
        run(imgflow_at(&twin, &["images", "list", "--status", "SUCCEEDED", "--output", "json"])).await.json();
    assert_eq!(succeeded["items"].as_array().unwrap().len(), 20, "{succeeded}");
    let failed_images =
        run(imgflow_at(&twin, &["images", "list", "--status", "FAILED", "--output", "json"])).await.json();
    assert_eq!(failed_images["items"], Value::Array(vec![]));
    let still_failed =
        run(imgflow_at(&twin, &["executions", "list", "--status", "FAILED", "--output", "json"])).await.json();
    assert_eq!(still_failed.as_array().unwrap().len(), 1);

    // A redriven execution shows its redrive and the Resize that succeeded in the end.
    let one = replayed.iter().find(|o| o["action"] == "redriven").unwrap();
    let shown = run(imgflow_at(&twin, &["executions", "show", one["name"].as_str().unwrap()])).await.expect_code(0);
    assert_eq!(field(&shown.stdout, "Status"), Some("SUCCEEDED"), "{}", shown.stdout);
    assert!(field(&shown.stdout, "Redrives").is_some_and(|r| r.starts_with("1 ")), "{}", shown.stdout);
    assert!(shown.stdout.contains("failed: TransientError after 6 failed attempts"), "{}", shown.stdout);
    let last_resize = shown.stdout.lines().rfind(|l| l.starts_with("Resize ")).unwrap();
    assert!(last_resize.ends_with("succeeded"), "{}", shown.stdout);

    // Nothing left to replay.
    let again = run(imgflow_at(&twin, &["replay", "--all-failed", "--mode", "restart"])).await.expect_code(0);
    assert!(again.stderr.contains("1 skipped"), "{}", again.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_replays_under_a_new_name() {
    let twin = TestTwin::start("resize=TransientError*6").await;
    let folder = tempfile::tempdir().unwrap();
    let photo = write(folder.path(), "photo.jpg", &fixtures::jpeg(640, 480));
    let uploads =
        run(imgflow_at(&twin, &["upload", photo.to_str().unwrap(), "--wait", "--output", "json"])).await.expect_code(1);
    let execution = uploads.json()[0]["executionArn"].as_str().unwrap().to_owned();
    let image_id = uploads.json()[0]["imageId"].as_str().unwrap().to_owned();

    let replay = run(imgflow_at(&twin, &["replay", &execution, "--mode", "restart", "--wait", "--output", "json"]))
        .await
        .expect_code(0);
    let outcome = &replay.json()[0];
    assert_eq!(outcome["action"], "restarted");
    assert_eq!(outcome["finalStatus"], "SUCCEEDED");
    // The original name (cut to fit Step Functions' 80 characters), then the restart suffix.
    let name = execution.rsplit(':').next().unwrap();
    let new_name = outcome["newExecutionArn"].as_str().unwrap().rsplit(':').next().unwrap();
    assert!(new_name.starts_with(&name[..40]) && new_name.contains("-restart-"), "{outcome}");
    assert!(new_name.len() <= 80, "{new_name}");
    let image = run(imgflow_at(&twin, &["images", "get", &image_id, "--output", "json"])).await.json();
    assert_eq!(image["status"], "SUCCEEDED");
    // The original execution stays FAILED: a restart is a new execution.
    let original = run(imgflow_at(&twin, &["executions", "show", &execution, "--output", "json"])).await.json();
    assert_eq!(original["status"], "FAILED");
    assert_eq!(original["failedState"], "Resize");
}

#[tokio::test(flavor = "multi_thread")]
async fn camera_photos_upload_and_show_their_exif() {
    let Some(shared) = imgflow_tests::shared_dir() else {
        eprintln!("skipped: ../shared (the camera photos) is not next to the workspace");
        return;
    };
    let photos = ["canon_sx60_orient6.jpg", "iphone6_3264x2448.jpg"].map(|name| shared.join("images").join(name));
    if let Some(absent) = photos.iter().find(|p| !p.is_file()) {
        eprintln!("skipped: {} is absent", absent.display());
        return;
    }
    let twin = TestTwin::start("").await;
    let mut args = vec!["upload", "--wait", "--output", "json"];
    args.extend(photos.iter().map(|p| p.to_str().unwrap()));
    let outcomes = run(imgflow_at(&twin, &args)).await.expect_code(0).json();
    for outcome in outcomes.as_array().unwrap() {
        assert_eq!(outcome["status"], "SUCCEEDED", "{outcome}");
        let shown =
            run(imgflow_at(&twin, &["images", "get", outcome["imageId"].as_str().unwrap()])).await.expect_code(0);
        assert!(shown.stdout.contains("Camera"), "EXIF camera in\n{}", shown.stdout);
    }
}
