//! The DynamoDB metadata store (table `ImageMetadata`, partition key `ImageID`; GSI
//! `StatusUploadedAt` on Status + UploadedAt for listing by status, newest first).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use serde_json::Value;

use super::{ImagePage, ImageRecord, ImageStatus, ListQuery, MetadataStore, RenditionEntry};
use crate::aws::step_error;
use crate::error::StepError;

pub const STATUS_INDEX: &str = "StatusUploadedAt";

type Item = HashMap<String, AttributeValue>;

pub struct DynamoMetadataStore {
    client: Client,
    table: String,
}

impl DynamoMetadataStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoMetadataStore { client, table: table.into() }
    }

    /// Creates the table as the SAM template declares it (for tests and DynamoDB-compatible local
    /// servers; on AWS the template owns the table).
    pub async fn create_table(&self) -> Result<(), StepError> {
        let key = |name: &str, key_type| KeySchemaElement::builder().attribute_name(name).key_type(key_type).build();
        let attribute = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
        };
        let built = |what: &str, error: aws_sdk_dynamodb::error::BuildError| {
            StepError::InternalError(format!("{what}: {error}"))
        };
        let index = GlobalSecondaryIndex::builder()
            .index_name(STATUS_INDEX)
            .key_schema(key("Status", KeyType::Hash).map_err(|e| built("index key", e))?)
            .key_schema(key("UploadedAt", KeyType::Range).map_err(|e| built("index key", e))?)
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(|e| built("index", e))?;
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("ImageID", KeyType::Hash).map_err(|e| built("table key", e))?)
            .attribute_definitions(attribute("ImageID").map_err(|e| built("attribute", e))?)
            .attribute_definitions(attribute("Status").map_err(|e| built("attribute", e))?)
            .attribute_definitions(attribute("UploadedAt").map_err(|e| built("attribute", e))?)
            .global_secondary_indexes(index)
            .send()
            .await
            .map_err(|error| step_error(&format!("creating table {}", self.table), &error, false))?;
        Ok(())
    }
}

#[async_trait]
impl MetadataStore for DynamoMetadataStore {
    async fn put(&self, record: &ImageRecord) -> Result<bool, StepError> {
        // The condition is `supersedes` in DynamoDB's words.
        let mut condition = String::from("attribute_not_exists(ImageID) OR (UploadedAt <= :uploadedAt");
        let mut values = HashMap::from([(":uploadedAt".to_owned(), s(&record.uploaded_at))]);
        if let (ImageStatus::Failed, Some(arn)) = (record.status, &record.execution_arn) {
            condition
                .push_str(" AND (#status = :failed OR attribute_not_exists(ExecutionArn) OR ExecutionArn <> :arn)");
            values.insert(":failed".into(), s(ImageStatus::Failed.as_str()));
            values.insert(":arn".into(), s(arn));
        }
        condition.push(')');
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values));
        if record.status == ImageStatus::Failed && record.execution_arn.is_some() {
            request = request.expression_attribute_names("#status", "Status");
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                tracing::info!(image_id = %record.image_id, status = record.status.as_str(), "a newer record of this image stands; not replaced");
                Ok(false)
            }
            Err(error) => Err(step_error(&format!("writing {} to {}", record.image_id, self.table), &error, false)),
        }
    }

    async fn get(&self, image_id: &str) -> Result<Option<ImageRecord>, StepError> {
        let response = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("ImageID", s(image_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| step_error(&format!("reading {image_id} from {}", self.table), &error, false))?;
        response.item.map(|item| from_item(&item)).transpose()
    }

    async fn list(&self, query: &ListQuery) -> Result<ImagePage, StepError> {
        let start_key = query.next_token.as_deref().map(decode_token).transpose()?;
        let limit = i32::try_from(query.page_size()).unwrap_or(50);
        let what = format!("listing {}", self.table);
        let (items, last_key) = match query.status {
            Some(status) => {
                let response = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(STATUS_INDEX)
                    .key_condition_expression("#status = :status")
                    .expression_attribute_names("#status", "Status")
                    .expression_attribute_values(":status", s(status.as_str()))
                    .scan_index_forward(false)
                    .limit(limit)
                    .set_exclusive_start_key(start_key)
                    .send()
                    .await
                    .map_err(|error| step_error(&what, &error, false))?;
                (response.items.unwrap_or_default(), response.last_evaluated_key)
            }
            None => {
                // Without a status there is no index to order by: a page of the table, sorted.
                let response = self
                    .client
                    .scan()
                    .table_name(&self.table)
                    .limit(limit)
                    .set_exclusive_start_key(start_key)
                    .send()
                    .await
                    .map_err(|error| step_error(&what, &error, false))?;
                (response.items.unwrap_or_default(), response.last_evaluated_key)
            }
        };
        let mut records = items.iter().map(from_item).collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| b.uploaded_at.cmp(&a.uploaded_at));
        Ok(ImagePage { items: records, next_token: last_key.filter(|k| !k.is_empty()).map(|k| encode_token(&k)) })
    }
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

