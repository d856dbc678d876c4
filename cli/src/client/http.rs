//! The upload-and-read HTTP API: the twin's routes, which are also the API Gateway deployment's
//! (`POST /upload`, `GET /images/{id}`; the twin adds `GET /images`).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use imgflow_steps::metadata::ImageStatus;
use reqwest::{StatusCode, Url};
use serde_json::Value;

use super::{ImageList, UploadAccepted};

/// How often an upload refused with 503 (too many executions open) is tried again.
const BUSY_RETRIES: u32 = 8;
/// The longest wait honoured from a `Retry-After` header.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(10);

pub struct HttpApi {
    http: reqwest::Client,
    base: Url,
    api_key: Option<String>,
}

impl HttpApi {
    /// The API at `base_url` (the twin's address, or the stage URL of API Gateway).
    pub fn new(base_url: &str, api_key: Option<String>) -> Result<HttpApi> {
        let base = Url::parse(base_url).with_context(|| format!("{base_url:?} is not a URL"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            bail!("{base_url:?} is not an http(s) URL");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("imgflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(HttpApi { http, base, api_key })
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// `base/{segments...}`, each segment percent-encoded as needed.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // Checked in `new`: an http(s) URL always has path segments.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.api_key {
            Some(key) => request.header("x-api-key", key),
            None => request,
        }
    }

    /// `POST /upload` with the raw image. A 503 (the twin has too many executions open, or
    /// S3 is busy behind API Gateway) is retried after its `Retry-After`.
    pub async fn upload(&self, body: Vec<u8>, content_type: &str) -> Result<UploadAccepted> {
        let url = self.url(&["upload"]);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let response = self
                .request(reqwest::Method::POST, url.clone())
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.clone())
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            let status = response.status();
            if status == StatusCode::SERVICE_UNAVAILABLE && attempt <= BUSY_RETRIES {
                let wait = retry_after(&response).unwrap_or(Duration::from_secs(1)).min(LONGEST_RETRY_AFTER);
                tokio::time::sleep(wait).await;
                continue;
            }
            let text = response.text().await.with_context(|| format!("reading the answer of POST {url}"))?;
            if !status.is_success() {
                bail!("POST {url}: {}", failure(status, &text));
            }
            return serde_json::from_str(&text).with_context(|| format!("POST {url} answered {status} with {text:?}"));
        }
    }

    /// `GET /images/{id}`; `None` on 404.
    pub async fn image(&self, image_id: &str) -> Result<Option<Value>> {
        let url = self.url(&["images", image_id]);
        let response =
            self.request(reqwest::Method::GET, url.clone()).send().await.with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let text = response.text().await.with_context(|| format!("reading the answer of GET {url}"))?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => {
                serde_json::from_str(&text).map(Some).with_context(|| format!("GET {url} answered {text:?}"))
            }
            status => bail!("GET {url}: {}", failure(status, &text)),
        }
    }

    /// `GET /images?status=S&limit=N&nextToken=T` (the twin's listing).
    pub async fn list_images(
        &self,
        status: Option<ImageStatus>,
        limit: u32,
        next_token: Option<String>,
    ) -> Result<ImageList> {
        let mut url = self.url(&["images"]);
        {
            let mut query = url.query_pairs_mut();
            if let Some(status) = status {
                query.append_pair("status", status.as_str());
            }
            query.append_pair("limit", &limit.to_string());
            if let Some(token) = &next_token {
                query.append_pair("nextToken", token);
            }
        }
        let response =
            self.request(reqwest::Method::GET, url.clone()).send().await.with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let text = response.text().await.with_context(|| format!("reading the answer of GET {url}"))?;
        if !status.is_success() {
            bail!("GET {url}: {}", failure(status, &text));
        }
        serde_json::from_str(&text).with_context(|| format!("GET {url} answered {text:?}"))
    }
}

/// `Retry-After` in seconds (the only form the twin and API Gateway send).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds))
}

/// The status and the server's `{"message"}` (or its raw body) of a refused request.
fn failure(status: StatusCode, body: &str) -> String {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|json| json.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.trim().chars().take(200).collect());
    if message.is_empty() { status.to_string() } else { format!("{status}: {message}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_stage_path_and_encode_ids() {
        let api = HttpApi::new("https://abc.execute-api.eu-west-1.amazonaws.com/prod/", None).unwrap();
        assert_eq!(api.url(&["upload"]).as_str(), "https://abc.execute-api.eu-west-1.amazonaws.com/prod/upload");
        assert_eq!(
            api.url(&["images", "a b/c"]).as_str(),
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod/images/a%20b%2Fc"
        );
        let twin = HttpApi::new("http://127.0.0.1:4566", None).unwrap();
        assert_eq!(twin.url(&["images", "x"]).as_str(), "http://127.0.0.1:4566/images/x");
        assert_eq!(twin.base_url(), "http://127.0.0.1:4566");
    }

    #[test]
    fn only_http_urls_are_endpoints() {
        assert!(HttpApi::new("127.0.0.1:4566", None).is_err());
        assert!(HttpApi::new("ftp://example.com", None).is_err());
        assert!(HttpApi::new("not a url", None).is_err());
    }

    #[test]
    fn failures_show_the_server_message() {
        assert_eq!(
            failure(StatusCode::NOT_FOUND, r#"{"message":"image not found"}"#),
            "404 Not Found: image not found"
        );
        assert_eq!(failure(StatusCode::BAD_GATEWAY, ""), "502 Bad Gateway");
        assert_eq!(failure(StatusCode::BAD_REQUEST, "plain text\n"), "400 Bad Request: plain text");
    }
}
