//! `imgflow process` as a user runs it: the binary on files and folders.

use std::path::Path;
use std::process::Command;

use imgflow_tests::fixtures;
use serde_json::Value;

fn imgflow(args: &[&str], dir: &Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_imgflow"))
        .args(args)
        .current_dir(dir)
        .env_remove("IMGFLOW_RENDITIONS")
        .output()
        .expect("imgflow runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.code().is_some(), "imgflow was killed: {}", String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), stdout)
}

fn metadata(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_folder_of_good_and_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    std::fs::write(photos.join("wide.jpg"), fixtures::jpeg(1600, 800)).unwrap();
    let jpeg = fixtures::jpeg(200, 200);
    std::fs::write(photos.join("broken.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    std::fs::write(photos.join("fake.png"), b"%PDF-1.4 not an image").unwrap();
    std::fs::write(photos.join("notes.txt"), b"ignored when walking a folder").unwrap();

    let (code, stdout) = imgflow(&["process", "photos", "--out", "out"], dir.path());
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("REJECTED") && stdout.contains("InvalidImage") && stdout.contains("UnsupportedFormat"),
        "{stdout}"
    );
    assert!(stdout.contains("1 succeeded, 2 rejected, 0 failed"), "{stdout}");

    let out = dir.path().join("out");
    let wide = metadata(&out.join("wide/metadata.json"));
    assert_eq!(wide["status"], "SUCCEEDED");
    assert_eq!((wide["width"].as_u64(), wide["height"].as_u64()), (Some(1600), Some(800)));
    assert_eq!(
        wide["renditions"][0]["key"].as_str().unwrap(),
        format!("processed/{}/thumb.jpg", wide["imageId"].as_str().unwrap())
    );
    let thumb = image::open(out.join("wide/thumb.jpg")).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (256, 128));
    let medium = image::open(out.join("wide/medium.jpg")).unwrap();
    assert_eq!((medium.width(), medium.height()), (1280, 640));

    let broken = metadata(&out.join("broken/metadata.json"));
    assert_eq!((broken["status"].as_str(), broken["error"].as_str()), (Some("REJECTED"), Some("InvalidImage")));
    assert!(!out.join("broken/thumb.jpg").exists());
    assert_eq!(metadata(&out.join("fake/metadata.json"))["error"], "UnsupportedFormat");
    assert!(!out.join("notes").exists());
    // Nothing half-written is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn all_good_exits_zero_and_reruns_replace_the_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.png"), fixtures::png(300, 600)).unwrap();
    for _ in 0..2 {
        let (code, stdout) = imgflow(&["process", "a.png", "--out", "out"], dir.path());
        assert_eq!(code, 0, "{stdout}");
    }
    let names: Vec<String> = std::fs::read_dir(dir.path().join("out/a"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, vec!["medium.jpg", "metadata.json", "thumb.jpg"]);
    let thumb = image::open(dir.path().join("out/a/thumb.jpg")).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (128, 256));
}

#[test]
fn a_missing_path_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _) = imgflow(&["process", "nowhere.jpg", "--out", "out"], dir.path());
    assert_eq!(code, 2);
}
