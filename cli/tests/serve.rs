//! `imgflow serve` as a process: kill -9 with uploads in flight, restart on the same data folder,
//! and every upload that got a 2xx ends SUCCEEDED — none lost, none left RUNNING. Then Ctrl-C
//! stops it cleanly.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use imgflow_tests::fixtures;
use serde_json::{Value, json};

const UPLOADS: usize = 50;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn serve(data_dir: &Path, port: u16, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_imgflow"))
        .args(["serve", "--data-dir", data_dir.to_str().unwrap(), "--addr", &format!("127.0.0.1:{port}")])
        .args(["--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("imgflow serve starts")
}

async fn wait_ready(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http.get(format!("{url}/images")).send().await.is_ok_and(|r| r.status().as_u16() == 200) {
        assert!(Instant::now() < deadline, "the twin did not answer within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sfn(http: &reqwest::Client, url: &str, operation: &str, body: Value) -> Value {
    http.post(url)
        .header("x-amz-target", format!("AWSStepFunctions.{operation}"))
        .header("content-type", "application/x-amz-json-1.0")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_uploads_in_flight_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let mut first = serve(&data_dir, port, &log);
    wait_ready(&http, &url).await;

    let accepted = Arc::new(AtomicUsize::new(0));
    let mut uploads = Vec::new();
    for n in 0..UPLOADS {
        let (http, url, accepted) = (http.clone(), url.clone(), Arc::clone(&accepted));
        let jpeg = fixtures::jpeg(900 + n as u32, 700);
        uploads.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(40 * n as u64)).await;
            let response =
                http.post(format!("{url}/upload")).header("content-type", "image/jpeg").body(jpeg).send().await;
            match response {
                Ok(response) if response.status().is_success() => {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let answer: Value = response.json().await.ok()?;
                    answer["imageId"].as_str().map(str::to_owned)
                }
                _ => None,
            }
        }));
    }
    // Kill once a good part is accepted, while the rest are still being sent.
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted.load(Ordering::SeqCst) < UPLOADS / 3 {
        assert!(Instant::now() < deadline, "uploads were not accepted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().expect("kill -9");
    first.wait().unwrap();
    let mut image_ids = Vec::new();
    for upload in uploads {
        image_ids.extend(upload.await.unwrap());
    }
    assert!(image_ids.len() >= UPLOADS / 3, "{} accepted", image_ids.len());
    eprintln!("{} of {UPLOADS} uploads got a 2xx before kill -9", image_ids.len());

    let mut second = serve(&data_dir, port, &log);
    wait_ready(&http, &url).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    for id in &image_ids {
        loop {
            let response = http.get(format!("{url}/images/{id}")).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status == 200 && body["status"] != "PROCESSING" {
                assert_eq!(body["status"], "SUCCEEDED", "{id}: {body}");
                break;
            }
            assert_ne!(status, 404, "upload {id} got a 2xx and was lost");
            assert!(Instant::now() < deadline, "{id} still {status} {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let machines = sfn(&http, &url, "ListStateMachines", json!({})).await;
    let machine = machines["stateMachines"][0]["stateMachineArn"].as_str().unwrap().to_owned();
    let running =
        sfn(&http, &url, "ListExecutions", json!({"stateMachineArn": machine, "statusFilter": "RUNNING"})).await;
    assert_eq!(running["executions"], json!([]), "nothing stays RUNNING");

    // Ctrl-C: a clean exit.
    // SAFETY: kill(2) on the child's pid, which this test owns and has not reaped.
    assert_eq!(unsafe { libc::kill(second.id() as i32, libc::SIGINT) }, 0);
    let stopped = Instant::now();
    loop {
        if let Some(status) = second.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(stopped.elapsed() < Duration::from_secs(20), "Ctrl-C did not stop the twin");
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.lines().all(|line| serde_json::from_str::<Value>(line).is_ok()), "--log-format json: {logs}");
}
