//! The local twin end to end, as users drive it: uploads through the HTTP API, aws-sdk-s3 and the
//! aws CLI; executions followed through aws-sdk-sfn; renditions read back over HTTP; bad uploads
//! rejected; an injected fault failing an execution that a redrive then completes.

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use imgflow_tests::fixtures;
use imgflow_tests::shared_dir;
use imgflow_tests::twin::{TWIN_ACCESS_KEY, TWIN_SECRET_KEY, TestTwin};
use serde_json::Value;

async fn execution_status(twin: &TestTwin, arn: &str) -> ExecutionStatus {
    let sfn = twin.sfn();
    for _ in 0..2400 {
        let described = sfn.describe_execution().execution_arn(arn).send().await.expect("DescribeExecution");
        if described.status() != &ExecutionStatus::Running {
            return described.status().clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{arn} still RUNNING after 120 s");
}

fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let decoded = image::load_from_memory(bytes).expect("a rendition decodes");
    (decoded.width(), decoded.height())
}

/// Checks a SUCCEEDED record and its renditions, read anonymously from their URLs.
async fn check_succeeded(twin: &TestTwin, record: &Value, displayed: (u32, u32)) {
    assert_eq!(record["status"], "SUCCEEDED", "{record}");
    assert_eq!((record["width"].as_u64().unwrap() as u32, record["height"].as_u64().unwrap() as u32), displayed);
    let renditions = record["renditions"].as_array().expect("renditions");
    assert_eq!(renditions.len(), 2, "{record}");
    for rendition in renditions {
        let url = rendition["url"].as_str().unwrap();
        assert!(url.starts_with(&twin.url()), "{url} points at the twin");
        let (status, bytes) = twin.fetch(url).await;
        assert_eq!(status, 200, "{url}");
        let (width, height) = dimensions(&bytes);
        assert_eq!(
            (width as u64, height as u64),
            (rendition["width"].as_u64().unwrap(), rendition["height"].as_u64().unwrap())
        );
        // Orientation: the rendition has the displayed aspect.
        assert_eq!(width >= height, displayed.0 >= displayed.1, "{url} is {width}x{height}");
    }
    let original = record["originalUrl"].as_str().expect("originalUrl");
    assert_eq!(twin.fetch(original).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_through_the_api_sdk_and_multipart_are_processed() {
    let twin = TestTwin::start("").await;

    // Raw body.
    let raw = twin.upload(fixtures::jpeg(800, 600), "image/jpeg").await;
    assert_eq!(raw.key, format!("uploads/{}", raw.image_id));
    assert_eq!(raw.status_url, format!("{}/images/{}", twin.url(), raw.image_id));

    // multipart/form-data, field `file`.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(fixtures::png(300, 500)).file_name("tall.png").mime_str("image/png").unwrap(),
    );
    let response = twin.http.post(format!("{}/upload", twin.url())).multipart(form).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let form_upload: Value = response.json().await.unwrap();

    // aws-sdk-s3, straight into the bucket.
    twin.s3()
        .put_object()
        .bucket("images")
        .key("uploads/from-sdk")
        .content_type("image/jpeg")
        .body(fixtures::jpeg(640, 640).into())
        .send()
        .await
        .expect("PutObject");
    // Nothing under processed/ (or elsewhere) starts anything.
    twin.s3()
        .put_object()
        .bucket("images")
        .key("processed/elsewhere.jpg")
        .body(fixtures::jpeg(10, 10).into())
        .send()
        .await
        .unwrap();

    // CopyObject and a multipart upload into uploads/ trigger too.
    let s3 = twin.s3();
    s3.copy_object()
        .bucket("images")
        .key("uploads/copied")
        .copy_source("images/processed/elsewhere.jpg")
        .send()
        .await
        .expect("CopyObject");
    let created = s3.create_multipart_upload().bucket("images").key("uploads/in-parts").send().await.unwrap();
    let upload_id = created.upload_id().unwrap();
    let part = s3
        .upload_part()
        .bucket("images")
        .key("uploads/in-parts")
        .upload_id(upload_id)
        .part_number(1)
        .body(fixtures::jpeg(500, 400).into())
        .send()
        .await
        .unwrap();
    let completed = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .parts(aws_sdk_s3::types::CompletedPart::builder().part_number(1).e_tag(part.e_tag().unwrap()).build())
        .build();
    s3.complete_multipart_upload()
        .bucket("images")
        .key("uploads/in-parts")
        .upload_id(upload_id)
        .multipart_upload(completed)
        .send()
        .await
        .expect("CompleteMultipartUpload");
    let copied = twin.wait_for_image("copied").await;
    assert_eq!(copied["status"], "SUCCEEDED", "{copied}");
    assert_eq!(twin.wait_for_image("in-parts").await["width"], 500);

    assert_eq!(execution_status(&twin, &raw.execution_arn).await, ExecutionStatus::Succeeded);
    let record = twin.wait_for_image(&raw.image_id).await;
    check_succeeded(&twin, &record, (800, 600)).await;
    assert_eq!(record["executionArn"], raw.execution_arn.as_str());

    let record = twin.wait_for_image(form_upload["imageId"].as_str().unwrap()).await;
    check_succeeded(&twin, &record, (300, 500)).await;

    let record = twin.wait_for_image("from-sdk").await;
    check_succeeded(&twin, &record, (640, 640)).await;

    // The Step Functions view: one execution per upload, the input is S3's event.
    let sfn = twin.sfn();
    let machines = sfn.list_state_machines().send().await.unwrap();
    let machine = machines.state_machines()[0].state_machine_arn().to_owned();
    let executions = sfn.list_executions().state_machine_arn(&machine).send().await.unwrap();
    assert_eq!(executions.executions().len(), 5);
    let mut reasons = Vec::new();
    for execution in executions.executions() {
        let described = sfn.describe_execution().execution_arn(execution.execution_arn()).send().await.unwrap();
        let input: Value = serde_json::from_str(described.input().unwrap()).unwrap();
        reasons.push(input["detail"]["reason"].as_str().unwrap().to_owned());
    }
    reasons.sort();
    assert_eq!(reasons, ["CompleteMultipartUpload", "CopyObject", "PutObject", "PutObject", "PutObject"]);
    let described = sfn.describe_execution().execution_arn(&raw.execution_arn).send().await.unwrap();
    let input: Value = serde_json::from_str(described.input().unwrap()).unwrap();
    assert_eq!(input["detail-type"], "Object Created");
    assert_eq!(input["detail"]["object"]["key"], raw.key.as_str());
    assert_eq!(input["detail"]["reason"], "PutObject");
    assert!(input["detail"]["object"]["sequencer"].as_str().is_some_and(|s| s.len() == 18));
    assert!(input["detail"]["object"]["etag"].as_str().is_some_and(|s| s.len() == 32));

    // Listing, newest first.
    let listed: Value = twin
        .http
        .get(format!("{}/images?status=SUCCEEDED&limit=2", twin.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    assert!(listed["nextToken"].is_string());
    twin.twin.shutdown().await;
}

/// `POST /upload` of `chunks` with `Transfer-Encoding: chunked` (no Content-Length); the status.
async fn chunked_upload(twin: &TestTwin, chunks: &[&[u8]]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(twin.twin.addr()).await.unwrap();
    let mut request = b"POST /upload HTTP/1.1\r\nHost: twin\r\nContent-Type: image/jpeg\r\n\
                        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    for chunk in chunks {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The twin may answer 413 before reading everything: a failed write is fine.
    let _ = socket.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer).await;
    let status_line = String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned();
    status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no answer: {status_line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_get_clear_answers_and_store_nothing() {
    let twin = TestTwin::start_with(|config| config.upload_limit = 100_000).await;
    let post = |body: Vec<u8>, content_type: &'static str| {
        twin.http.post(format!("{}/upload", twin.url())).header("content-type", content_type).body(body).send()
    };
    let too_large = post(vec![0xFF; 100_001], "image/jpeg").await.unwrap();
    assert_eq!(too_large.status().as_u16(), 413);
    let text = post(b"hello".to_vec(), "text/plain").await.unwrap();
    assert_eq!(text.status().as_u16(), 415);
    let empty = post(Vec::new(), "image/png").await.unwrap();
    assert_eq!(empty.status().as_u16(), 400);
    // Without a Content-Length the limit applies as the body arrives.
    assert_eq!(chunked_upload(&twin, &[&[0xFF; 60_000], &[0xFF; 60_000]]).await, 413);
    assert_eq!(chunked_upload(&twin, &[]).await, 400);
    let listed = twin.s3().list_objects_v2().bucket("images").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0), "nothing stored: {:?}", listed.contents());

    // A corrupt image is accepted, then REJECTED with InvalidImage.
    let mut corrupt = fixtures::jpeg(400, 300);
    corrupt.truncate(corrupt.len() / 3);
    let answer = twin.upload(corrupt, "image/jpeg").await;
    let record = twin.wait_for_image(&answer.image_id).await;
    assert_eq!(record["status"], "REJECTED", "{record}");
    assert_eq!(record["error"], "InvalidImage", "{record}");
    assert_eq!(execution_status(&twin, &answer.execution_arn).await, ExecutionStatus::Failed);

    assert_eq!(twin.image("no-such-image").await.0, 404);
    let bad_status = twin.http.get(format!("{}/images?status=NOPE", twin.url())).send().await.unwrap();
    assert_eq!(bad_status.status().as_u16(), 400);
    twin.twin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_fault_fails_the_execution_and_a_redrive_completes_it() {
    // Six failures outlast the ASL's five attempts at Resize.
    let twin = TestTwin::start("resize=TransientError*6").await;
    let answer = twin.upload(fixtures::jpeg(640, 480), "image/jpeg").await;
    assert_eq!(execution_status(&twin, &answer.execution_arn).await, ExecutionStatus::Failed);
    let failed = twin.wait_for_image(&answer.image_id).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"], "TransientError", "{failed}");
    assert!(failed["failedState"].as_str().is_some_and(|s| s.contains("Resize")), "{failed}");

    let sfn = twin.sfn();
    sfn.redrive_execution().execution_arn(&answer.execution_arn).send().await.expect("RedriveExecution");
    assert_eq!(execution_status(&twin, &answer.execution_arn).await, ExecutionStatus::Succeeded);
    let record = twin.wait_for_image(&answer.image_id).await;
    check_succeeded(&twin, &record, (640, 480)).await;
    let described = sfn.describe_execution().execution_arn(&answer.execution_arn).send().await.unwrap();
    assert_eq!(described.redrive_count(), Some(1));
    twin.twin.shutdown().await;
}

/// The `aws` binary: `$IMGFLOW_AWS_CLI`, or `aws` on `PATH`.
fn aws_cli() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("IMGFLOW_AWS_CLI") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join("aws")).find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_photo_copied_with_the_aws_cli_is_processed_upright() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: ../shared is absent");
        return;
    };
    let Some(aws) = aws_cli() else {
        panic!("no `aws` binary: scripts/test installs awscli (or set IMGFLOW_AWS_CLI)");
    };
    let twin = TestTwin::start("").await;
    let photo = shared.join("images/canon_sx60_orient6.jpg");
    let url = twin.url();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(aws)
            .args(["s3", "cp", photo.to_str().unwrap(), "s3://images/uploads/canon-sx60", "--endpoint-url", &url])
            .env("AWS_ACCESS_KEY_ID", TWIN_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", TWIN_SECRET_KEY)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .output()
    })
    .await
    .unwrap()
    .expect("aws s3 cp runs");
    assert!(output.status.success(), "aws s3 cp: {}", String::from_utf8_lossy(&output.stderr));
    let record = twin.wait_for_image("canon-sx60").await;
    // Stored 2048x1536 with orientation 6: displayed as portrait.
    check_succeeded(&twin, &record, (1536, 2048)).await;
    assert_eq!(record["exif"]["make"], "Canon", "{record}");
    twin.twin.shutdown().await;
}