fn to_item(record: &ImageRecord) -> Item {
    let mut item = Item::new();
    let mut put = |name: &str, value: Option<AttributeValue>| {
        if let Some(value) = value {
            item.insert(name.to_owned(), value);
        }
    };
    put("ImageID", Some(s(&record.image_id)));
    put("Status", Some(s(record.status.as_str())));
    put("Bucket", Some(s(&record.bucket)));
    put("Key", Some(s(&record.key)));
    put("VersionId", record.version_id.as_deref().map(s));
    put("OriginalUrl", record.original_url.as_deref().map(s));
    put("ContentType", record.content_type.as_deref().map(s));
    put("Format", record.format.as_deref().map(s));
    put("Bytes", record.bytes.map(n));
    put("Width", record.width.map(n));
    put("Height", record.height.map(n));
    put("Sha256", record.sha256.as_deref().map(s));
    put("UploadedAt", Some(s(&record.uploaded_at)));
    put("ProcessedAt", Some(s(&record.processed_at)));
    put("Exif", record.exif.as_ref().and_then(|exif| serde_json::to_value(exif).ok()).map(|v| json_to_attribute(&v)));
    put(
        "Warnings",
        (!record.warnings.is_empty()).then(|| AttributeValue::L(record.warnings.iter().map(|w| s(w)).collect())),
    );
    put(
        "Renditions",
        (!record.renditions.is_empty()).then(|| {
            AttributeValue::L(
                record
                    .renditions
                    .iter()
                    .map(|r| {
                        AttributeValue::M(HashMap::from([
                            ("Name".to_owned(), s(&r.name)),
                            ("Key".to_owned(), s(&r.key)),
                            ("Url".to_owned(), s(&r.url)),
                            ("Width".to_owned(), n(r.width)),
                            ("Height".to_owned(), n(r.height)),
                            ("Bytes".to_owned(), n(r.bytes)),
                            ("ContentType".to_owned(), s(&r.content_type)),
                        ]))
                    })
                    .collect(),
            )
        }),
    );
    put("ExecutionArn", record.execution_arn.as_deref().map(s));
    put("Error", record.error.as_deref().map(s));
    put("Cause", record.cause.as_deref().map(s));
    put("FailedState", record.failed_state.as_deref().map(s));
    item
}

