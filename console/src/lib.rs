//! The web console of the local twin: plain HTML, CSS and JavaScript modules (no build step),
//! embedded in the binary so that `imgflow serve` needs nothing at run time.
//!
//! The twin serves `/console/{path}` with [`asset`]. The page talks to the twin's own API on the
//! same origin: `POST /upload`, `GET /images…` and Step Functions operations as `POST /` with
//! `X-Amz-Target: AWSStepFunctions.<Op>`.

/// One embedded file and the Content-Type to serve it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every embedded file, by its path under `/console/`.
const ASSETS: &[(&str, Asset)] = &[
    ("index.html", Asset { content_type: HTML, bytes: include_bytes!("../assets/index.html") }),
    ("style.css", Asset { content_type: CSS, bytes: include_bytes!("../assets/style.css") }),
    ("favicon.svg", Asset { content_type: SVG, bytes: include_bytes!("../assets/favicon.svg") }),
    ("app.js", Asset { content_type: JAVASCRIPT, bytes: include_bytes!("../assets/app.js") }),
    ("api.js", Asset { content_type: JAVASCRIPT, bytes: include_bytes!("../assets/api.js") }),
    ("dom.js", Asset { content_type: JAVASCRIPT, bytes: include_bytes!("../assets/dom.js") }),
    ("ids.js", Asset { content_type: JAVASCRIPT, bytes: include_bytes!("../assets/ids.js") }),
    ("states.js", Asset { content_type: JAVASCRIPT, bytes: include_bytes!("../assets/states.js") }),
    ("layout.js", Asset { content_type: JAVASCRIPT, bytes: include_bytes!("../assets/layout.js") }),
    ("graph.js", Asset { content_type: JAVASCRIPT, bytes: include_bytes!("../assets/graph.js") }),
    ("history.js", Asset { content_type: JAVASCRIPT, bytes: include_bytes!("../assets/history.js") }),
    ("execution.js", Asset { content_type: JAVASCRIPT, bytes: include_bytes!("../assets/execution.js") }),
    ("executions.js", Asset { content_type: JAVASCRIPT, bytes: include_bytes!("../assets/executions.js") }),
    ("upload.js", Asset { content_type: JAVASCRIPT, bytes: include_bytes!("../assets/upload.js") }),
    ("images.js", Asset { content_type: JAVASCRIPT, bytes: include_bytes!("../assets/images.js") }),
    ("image.js", Asset { content_type: JAVASCRIPT, bytes: include_bytes!("../assets/image.js") }),
];

/// The file served at `/console/{path}`: `path` is what follows `/console/`; `""` and
/// `"index.html"` are the page. `None` for anything else (the twin answers 404).
pub fn asset(path: &str) -> Option<Asset> {
    let path = if path.is_empty() { "index.html" } else { path };
    ASSETS.iter().find(|(name, _)| *name == path).map(|(_, asset)| *asset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_served_at_the_root_and_by_name() {
        let root = asset("").expect("the page at the root");
        assert_eq!(root, asset("index.html").unwrap());
        assert_eq!(root.content_type, HTML);
        assert!(std::str::from_utf8(root.bytes).unwrap().contains(r#"<script type="module" src="app.js">"#));
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in ["nope.js", "/app.js", "../Cargo.toml", "app.js/", "APP.JS", "assets/app.js"] {
            assert!(asset(path).is_none(), "{path} should be unknown");
        }
    }

    /// The relative paths a text asset refers to: ES module imports and HTML `src`/`href`.
    fn references(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for (marker, quote) in [("from '", '\''), ("import '", '\''), ("src=\"", '"'), ("href=\"", '"')] {
            for (start, _) in text.match_indices(marker) {
                let rest = &text[start + marker.len()..];
                if let Some(end) = rest.find(quote) {
                    found.push(rest[..end].to_owned());
                }
            }
        }
        found
    }

    #[test]
    fn every_module_and_file_the_page_refers_to_is_embedded() {
        let mut checked = 0;
        for (name, file) in ASSETS {
            if !(name.ends_with(".js") || name.ends_with(".html")) {
                continue;
            }
            let text = std::str::from_utf8(file.bytes).unwrap();
            for reference in references(text) {
                // Links inside the page (#/…) and absolute API paths are not files.
                if reference.starts_with('#') || reference.starts_with('/') || reference.contains("${") {
                    continue;
                }
                let path = reference.trim_start_matches("./");
                assert!(asset(path).is_some(), "{name} refers to {reference}, which is not embedded");
                checked += 1;
            }
        }
        assert!(checked >= 10, "only {checked} references found: the scan is broken");
    }

    #[test]
    fn every_file_in_the_assets_folder_is_served() {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/assets");
        for entry in std::fs::read_dir(folder).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(asset(&name).is_some(), "assets/{name} is not in ASSETS");
        }
    }

    #[test]
    fn scripts_and_styles_have_their_content_types() {
        assert_eq!(asset("app.js").unwrap().content_type, JAVASCRIPT);
        assert_eq!(asset("style.css").unwrap().content_type, CSS);
        assert_eq!(asset("favicon.svg").unwrap().content_type, SVG);
    }
}
