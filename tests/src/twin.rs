//! A twin (`imgflow serve`'s insides) in a temporary folder on a free port, and clients for it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use imgflow_engine::InstantClock;
use imgflow_local::twin::{Twin, TwinConfig};
use serde_json::Value;
use tempfile::TempDir;

/// The credentials the twin's S3 endpoint checks by default.
pub const TWIN_ACCESS_KEY: &str = "test";
pub const TWIN_SECRET_KEY: &str = "test";

pub struct TestTwin {
    pub twin: Twin,
    pub dir: TempDir,
    pub http: reqwest::Client,
}

/// `POST /upload`'s answer.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadAnswer {
    pub image_id: String,
    pub key: String,
    pub status_url: String,
    pub execution_arn: String,
}

impl TestTwin {
    /// A twin with retry delays and waits taking no time, and `faults` injected.
    pub async fn start(faults: &str) -> TestTwin {
        TestTwin::start_with(|config| config.faults = faults.to_owned()).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut TwinConfig)) -> TestTwin {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut config = TwinConfig::new(dir.path());
        config.addr = ([127, 0, 0, 1], 0).into();
        config.clock = Arc::new(InstantClock::new());
        adjust(&mut config);
        let twin = Twin::start(config).await.expect("the twin starts");
        TestTwin { twin, dir, http: reqwest::Client::new() }
    }

    pub fn url(&self) -> String {
        self.twin.url()
    }

    /// What every AWS client of the twin shares: its URL, region and credentials.
    fn sdk_config(&self) -> aws_config::SdkConfig {
        let credentials = aws_credential_types::Credentials::new(TWIN_ACCESS_KEY, TWIN_SECRET_KEY, None, None, "tests");
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(credentials))
            .endpoint_url(self.url())
            .http_client(imgflow_steps::https_client())
            .build()
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config()).force_path_style(true).build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.sdk_config())
    }

    /// `POST /upload` with a raw body (a `Vec<u8>`, or `Bytes` to send shared bytes without
    /// copying them first); panics unless the answer is 202.
    pub async fn upload(&self, bytes: impl Into<reqwest::Body>, content_type: &str) -> UploadAnswer {
        let response = self
            .http
            .post(format!("{}/upload", self.url()))
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .expect("POST /upload");
        assert_eq!(response.status().as_u16(), 202, "POST /upload answered {:?}", response.text().await);
        response.json().await.expect("the upload answer is JSON")
    }

    /// `GET /images/{id}`: the status code and the JSON.
    pub async fn image(&self, image_id: &str) -> (u16, Value) {
        let response = self.http.get(format!("{}/images/{image_id}", self.url())).send().await.expect("GET /images");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls `GET /images/{id}` until the image is no longer being processed.
    pub async fn wait_for_image(&self, image_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, body) = self.image(image_id).await;
            if status == 200 && body["status"] != "PROCESSING" {
                return body;
            }
            assert!(Instant::now() < deadline, "image {image_id} still {status} {body} after 120 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// An object of the pipeline's bucket, read anonymously as a browser would.
    pub async fn fetch(&self, url: &str) -> (u16, Vec<u8>) {
        let response = self.http.get(url).send().await.expect("GET object");
        let status = response.status().as_u16();
        (status, response.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
    }
}
