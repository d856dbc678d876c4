//! Which service a request is for, told apart as LocalStack's edge port does: the
//! `X-Amz-Target` header, the service name in the SigV4 credential scope, then the path.

use http::{HeaderMap, Method, Uri};

use crate::sfn::TARGET_PREFIX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A Step Functions operation (what follows `AWSStepFunctions.`).
    StepFunctions(String),
    /// An AWS JSON request for a service the twin does not have.
    UnknownTarget(String),
    S3,
    Upload,
    Image(String),
    Images,
    Console,
}

/// The service name of a SigV4-signed request (`…/us-east-1/s3/aws4_request`), from the
/// Authorization header or a presigned URL's `X-Amz-Credential`.
fn signed_service(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let scope_service = |credential: &str| credential.split('/').nth(3).map(str::to_owned);
    if let Some(authorization) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(start) = authorization.find("Credential=")
    {
        let credential = authorization[start + "Credential=".len()..].split([',', ' ']).next().unwrap_or("");
        return scope_service(credential);
    }
    let query = uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "X-Amz-Credential")
        .and_then(|(_, credential)| scope_service(&credential))
}

pub fn classify(method: &Method, uri: &Uri, headers: &HeaderMap) -> Destination {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return match target.strip_prefix(TARGET_PREFIX) {
            Some(operation) => Destination::StepFunctions(operation.to_owned()),
            None => Destination::UnknownTarget(target.to_owned()),
        };
    }
    match signed_service(headers, uri).as_deref() {
        Some("s3") => return Destination::S3,
        Some(other) => return Destination::UnknownTarget(format!("{other} (no X-Amz-Target)")),
        None => {}
    }
    let path = uri.path();
    if path == "/console" || path.starts_with("/console/") || (path == "/" && method == Method::GET) {
        return Destination::Console;
    }
    match (method, path) {
        (&Method::POST, "/upload") => Destination::Upload,
        (&Method::GET, "/images" | "/images/") => Destination::Images,
        (&Method::GET, _) => match path.strip_prefix("/images/") {
            // One segment is an image id; more is an object key of a bucket called `images`.
            Some(id) if !id.is_empty() && !id.contains('/') => Destination::Image(id.to_owned()),
            _ => Destination::S3,
        },
        _ => Destination::S3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (http::HeaderName::from_static(name), value.parse().unwrap())).collect()
    }

    fn at(method: Method, uri: &str, pairs: &[(&'static str, &str)]) -> Destination {
        classify(&method, &uri.parse().unwrap(), &headers(pairs))
    }

    #[test]
    fn requests_go_where_their_client_meant() {
        let s3_signature =
            "AWS4-HMAC-SHA256 Credential=test/20261126/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";
        let sfn_signature = s3_signature.replace("/s3/", "/states/");
        assert_eq!(
            at(
                Method::POST,
                "/",
                &[("x-amz-target", "AWSStepFunctions.StartExecution"), ("authorization", &sfn_signature)]
            ),
            Destination::StepFunctions("StartExecution".into())
        );
        assert!(matches!(
            at(Method::POST, "/", &[("x-amz-target", "DynamoDB_20120810.GetItem")]),
            Destination::UnknownTarget(_)
        ));
        // The bucket is called `images` by default: signed requests are S3's.
        assert_eq!(at(Method::GET, "/images?list-type=2", &[("authorization", s3_signature)]), Destination::S3);
        assert_eq!(at(Method::GET, "/images/abc", &[("authorization", s3_signature)]), Destination::S3);
        assert_eq!(
            at(Method::GET, "/images/uploads/x?X-Amz-Credential=test%2F20261126%2Fus-east-1%2Fs3%2Faws4_request", &[]),
            Destination::S3
        );
        assert_eq!(at(Method::PUT, "/images/uploads/x.jpg", &[("authorization", s3_signature)]), Destination::S3);
        // Unsigned: the upload API, the console, and anonymous reads of objects.
        assert_eq!(at(Method::POST, "/upload", &[]), Destination::Upload);
        assert_eq!(at(Method::GET, "/images/abc-123", &[]), Destination::Image("abc-123".into()));
        assert_eq!(at(Method::GET, "/images?status=FAILED", &[]), Destination::Images);
        assert_eq!(at(Method::GET, "/images/processed/abc/1280.jpg", &[]), Destination::S3);
        assert_eq!(at(Method::GET, "/console/app.js", &[]), Destination::Console);
        assert_eq!(at(Method::GET, "/", &[]), Destination::Console);
    }
}
