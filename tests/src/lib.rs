//! The harness of the end-to-end tests: real protocol peers started on 127.0.0.1 for the length
//! of a test — the embedded S3 endpoint and moto's DynamoDB — and generated image fixtures.

pub mod sfn_server;
pub mod twin;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use imgflow_local::s3::{self, S3Endpoint};
use imgflow_steps::event::ObjectCreatedEvent;
use imgflow_steps::pipeline::{StoredObject, object_created_event};

pub const ACCESS_KEY: &str = "imgflow-test";
pub const SECRET_KEY: &str = "imgflow-test-secret";
pub const REGION: &str = "us-east-1";

/// CPU time used by this process so far (user + system, all threads), from `/proc/self/stat`;
/// benchmarks print it beside wall time because it is less distorted by other load.
pub fn process_cpu_time() -> Option<Duration> {
    let fields = process_stat()?;
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel reports in USER_HZ, 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time used so far by each live thread of this process: its name and its time on a CPU, in
/// nanoseconds (`/proc/self/task/*/schedstat`), keyed by thread id. Benchmarks split a phase's
/// CPU by what the threads do with it; a thread that ends between two readings drops out.
pub fn thread_cpu_times() -> std::collections::HashMap<u32, (String, Duration)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Default::default() };
    tasks
        .filter_map(|task| {
            let task = task.ok()?;
            let id = task.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?.trim_end().to_owned();
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let nanos = schedstat.split_whitespace().next()?.parse().ok()?;
            Some((id, (name, Duration::from_nanos(nanos))))
        })
        .collect()
}

/// Minor page faults of this process so far (each a page the kernel had to map, most of them
/// zeroed first), from `/proc/self/stat`.
pub fn process_page_faults() -> Option<u64> {
    process_stat()?.get(7)?.parse().ok()
}

/// The fields of `/proc/self/stat` after the command name (which is in parentheses and may
/// contain spaces): the state is field 0.
fn process_stat() -> Option<Vec<String>> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    Some(stat.rsplit_once(')')?.1.split_whitespace().map(str::to_owned).collect())
}

/// `../shared` next to the workspace, when this checkout has it.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared"));
    dir.is_dir().then(|| dir.canonicalize().unwrap_or(dir))
}

fn credentials() -> Credentials {
    Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "imgflow-tests")
}

/// The embedded S3 endpoint over a temporary folder, with one bucket.
pub struct S3Fixture {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    endpoint: S3Endpoint,
    _root: tempfile::TempDir,
}

impl S3Fixture {
    pub async fn start() -> S3Fixture {
        let root = tempfile::tempdir().expect("a temporary folder");
        let endpoint = S3Endpoint::start(
            root.path(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            s3::Credentials { access_key: ACCESS_KEY.into(), secret_key: SECRET_KEY.into() },
        )
        .await
        .expect("the S3 endpoint starts");
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(credentials())
            .endpoint_url(endpoint.url())
            .force_path_style(true)
            .http_client(imgflow_steps::https_client())
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        let bucket = "images".to_owned();
        client.create_bucket().bucket(&bucket).send().await.expect("bucket created");
        S3Fixture { client, bucket, endpoint, _root: root }
    }

    pub fn url(&self) -> String {
        self.endpoint.url()
    }

    /// Stores `bytes` at `key` and returns the event S3 would emit for it.
    pub async fn upload(&self, key: &str, bytes: Vec<u8>) -> ObjectCreatedEvent {
        let size = bytes.len() as u64;
        let output = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutObject {key}: {e:?}"));
        let object = StoredObject {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            size,
            etag: output.e_tag().map(|e| e.trim_matches('"').to_owned()),
            version_id: None,
            sequencer: Some("0062E99A88DC407460".into()),
            request_id: Some("test-request".into()),
            reason: "PutObject".into(),
            time: chrono::Utc::now(),
            region: REGION.into(),
            account: "000000000000".into(),
        };
        object_created_event(&object, "test-event")
    }

    pub async fn object(&self, key: &str) -> Option<(Vec<u8>, Option<String>, Option<String>)> {
        let output = self.client.get_object().bucket(&self.bucket).key(key).send().await.ok()?;
        let content_type = output.content_type().map(str::to_owned);
        let cache_control = output.cache_control().map(str::to_owned);
        let bytes = output.body.collect().await.ok()?.into_bytes().to_vec();
        Some((bytes, content_type, cache_control))
    }
}

/// moto's server (real DynamoDB protocol) on a free port, stopped when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Starts `$IMGFLOW_MOTO_SERVER` (set by scripts/test) or `moto_server` from PATH.
    pub fn start() -> Moto {
        let program = std::env::var("IMGFLOW_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program}: {e}. Run ./scripts/test (it installs moto) or set IMGFLOW_MOTO_SERVER.")
            });
        let mut moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        moto.wait_ready(port);
        moto
    }

    fn wait_ready(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Our own process must still be running: another program may hold the port.
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("moto_server exited with {status} before it was ready (port {port} taken?)");
            }
            if http_request(port, "GET", "/moto-api/", None) == Some(200) {
                return;
            }
            assert!(Instant::now() < deadline, "moto_server did not answer on port {port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Turns on moto's execution of state machines (off by default: executions stay RUNNING).
    pub fn execute_state_machines(&self) {
        let port: u16 = self.endpoint.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
        let body = r#"{"stepfunctions": {"execute_state_machine": true}}"#;
        let status = http_request(port, "POST", "/moto-api/config", Some(body));
        assert!(matches!(status, Some(200 | 201)), "moto refused its configuration: {status:?}");
    }

    pub fn stepfunctions(&self) -> aws_sdk_sfn::Client {
        let config = aws_sdk_sfn::Config::builder()
            .behavior_version(aws_sdk_sfn::config::BehaviorVersion::latest())
            .region(aws_sdk_sfn::config::Region::new(REGION))
            .credentials_provider(aws_sdk_sfn::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "tests"))
            .endpoint_url(&self.endpoint)
            .http_client(imgflow_steps::https_client())
            .build();
        aws_sdk_sfn::Client::from_conf(config)
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new(REGION))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "tests",
            ))
            .endpoint_url(&self.endpoint)
            .http_client(imgflow_steps::https_client())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code of a plain HTTP/1.1 request, or None when nothing answers.
fn http_request(port: u16, method: &str, path: &str, json_body: Option<&str>) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let body = json_body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Generated fixtures: real encodings made by the `image` crate, so no binary file is committed.
pub mod fixtures {
    use image::{ImageFormat, Rgb, RgbImage};

    /// A `width`×`height` photo-like gradient with a red top-left corner.
    pub fn pattern(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            if x < width / 4 && y < height / 4 {
                Rgb([230, 20, 20])
            } else {
                Rgb([(x * 255 / width.max(1)) as u8, (y * 255 / height.max(1)) as u8, 128])
            }
        })
    }

    pub fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = std::io::Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).expect("encodes");
        bytes.into_inner()
    }

    pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
        encode(&pattern(width, height), ImageFormat::Jpeg)
    }

    pub fn png(width: u32, height: u32) -> Vec<u8> {
        encode(&pattern(width, height), ImageFormat::Png)
    }

    /// A PNG whose header claims `width`×`height` but which holds no pixel data worth the name.
    pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = png(8, 8);
        bytes[16..20].copy_from_slice(&width.to_be_bytes());
        bytes[20..24].copy_from_slice(&height.to_be_bytes());
        // Fix the IHDR CRC so only the size is suspicious.
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
