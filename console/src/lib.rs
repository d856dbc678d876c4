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
    ("executions.js", Asset { content_type: JAVASCRIPT, bytes: include_bytes!("../assets/executions.js") }),
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

    #[test]
    fn scripts_and_styles_have_their_content_types() {
        assert_eq!(asset("app.js").unwrap().content_type, JAVASCRIPT);
        assert_eq!(asset("style.css").unwrap().content_type, CSS);
        assert_eq!(asset("favicon.svg").unwrap().content_type, SVG);
    }
}
