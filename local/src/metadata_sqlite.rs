//! The twin's metadata store: the same `MetadataStore` as DynamoDB, in SQLite under the data
//! folder, with the same write rule (`metadata::supersedes`).

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use imgflow_steps::StepError;
use imgflow_steps::metadata::{ImagePage, ImageRecord, ListQuery, MetadataStore, supersedes};
use rusqlite::{Connection, OptionalExtension, params};

pub struct SqliteMetadataStore {
    connection: Mutex<Connection>,
}

fn internal(error: impl std::fmt::Display) -> StepError {
    StepError::InternalError(format!("metadata store: {error}"))
}

impl SqliteMetadataStore {
    pub fn open(path: &Path) -> Result<Self, StepError> {
        let connection = Connection::open(path).map_err(internal)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 CREATE TABLE IF NOT EXISTS images (
                     image_id    TEXT PRIMARY KEY,
                     status      TEXT NOT NULL,
                     uploaded_at TEXT NOT NULL,
                     record      TEXT NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS images_by_status ON images (status, uploaded_at DESC, image_id DESC);
                 CREATE INDEX IF NOT EXISTS images_by_upload ON images (uploaded_at DESC, image_id DESC);",
            )
            .map_err(internal)?;
        Ok(SqliteMetadataStore { connection: Mutex::new(connection) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn decode(json: &str) -> Result<ImageRecord, StepError> {
    serde_json::from_str(json).map_err(|e| internal(format!("a stored record is unreadable: {e}")))
}

/// Keyset pagination: the token is the (uploadedAt, imageId) of the last record of a page.
fn encode_token(record: &ImageRecord) -> String {
    hex::encode(serde_json::json!([record.uploaded_at, record.image_id]).to_string())
}

fn decode_token(token: &str) -> Result<(String, String), StepError> {
    let invalid = || StepError::InvalidInput(format!("invalid pagination token {token:?}"));
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

#[async_trait]
impl MetadataStore for SqliteMetadataStore {
    async fn put(&self, record: &ImageRecord) -> Result<bool, StepError> {
        let json = serde_json::to_string(record).map_err(internal)?;
        let mut connection = self.lock();
        let transaction = connection.transaction().map_err(internal)?;
        let stored: Option<String> = transaction
            .query_row("SELECT record FROM images WHERE image_id = ?1", [&record.image_id], |row| row.get(0))
            .optional()
            .map_err(internal)?;
        if let Some(stored) = stored
            && !supersedes(record, &decode(&stored)?)
        {
            return Ok(false);
        }
        transaction
            .execute(
                "INSERT INTO images (image_id, status, uploaded_at, record) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (image_id) DO UPDATE SET status = ?2, uploaded_at = ?3, record = ?4",
                params![record.image_id, record.status.as_str(), record.uploaded_at, json],
            )
            .map_err(internal)?;
        transaction.commit().map_err(internal)?;
        Ok(true)
    }

    async fn get(&self, image_id: &str) -> Result<Option<ImageRecord>, StepError> {
        let stored: Option<String> = self
            .lock()
            .query_row("SELECT record FROM images WHERE image_id = ?1", [image_id], |row| row.get(0))
            .optional()
            .map_err(internal)?;
        stored.as_deref().map(decode).transpose()
    }

    async fn list(&self, query: &ListQuery) -> Result<ImagePage, StepError> {
        let after = query.next_token.as_deref().map(decode_token).transpose()?;
        let (after_time, after_id) = after.unzip();
        let limit = query.page_size();
        let connection = self.lock();
        let mut statement = connection
            .prepare_cached(
                "SELECT record FROM images
                 WHERE (?1 IS NULL OR status = ?1)
                   AND (?2 IS NULL OR (uploaded_at, image_id) < (?2, ?3))
                 ORDER BY uploaded_at DESC, image_id DESC
                 LIMIT ?4",
            )
            .map_err(internal)?;
        let status = query.status.map(|s| s.as_str());
        let rows = statement
            .query_map(params![status, after_time, after_id, limit + 1], |row| row.get::<_, String>(0))
            .map_err(internal)?;
        let mut items =
            rows.map(|row| row.map_err(internal).and_then(|json| decode(&json))).collect::<Result<Vec<_>, _>>()?;
        let next_token = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(encode_token)
        } else {
            None
        };
        Ok(ImagePage { items, next_token })
    }
}

#[cfg(test)]
mod tests {
    use imgflow_steps::metadata::ImageStatus;

    use super::*;

    fn record(id: &str, status: ImageStatus, uploaded_at: &str, execution: &str) -> ImageRecord {
        serde_json::from_value(serde_json::json!({
            "imageId": id, "status": status, "bucket": "images", "key": format!("uploads/{id}"),
            "uploadedAt": uploaded_at, "processedAt": "2026-11-25T12:00:00.000Z", "executionArn": execution
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn writes_follow_the_rule_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.db");
        let t = "2026-11-25T10:00:00.000Z";
        {
            let store = SqliteMetadataStore::open(&path).unwrap();
            assert!(store.put(&record("a", ImageStatus::Failed, t, "e1")).await.unwrap());
            assert!(store.put(&record("a", ImageStatus::Succeeded, t, "e1")).await.unwrap());
            assert!(!store.put(&record("a", ImageStatus::Failed, t, "e1")).await.unwrap());
        }
        let store = SqliteMetadataStore::open(&path).unwrap();
        assert_eq!(store.get("a").await.unwrap().unwrap().status, ImageStatus::Succeeded);
        assert_eq!(store.get("missing").await.unwrap(), None);
    }

    #[tokio::test]
    async fn lists_newest_first_by_status_across_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetadataStore::open(&dir.path().join("m.db")).unwrap();
        for i in 0..7 {
            let status = if i % 2 == 0 { ImageStatus::Succeeded } else { ImageStatus::Rejected };
            // Two records share each time, so ties are broken by id.
            store
                .put(&record(&format!("img{i}"), status, &format!("2026-11-25T10:00:0{}.000Z", i / 2), "e"))
                .await
                .unwrap();
        }
        let mut all = Vec::new();
        let mut query = ListQuery { status: None, limit: 3, next_token: None };
        loop {
            let page = store.list(&query).await.unwrap();
            all.extend(page.items.iter().map(|r| r.image_id.clone()));
            match page.next_token {
                Some(token) => query.next_token = Some(token),
                None => break,
            }
        }
        assert_eq!(all, vec!["img6", "img5", "img4", "img3", "img2", "img1", "img0"]);
        let succeeded =
            store.list(&ListQuery { status: Some(ImageStatus::Succeeded), ..ListQuery::default() }).await.unwrap();
        let ids: Vec<_> = succeeded.items.iter().map(|r| r.image_id.as_str()).collect();
        assert_eq!(ids, vec!["img6", "img4", "img2", "img0"]);
        assert!(succeeded.next_token.is_none());
        let bad = ListQuery { next_token: Some("zz".into()), ..ListQuery::default() };
        assert_eq!(store.list(&bad).await.unwrap_err().asl_name(), "InvalidInput");
    }
}
