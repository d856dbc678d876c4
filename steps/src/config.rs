//! Step configuration from the environment (set by the SAM template or by the local twin).

use imgflow_imaging::{Limits, RenditionSpec};

pub const DEFAULT_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
pub const DEFAULT_TABLE_NAME: &str = "ImageMetadata";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid configuration: {name}: {message}")]
pub struct ConfigError {
    pub name: &'static str,
    pub message: String,
}

/// Everything the steps can be told. Each function reads all of it; each uses its part.
#[derive(Debug, Clone, PartialEq)]
pub struct StepConfig {
    pub limits: Limits,
    pub renditions: Vec<RenditionSpec>,
    pub keep_gps: bool,
    pub cache_control: String,
    pub table_name: String,
    /// URL prefix to which `/{key}` is appended; `None` means the bucket's S3 URL.
    pub public_base_url: Option<String>,
    /// `AWS_REGION`, for S3 URLs.
    pub region: Option<String>,
}

impl Default for StepConfig {
    fn default() -> Self {
        StepConfig {
            limits: Limits::default(),
            renditions: RenditionSpec::defaults(),
            keep_gps: false,
            cache_control: DEFAULT_CACHE_CONTROL.to_owned(),
            table_name: DEFAULT_TABLE_NAME.to_owned(),
            public_base_url: None,
            region: None,
        }
    }
}

impl StepConfig {
    /// Reads `IMGFLOW_*` variables from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests and the twin need not touch the process
    /// environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = StepConfig::default();
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match lookup(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(value) => match value.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(ConfigError { name, message: format!("expected a positive whole number, got {value:?}") }),
                },
            }
        };
        let limits = Limits {
            max_bytes: number("IMGFLOW_MAX_BYTES", defaults.limits.max_bytes)?,
            max_pixels: number("IMGFLOW_MAX_PIXELS", defaults.limits.max_pixels)?,
        };
        let renditions = match lookup("IMGFLOW_RENDITIONS").filter(|v| !v.trim().is_empty()) {
            None => defaults.renditions,
            Some(json) => RenditionSpec::parse_list(&json)
                .map_err(|message| ConfigError { name: "IMGFLOW_RENDITIONS", message })?,
        };
        let keep_gps = match lookup("IMGFLOW_KEEP_GPS").map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if v.is_empty() || v == "false" || v == "0" => false,
            Some(v) if v == "true" || v == "1" => true,
            Some(v) => {
                return Err(ConfigError {
                    name: "IMGFLOW_KEEP_GPS",
                    message: format!("expected true or false, got {v:?}"),
                });
            }
        };
        let non_empty = |name| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Ok(StepConfig {
            limits,
            renditions,
            keep_gps,
            cache_control: non_empty("IMGFLOW_CACHE_CONTROL").unwrap_or(defaults.cache_control),
            table_name: non_empty("IMGFLOW_TABLE_NAME").unwrap_or(defaults.table_name),
            public_base_url: non_empty("IMGFLOW_PUBLIC_BASE_URL").map(|v| v.trim_end_matches('/').to_owned()),
            region: non_empty("AWS_REGION"),
        })
    }

    /// The public URL of an object in `bucket`.
    pub fn object_url(&self, bucket: &str, key: &str) -> String {
        let path: String = key
            .split('/')
            .map(|segment| form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>().replace('+', "%20"))
            .collect::<Vec<_>>()
            .join("/");
        match &self.public_base_url {
            Some(base) => format!("{base}/{path}"),
            None => match &self.region {
                Some(region) => format!("https://{bucket}.s3.{region}.amazonaws.com/{path}"),
                None => format!("https://{bucket}.s3.amazonaws.com/{path}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<StepConfig, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        StepConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_design() {
        let c = config(&[]).unwrap();
        assert_eq!(c.limits.max_bytes, 50_000_000);
        assert_eq!(c.limits.max_pixels, 50_000_000);
        assert_eq!(c.renditions.len(), 2);
        assert!(!c.keep_gps);
        assert_eq!(c.table_name, "ImageMetadata");
    }

    #[test]
    fn every_variable_is_read_and_checked() {
        let c = config(&[
            ("IMGFLOW_MAX_BYTES", "1000"),
            ("IMGFLOW_MAX_PIXELS", "2000"),
            ("IMGFLOW_KEEP_GPS", "true"),
            ("IMGFLOW_RENDITIONS", r#"[{"name":"small","maxWidth":64,"maxHeight":32,"format":"png"}]"#),
            ("IMGFLOW_TABLE_NAME", "T"),
            ("IMGFLOW_PUBLIC_BASE_URL", "http://127.0.0.1:4566/images/"),
        ])
        .unwrap();
        assert_eq!((c.limits.max_bytes, c.limits.max_pixels), (1000, 2000));
        assert!(c.keep_gps);
        assert_eq!(c.renditions[0].name, "small");
        assert_eq!(c.table_name, "T");
        assert_eq!(c.object_url("images", "uploads/a b.jpg"), "http://127.0.0.1:4566/images/uploads/a%20b.jpg");
        assert_eq!(config(&[("IMGFLOW_MAX_BYTES", "lots")]).unwrap_err().name, "IMGFLOW_MAX_BYTES");
        assert_eq!(config(&[("IMGFLOW_KEEP_GPS", "yes please")]).unwrap_err().name, "IMGFLOW_KEEP_GPS");
        assert_eq!(config(&[("IMGFLOW_RENDITIONS", "[]")]).unwrap_err().name, "IMGFLOW_RENDITIONS");
    }

    #[test]
    fn s3_urls_by_region() {
        let c = config(&[("AWS_REGION", "eu-west-1")]).unwrap();
        assert_eq!(
            c.object_url("b", "processed/x/thumb.jpg"),
            "https://b.s3.eu-west-1.amazonaws.com/processed/x/thumb.jpg"
        );
    }
}
