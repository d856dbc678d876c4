//! The twin's S3 endpoint as S3 clients see it, outside the pipeline's `uploads/` prefix:
//! attributes, ETags, conditions, ranges, copies, listings and deletes through aws-sdk-s3, and a
//! multipart `aws s3 cp` there and back.

use std::path::PathBuf;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::MetadataDirective;
use imgflow_tests::twin::{TWIN_ACCESS_KEY, TWIN_SECRET_KEY, TestTwin};

/// MD5 of `hello world`.
const HELLO_MD5: &str = "5eb63bbbe01eeed093cb22bb8f5acdc3";

fn status<E>(error: &aws_sdk_s3::error::SdkError<E>) -> Option<u16> {
    error.raw_response().map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_keep_their_attributes_through_reads_copies_listings_and_deletes() {
    let twin = TestTwin::start("").await;
    let s3 = twin.s3();
    let put = s3
        .put_object()
        .bucket("images")
        .key("files/hello.txt")
        .content_type("text/plain")
        .cache_control("max-age=60")
        .metadata("owner", "ann")
        .body(ByteStream::from_static(b"hello world"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.e_tag(), Some(format!("\"{HELLO_MD5}\"").as_str()));

    let head = s3.head_object().bucket("images").key("files/hello.txt").send().await.unwrap();
    assert_eq!(head.content_length(), Some(11));
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    assert_eq!(head.metadata().and_then(|m| m.get("owner")).map(String::as_str), Some("ann"));
    assert_eq!(head.e_tag(), put.e_tag());

    // Conditions: create-only puts, If-Match / If-None-Match reads.
    let again = s3
        .put_object()
        .bucket("images")
        .key("files/hello.txt")
        .if_none_match("*")
        .body(ByteStream::from_static(b"other"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&again), Some(412));
    let stale = s3.get_object().bucket("images").key("files/hello.txt").if_match("\"0000\"").send().await.unwrap_err();
    assert_eq!(status(&stale), Some(412));
    let unchanged =
        s3.get_object().bucket("images").key("files/hello.txt").if_none_match(put.e_tag().unwrap()).send().await;
    assert_eq!(unchanged.err().as_ref().and_then(status), Some(304));

    // Ranges.
    let range = s3.get_object().bucket("images").key("files/hello.txt").range("bytes=6-").send().await.unwrap();
    assert_eq!(range.content_range(), Some("bytes 6-10/11"));
    assert_eq!(range.body.collect().await.unwrap().into_bytes().as_ref(), b"world");
    let outside =
        s3.get_object().bucket("images").key("files/hello.txt").range("bytes=50-60").send().await.unwrap_err();
    assert_eq!((status(&outside), outside.code()), (Some(416), Some("InvalidRange")));

    // Copies: the ETag travels; attributes are copied, or replaced when asked.
    let copied = s3
        .copy_object()
        .bucket("images")
        .key("files/copy.txt")
        .copy_source("images/files/hello.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(copied.copy_object_result().and_then(|r| r.e_tag()), put.e_tag());
    let head = s3.head_object().bucket("images").key("files/copy.txt").send().await.unwrap();
    assert_eq!((head.content_type(), head.cache_control()), (Some("text/plain"), Some("max-age=60")));
    s3.copy_object()
        .bucket("images")
        .key("files/copy.txt")
        .copy_source("images/files/copy.txt")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/markdown")
        .send()
        .await
        .unwrap();
    let head = s3.head_object().bucket("images").key("files/copy.txt").send().await.unwrap();
    assert_eq!((head.content_type(), head.cache_control()), (Some("text/markdown"), None));
    assert!(head.metadata().is_none_or(|m| m.is_empty()), "replaced: {:?}", head.metadata());
    let copy = s3.get_object().bucket("images").key("files/copy.txt").send().await.unwrap();
    assert_eq!(copy.body.collect().await.unwrap().into_bytes().as_ref(), b"hello world");
    let failed_copy = s3
        .copy_object()
        .bucket("images")
        .key("files/never.txt")
        .copy_source("images/files/hello.txt")
        .copy_source_if_match("\"0000\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&failed_copy), Some(412));

    // Listings, a page at a time, with common prefixes.
    for key in ["files/deep/a", "files/deep/b"] {
        s3.put_object().bucket("images").key(key).body(ByteStream::from_static(b"x")).send().await.unwrap();
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("images")
            .prefix("files/")
            .delimiter("/")
            .max_keys(1)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        seen.extend(
            page.contents().iter().map(|o| (o.key().unwrap().to_owned(), o.size(), o.e_tag().map(str::to_owned))),
        );
        seen.extend(page.common_prefixes().iter().map(|p| (p.prefix().unwrap().to_owned(), None, None)));
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let quoted = Some(format!("\"{HELLO_MD5}\""));
    assert_eq!(
        seen,
        [
            ("files/copy.txt".to_owned(), Some(11), quoted.clone()),
            ("files/deep/".to_owned(), None, None),
            ("files/hello.txt".to_owned(), Some(11), quoted)
        ]
    );

    // Deletes.
    s3.delete_object().bucket("images").key("files/hello.txt").send().await.unwrap();
    let gone = s3.get_object().bucket("images").key("files/hello.txt").send().await.unwrap_err();
    assert_eq!(gone.code(), Some("NoSuchKey"));
    let objects = ["files/copy.txt", "files/deep/a", "files/deep/b"]
        .map(|key| aws_sdk_s3::types::ObjectIdentifier::builder().key(key).build().unwrap());
    let delete = aws_sdk_s3::types::Delete::builder().set_objects(Some(objects.to_vec())).build().unwrap();
    let deleted = s3.delete_objects().bucket("images").delete(delete).send().await.unwrap();
    assert_eq!(deleted.deleted().len(), 3);
    let left = s3.list_objects_v2().bucket("images").send().await.unwrap();
    assert_eq!(left.key_count(), Some(0));
    let missing_bucket = s3.list_objects_v2().bucket("nowhere").send().await.unwrap_err();
    assert_eq!(missing_bucket.code(), Some("NoSuchBucket"));
    twin.twin.shutdown().await;
}

/// The `aws` binary: `$IMGFLOW_AWS_CLI`, or `aws` on `PATH`.
fn aws_cli() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("IMGFLOW_AWS_CLI") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join("aws")).find(|p| p.is_file())
}

fn aws(cli: &PathBuf, url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(cli)
        .args(args)
        .args(["--endpoint-url", url])
        .env("AWS_ACCESS_KEY_ID", TWIN_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", TWIN_SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("aws runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_goes_up_in_parts_with_the_aws_cli_and_comes_back_whole() {
    let Some(cli) = aws_cli() else {
        panic!("no `aws` binary: scripts/test installs awscli (or set IMGFLOW_AWS_CLI)");
    };
    let twin = TestTwin::start("").await;
    let folder = tempfile::tempdir().unwrap();
    // Over the CLI's 8 MiB multipart threshold: two parts of 8 MiB and 4 MiB.
    let content: Vec<u8> = (0..12u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let (up, down) = (folder.path().join("up.bin"), folder.path().join("down.bin"));
    std::fs::write(&up, &content).unwrap();
    let url = twin.url();
    let (up_arg, down_arg) = (up.to_str().unwrap().to_owned(), down.to_str().unwrap().to_owned());
    let (put, get) = tokio::task::spawn_blocking(move || {
        let put = aws(&cli, &url, &["s3", "cp", &up_arg, "s3://images/files/big.bin"]);
        let get = aws(&cli, &url, &["s3", "cp", "s3://images/files/big.bin", &down_arg]);
        (put, get)
    })
    .await
    .unwrap();
    assert!(put.status.success(), "aws s3 cp up: {}", String::from_utf8_lossy(&put.stderr));
    assert!(get.status.success(), "aws s3 cp down: {}", String::from_utf8_lossy(&get.stderr));
    assert!(std::fs::read(&down).unwrap() == content, "the file comes back as it went");
    let head = twin.s3().head_object().bucket("images").key("files/big.bin").send().await.unwrap();
    assert_eq!(head.content_length(), Some(12 << 20));
    assert!(head.e_tag().unwrap().ends_with("-2\""), "a multipart ETag: {:?}", head.e_tag());
    twin.twin.shutdown().await;
}