fn from_item(item: &Item) -> Result<ImageRecord, StepError> {
    let bad = |what: &str| StepError::InternalError(format!("malformed metadata item: {what}"));
    let text = |map: &Item, name: &str| map.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |map: &Item, name: &str| -> Result<Option<u64>, StepError> {
        map.get(name)
            .map(|v| v.as_n().map_err(|_| bad(name)).and_then(|t| t.parse::<u64>().map_err(|_| bad(name))))
            .transpose()
    };
    let small = |map: &Item, name: &str| -> Result<Option<u32>, StepError> {
        number(map, name)?.map(|v| u32::try_from(v).map_err(|_| bad(name))).transpose()
    };
    let required = |name: &str| text(item, name).ok_or_else(|| bad(name));
    let status_text = required("Status")?;
    let renditions = match item.get("Renditions") {
        None => Vec::new(),
        Some(list) => list
            .as_l()
            .map_err(|_| bad("Renditions"))?
            .iter()
            .map(|entry| {
                let map = entry.as_m().map_err(|_| bad("Renditions"))?;
                let field = |name: &str| text(map, name).ok_or_else(|| bad(name));
                Ok(RenditionEntry {
                    name: field("Name")?,
                    key: field("Key")?,
                    url: field("Url")?,
                    width: small(map, "Width")?.ok_or_else(|| bad("Width"))?,
                    height: small(map, "Height")?.ok_or_else(|| bad("Height"))?,
                    bytes: number(map, "Bytes")?.ok_or_else(|| bad("Bytes"))?,
                    content_type: field("ContentType")?,
                })
            })
            .collect::<Result<_, StepError>>()?,
    };
    let exif = item
        .get("Exif")
        .map(|v| serde_json::from_value(attribute_to_json(v)).map_err(|e| bad(&format!("Exif: {e}"))))
        .transpose()?;
    let warnings = match item.get("Warnings") {
        None => Vec::new(),
        Some(list) => list.as_l().map_err(|_| bad("Warnings"))?.iter().filter_map(|w| w.as_s().ok().cloned()).collect(),
    };
    Ok(ImageRecord {
        image_id: required("ImageID")?,
        status: ImageStatus::parse(&status_text).ok_or_else(|| bad("Status"))?,
        bucket: required("Bucket")?,
        key: required("Key")?,
        version_id: text(item, "VersionId"),
        original_url: text(item, "OriginalUrl"),
        content_type: text(item, "ContentType"),
        format: text(item, "Format"),
        bytes: number(item, "Bytes")?,
        width: small(item, "Width")?,
        height: small(item, "Height")?,
        sha256: text(item, "Sha256"),
        uploaded_at: required("UploadedAt")?,
        processed_at: required("ProcessedAt")?,
        exif,
        warnings,
        renditions,
        execution_arn: text(item, "ExecutionArn"),
        error: text(item, "Error"),
        cause: text(item, "Cause"),
        failed_state: text(item, "FailedState"),
    })
}

/// JSON into DynamoDB's types, for the nested EXIF document.
fn json_to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::String(text) => AttributeValue::S(text.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(json_to_attribute).collect()),
        Value::Object(map) => AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), json_to_attribute(v))).collect()),
    }
}

fn attribute_to_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(text) => {
            serde_json::from_str::<serde_json::Number>(text).map(Value::Number).unwrap_or(Value::Null)
        }
        AttributeValue::S(text) => Value::String(text.clone()),
        AttributeValue::L(items) => Value::Array(items.iter().map(attribute_to_json).collect()),
        AttributeValue::M(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), attribute_to_json(v))).collect()),
        _ => Value::Null,
    }
}

/// Pagination tokens carry DynamoDB's LastEvaluatedKey (string attributes only here).
fn encode_token(key: &Item) -> String {
    let map: serde_json::Map<String, Value> = key
        .iter()
        .filter_map(|(name, value)| value.as_s().ok().map(|text| (name.clone(), Value::String(text.clone()))))
        .collect();
    hex::encode(Value::Object(map).to_string())
}

fn decode_token(token: &str) -> Result<Item, StepError> {
    let invalid = || StepError::InvalidInput(format!("invalid pagination token {token:?}"));
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    let map: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    map.into_iter().map(|(name, value)| value.as_str().map(|text| (name, s(text))).ok_or_else(invalid)).collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::record;
    use super::*;

    #[test]
    fn items_round_trip() {
        let mut original = record(ImageStatus::Succeeded, "2026-01-01T00:00:01.000Z", "arn:e1");
        original.width = Some(640);
        original.bytes = Some(12345);
        original.warnings = vec!["odd EXIF".into()];
        original.renditions = vec![RenditionEntry {
            name: "thumb".into(),
            key: "processed/img/thumb.jpg".into(),
            url: "http://x/processed/img/thumb.jpg".into(),
            width: 256,
            height: 171,
            bytes: 9000,
            content_type: "image/jpeg".into(),
        }];
        original.exif = serde_json::from_value(serde_json::json!({"make": "Canon", "iso": 200, "fNumber": 2.8})).ok();
        assert!(original.exif.is_some());
        assert_eq!(from_item(&to_item(&original)).unwrap(), original);
    }

    #[test]
    fn tokens_round_trip_and_bad_ones_are_typed() {
        let key = Item::from([("ImageID".to_owned(), s("a")), ("Status".to_owned(), s("FAILED"))]);
        assert_eq!(decode_token(&encode_token(&key)).unwrap(), key);
        assert_eq!(decode_token("zz").unwrap_err().asl_name(), "InvalidInput");
    }
}
