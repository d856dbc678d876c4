//! The Map state: inline iteration (and DISTRIBUTED without an ItemReader, run the same way),
//! with ItemsPath/Items, ItemSelector/Parameters, MaxConcurrency and tolerated failures.

use serde_json::Value;

use crate::definition::{Expr, Fields, Machine, ResultHandling, parse_machine};
use crate::states::task::parse_handling;
use crate::template::Template;

/// A Map state.
#[derive(Debug)]
pub struct Map {
    pub processor: Machine,
    /// `ProcessorConfig.Mode` is DISTRIBUTED.
    pub distributed: bool,
    /// JSONPath `ItemsPath` (a path or, in JSONata mode, `Items`).
    pub items: Option<Expr<Value>>,
    /// JSONPath `ItemSelector` (or legacy `Parameters`).
    pub item_selector: Option<Template>,
    /// JSONata `ItemSelector`.
    pub item_selector_jsonata: Option<Value>,
    pub max_concurrency: Option<Expr<u64>>,
    pub tolerated_failure_count: Option<Expr<u64>>,
    pub tolerated_failure_percentage: Option<Expr<f64>>,
    pub label: Option<String>,
    pub handling: ResultHandling,
}

impl Map {
    pub(crate) fn parse(fields: &mut Fields) -> Map {
        let processor_key = if fields.has("ItemProcessor") { "ItemProcessor" } else { "Iterator" };
        let mut distributed = false;
        let processor = match fields.get(processor_key) {
            Some(Value::Object(object)) => {
                let location = fields.at(processor_key);
                if let Some(config) = object.get("ProcessorConfig") {
                    distributed = config.get("Mode").and_then(Value::as_str) == Some("DISTRIBUTED");
                }
                let mut inner = Fields::new(object, location.clone(), fields.diagnostics);
                inner.get("ProcessorConfig");
                inner.string("Comment");
                inner.finish(&["StartAt", "States"]);
                parse_machine(object, &location, fields.query_language, fields.diagnostics)
            }
            _ => {
                fields.error_here("A Map state needs an ItemProcessor (or Iterator) object");
                parse_machine(&serde_json::Map::new(), "", fields.query_language, &mut Vec::new())
            }
        };
        let items = if fields.is_jsonata() {
            match fields.get("Items") {
                Some(Value::String(s)) => Some(Expr::Jsonata(s.clone())),
                Some(v @ Value::Array(_)) => Some(Expr::Literal(v.clone())),
                Some(_) => {
                    fields.error("Items", "Items must be an array or a JSONata expression");
                    None
                }
                None => None,
            }
        } else {
            fields.dynamic("ItemsPath").map(Expr::Dynamic)
        };
        let (item_selector, item_selector_jsonata) = if fields.is_jsonata() {
            (None, fields.jsonata_template("ItemSelector"))
        } else if fields.has("ItemSelector") {
            (fields.template("ItemSelector"), None)
        } else {
            (fields.template("Parameters"), None)
        };
        let max_concurrency =
            fields.expr("MaxConcurrency", Some("MaxConcurrencyPath"), Value::as_u64, "a non-negative integer");
        let tolerated_failure_count = fields.expr(
            "ToleratedFailureCount",
            Some("ToleratedFailureCountPath"),
            Value::as_u64,
            "a non-negative integer",
        );
        let tolerated_failure_percentage = fields.expr(
            "ToleratedFailurePercentage",
            Some("ToleratedFailurePercentagePath"),
            |v| v.as_f64().filter(|p| (0.0..=100.0).contains(p)),
            "a number from 0 to 100",
        );
        let label = fields.string("Label");
        for unsupported in ["ItemReader", "ItemBatcher", "ResultWriter"] {
            if fields.get(unsupported).is_some() {
                fields.error(unsupported, format!("{unsupported} needs Amazon S3 and is not supported by this engine"));
            }
        }
        let handling = parse_handling(fields);
        Map {
            processor,
            distributed,
            items,
            item_selector,
            item_selector_jsonata,
            max_concurrency,
            tolerated_failure_count,
            tolerated_failure_percentage,
            label,
            handling,
        }
    }
}
