//! Where the twin's S3 keeps objects: each object's bytes in one file of its own, and everything
//! else about it (size, ETag, content type, user metadata, checksums, last-modified, which file)
//! in one SQLite record — the one source of truth that reads, HEAD, listings and copies answer
//! from.
//!
//! Layout under the root folder (`DATA_DIR/s3`):
//! - `.objects.sqlite`: buckets, object records, multipart uploads and their parts;
//! - `.blobs/{id}`: object and part contents, each written once under a fresh name and never
//!   changed afterwards (a new version of an object is a new file);
//! - `.lock`: held shared by every open store, exclusively only while one opens alone.
//!
//! A write creates its file, fills it, then commits the record that names it (replacing the
//! previous record in the same transaction), then deletes the file the previous record named.
//! One file creation per object, no rename, no side files. After a `kill -9` at any point a
//! reader sees either the previous object or the new one: a file without a record (a write cut
//! short, or a replaced file not yet deleted) is deleted when a store next opens alone, and a
//! record whose file is gone is dropped then.
//!
//! Folders written by s3s-fs (the twin's earlier backend: `{bucket}/{key}` files with JSON side
//! files) are migrated when the database is first created: their files stay where they are and
//! get records; the side files go.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension, params};
use s3s::crypto::{Checksum as _, Md5};
use s3s::{S3Error, S3Result, s3_error};
use serde::{Deserialize, Serialize};

const DATABASE: &str = ".objects.sqlite";
const BLOBS: &str = ".blobs";
const LOCK: &str = ".lock";

/// The database layout this code writes, kept in `PRAGMA user_version` (0: a new file).
const LAYOUT: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE buckets (name TEXT PRIMARY KEY, created_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified_ms INTEGER NOT NULL,
    attributes TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    access_key TEXT,
    attributes TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE parts (
    upload_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    modified_ms INTEGER NOT NULL,
    PRIMARY KEY (upload_id, number)
) WITHOUT ROWID;
";

/// Additional checksums of an object (base64, as S3 answers them); field names as s3s-fs stored
/// them, so that its files migrate as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksums {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_crc32: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_crc32c: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_sha1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_crc64nvme: Option<String>,
}

/// What S3 keeps about an object besides its bytes, size and ETag. The field names are s3s-fs's
/// (its `.metadata.json` side files deserialize into this).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAttributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_metadata: Option<HashMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// RFC 3339, as S3's `Expires` is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website_redirect_location: Option<String>,
    #[serde(default, flatten)]
    pub checksums: Checksums,
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    pub key: String,
    /// The file holding the bytes, relative to the store's root.
    pub blob: String,
    pub size: u64,
    /// Bare (unquoted): the MD5 of the bytes in hex, or `{hex}-{parts}` for multipart objects.
    pub etag: String,
    pub modified: SystemTime,
    pub attributes: ObjectAttributes,
}

/// One line of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub modified: SystemTime,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub access_key: Option<String>,
    pub attributes: ObjectAttributes,
}

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    pub number: i32,
    pub blob: String,
    pub size: u64,
    /// MD5 of the part in hex.
    pub etag: String,
    pub modified: SystemTime,
}

/// A file being written for an object or a part; deleted if dropped before it is committed.
pub struct NewBlob {
    /// Relative to the store's root.
    name: String,
    path: PathBuf,
    committed: bool,
}

impl NewBlob {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file now belongs to a record.
    fn committed(mut self) {
        self.committed = true;
    }
}

impl Drop for NewBlob {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub struct ObjectStore {
    root: PathBuf,
    db: Mutex<Connection>,
    /// Held shared for as long as the store is open (see [`ObjectStore::open`]).
    lock: File,
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStore").field("root", &self.root).finish_non_exhaustive()
    }
}

/// An S3 InternalError naming what failed.
pub fn internal(context: impl std::fmt::Display, error: impl std::fmt::Display) -> S3Error {
    s3_error!(InternalError, "{context}: {error}")
}

/// The time a record is written, to the millisecond it is kept with.
pub fn now() -> SystemTime {
    from_millis(millis(SystemTime::now()))
}

fn millis(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_millis(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn attributes_json(attributes: &ObjectAttributes) -> S3Result<String> {
    serde_json::to_string(attributes).map_err(|e| internal("cannot encode object attributes", e))
}

fn size_column(size: u64) -> S3Result<i64> {
    i64::try_from(size).map_err(|_| s3_error!(EntityTooLarge))
}

/// A size as read back (written by [`size_column`], so never negative).
fn size_from_column(size: i64) -> u64 {
    u64::try_from(size).unwrap_or(0)
}

/// An object's record by bucket and key, in the columns [`object_from_row`] reads.
const SELECT_OBJECT: &str =
    "SELECT key, blob, size, etag, modified_ms, attributes FROM objects WHERE bucket = ?1 AND key = ?2";

/// A row's columns as a record; a column that does not decode is a conversion failure.
fn object_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectRecord> {
    let attributes: String = row.get(5)?;
    Ok(ObjectRecord {
        key: row.get(0)?,
        blob: row.get(1)?,
        size: size_from_column(row.get(2)?),
        etag: row.get(3)?,
        modified: from_millis(row.get(4)?),
        attributes: serde_json::from_str(&attributes)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e)))?,
    })
}

impl ObjectStore {
    /// Opens (creating, or migrating from s3s-fs's layout) the store under `root`. When no other
    /// store has the folder open, leftovers of interrupted writes are resolved first.
    pub fn open(root: &Path) -> S3Result<ObjectStore> {
        let fail = |what: &str, e: &dyn std::fmt::Display| internal(format!("{what} in {}", root.display()), e);
        std::fs::create_dir_all(root.join(BLOBS)).map_err(|e| fail("cannot create the blob folder", &e))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join(LOCK))
            .map_err(|e| fail("cannot open the lock file", &e))?;
        let alone = lock.try_lock().is_ok();
        let mut connection = Connection::open(root.join(DATABASE)).map_err(|e| fail("cannot open the database", &e))?;
        // WAL with synchronous=NORMAL: a commit survives a process crash (it is in the WAL file
        // before the call returns); only a power loss may drop the last ones.
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| connection.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| connection.busy_timeout(Duration::from_secs(5)))
            .map_err(|e| fail("cannot set up the database", &e))?;
        prepare(root, &mut connection)?;
        let store = ObjectStore { root: root.to_owned(), db: Mutex::new(connection), lock };
        if alone {
            store.recover()?;
        }
        // Held shared from now on: a store opening the folder meanwhile leaves recovery to a
        // later, lone opening (it could not tell our writes in flight from leftovers).
        store.lock.lock_shared().map_err(|e| fail("cannot lock", &e))?;
        Ok(store)
    }

    /// Deletes files no record names and records whose file is gone (a crash between writing a
    /// file and committing its record, or between committing and deleting the replaced file).
    fn recover(&self) -> S3Result<()> {
        let db = self.db()?;
        let referenced: HashSet<String> = {
            let mut statement =
                db.prepare("SELECT blob FROM objects UNION ALL SELECT blob FROM parts").map_err(database)?;
            statement.query_map([], |row| row.get(0)).map_err(database)?.collect::<Result<_, _>>().map_err(database)?
        };
        let blobs = self.root.join(BLOBS);
        let entries = std::fs::read_dir(&blobs).map_err(|e| internal(blobs.display(), e))?;
        let mut removed = 0usize;
        for entry in entries.flatten() {
            let name = format!("{BLOBS}/{}", entry.file_name().to_string_lossy());
            if !referenced.contains(&name) && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        let missing: Vec<String> = referenced.into_iter().filter(|blob| !self.root.join(blob).is_file()).collect();
        for blob in &missing {
            db.execute("DELETE FROM objects WHERE blob = ?1", [blob]).map_err(database)?;
            db.execute("DELETE FROM parts WHERE blob = ?1", [blob]).map_err(database)?;
        }
        if removed > 0 || !missing.is_empty() {
            tracing::warn!(
                unreferenced_files_removed = removed,
                records_without_file_dropped = missing.len(),
                "object store: resolved the leftovers of an interrupted run"
            );
        }
        Ok(())
    }

    fn db(&self) -> S3Result<MutexGuard<'_, Connection>> {
        self.db.lock().map_err(|_| internal("object store", "a previous operation panicked"))
    }

    pub fn path(&self, blob: &str) -> PathBuf {
        self.root.join(blob)
    }

    /// A new, empty file for an object's or a part's bytes.
    pub fn create_blob(&self) -> S3Result<(NewBlob, File)> {
        let (name, path) = self.new_blob_name();
        let file = File::options().write(true).create_new(true).open(&path).map_err(|e| internal(path.display(), e))?;
        Ok((NewBlob { name, path, committed: false }, file))
    }

    /// A new name for the file at `source` (files never change once written, so a copy of an
    /// object can share its bytes).
    pub fn link_blob(&self, source: &Path) -> std::io::Result<NewBlob> {
        let (name, path) = self.new_blob_name();
        std::fs::hard_link(source, &path)?;
        Ok(NewBlob { name, path, committed: false })
    }

    fn new_blob_name(&self) -> (String, PathBuf) {
        let name = format!("{BLOBS}/{}", uuid::Uuid::new_v4().simple());
        let path = self.root.join(&name);
        (name, path)
    }

    /// Deletes a file no record names any more; one that cannot be deleted is left for the next
    /// recovery.
    pub fn remove_blob(&self, blob: &str) {
        if let Err(error) = std::fs::remove_file(self.root.join(blob))
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(blob, %error, "object store: cannot delete a replaced file");
        }
    }

    // ---- buckets ----

    pub fn bucket_exists(&self, bucket: &str) -> S3Result<bool> {
        let db = self.db()?;
        has_bucket(&db, bucket)
    }

    fn require_bucket(&self, connection: &Connection, bucket: &str) -> S3Result<()> {
        if has_bucket(connection, bucket)? { Ok(()) } else { Err(s3_error!(NoSuchBucket)) }
    }

    /// Creates `bucket`; false if it exists already.
    pub fn create_bucket(&self, bucket: &str) -> S3Result<bool> {
        let created = self
            .db()?
            .execute(
                "INSERT INTO buckets (name, created_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![bucket, millis(SystemTime::now())],
            )
            .map_err(database)?;
        Ok(created == 1)
    }

    /// Deletes an empty bucket.
    pub fn delete_bucket(&self, bucket: &str) -> S3Result<()> {
        let mut db = self.db()?;
        let transaction = db.transaction().map_err(database)?;
        self.require_bucket(&transaction, bucket)?;
        let used: bool = transaction
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1) OR EXISTS (SELECT 1 FROM uploads WHERE bucket = ?1)",
                [bucket],
                |row| row.get(0),
            )
            .map_err(database)?;
        if used {
            return Err(s3_error!(BucketNotEmpty));
        }
        transaction.execute("DELETE FROM buckets WHERE name = ?1", [bucket]).map_err(database)?;
        transaction.commit().map_err(database)
    }

    /// Every bucket with its creation time, by name.
    pub fn buckets(&self) -> S3Result<Vec<(String, SystemTime)>> {
        let db = self.db()?;
        let mut statement = db.prepare("SELECT name, created_ms FROM buckets ORDER BY name").map_err(database)?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, from_millis(row.get(1)?)))).map_err(database)?;
        rows.collect::<Result<_, _>>().map_err(database)
    }

    // ---- objects ----

    /// The record of `bucket`/`key`: NoSuchKey (or NoSuchBucket) when there is none.
    pub fn object(&self, bucket: &str, key: &str) -> S3Result<ObjectRecord> {
        let db = self.db()?;
        let found = db.query_row(SELECT_OBJECT, [bucket, key], object_from_row).optional().map_err(database)?;
        match found {
            Some(record) => Ok(record),
            None => {
                self.require_bucket(&db, bucket)?;
                Err(s3_error!(NoSuchKey))
            }
        }
    }

    /// Makes `blob` the object `bucket`/`record.key` in one transaction, after `check` accepted
    /// the object it replaces (if any); the replaced object's file is deleted after the commit.
    pub fn commit_object(
        &self,
        bucket: &str,
        blob: Option<NewBlob>,
        record: &ObjectRecord,
        check: impl FnOnce(Option<&ObjectRecord>) -> S3Result<()>,
    ) -> S3Result<()> {
        let replaced = {
            let mut db = self.db()?;
            let transaction =
                db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(database)?;
            self.require_bucket(&transaction, bucket)?;
            let existing = transaction
                .query_row(SELECT_OBJECT, [bucket, &record.key], object_from_row)
                .optional()
                .map_err(database)?;
            check(existing.as_ref())?;
            insert_object(&transaction, bucket, record)?;
            transaction.commit().map_err(database)?;
            existing.map(|e| e.blob).filter(|old| *old != record.blob)
        };
        if let Some(blob) = blob {
            blob.committed();
        }
        if let Some(old) = replaced {
            self.remove_blob(&old);
        }
        Ok(())
    }

    /// Deletes `bucket`/`key` (nothing if absent; NoSuchBucket if the bucket is).
    pub fn delete_object(&self, bucket: &str, key: &str) -> S3Result<()> {
        let removed: Option<String> = {
            let db = self.db()?;
            let blob = db
                .query_row("DELETE FROM objects WHERE bucket = ?1 AND key = ?2 RETURNING blob", [bucket, key], |row| {
                    row.get(0)
                })
                .optional()
                .map_err(database)?;
            if blob.is_none() {
                self.require_bucket(&db, bucket)?;
            }
            blob
        };
        if let Some(blob) = removed {
            self.remove_blob(&blob);
        }
        Ok(())
    }

    /// Up to `limit` objects of `bucket` whose keys start with `prefix` and sort after `after`,
    /// in key order.
    pub fn list(&self, bucket: &str, prefix: &str, after: &str, limit: usize) -> S3Result<Vec<ListedObject>> {
        let db = self.db()?;
        self.require_bucket(&db, bucket)?;
        let mut statement = db
            .prepare_cached(
                "SELECT key, size, etag, modified_ms FROM objects
                 WHERE bucket = ?1 AND key > ?2 AND key >= ?3 ORDER BY key LIMIT ?4",
            )
            .map_err(database)?;
        let rows = statement
            .query_map(params![bucket, after, prefix, i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                Ok(ListedObject {
                    key: row.get(0)?,
                    size: size_from_column(row.get(1)?),
                    etag: row.get(2)?,
                    modified: from_millis(row.get(3)?),
                })
            })
            .map_err(database)?;
        let mut listed = Vec::new();
        for row in rows {
            let object = row.map_err(database)?;
            // Keys are in order: past the prefix, nothing further matches.
            if !object.key.starts_with(prefix) {
                break;
            }
            listed.push(object);
        }
        Ok(listed)
    }

    // ---- multipart uploads ----

    pub fn create_upload(&self, upload: &UploadRecord) -> S3Result<()> {
        let db = self.db()?;
        self.require_bucket(&db, &upload.bucket)?;
        db.execute(
            "INSERT INTO uploads (upload_id, bucket, key, access_key, attributes, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                upload.upload_id,
                upload.bucket,
                upload.key,
                upload.access_key,
                attributes_json(&upload.attributes)?,
                millis(SystemTime::now())
            ],
        )
        .map_err(database)?;
        Ok(())
    }

    /// The upload `upload_id` of `bucket`/`key`: NoSuchUpload when there is none.
    pub fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> S3Result<UploadRecord> {
        let db = self.db()?;
        let found = db
            .query_row(
                "SELECT access_key, attributes FROM uploads WHERE upload_id = ?1 AND bucket = ?2 AND key = ?3",
                [upload_id, bucket, key],
                |row| Ok((row.get::<_, Option<String>>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()
            .map_err(database)?;
        let (access_key, attributes) = found.ok_or_else(|| s3_error!(NoSuchUpload))?;
        Ok(UploadRecord {
            upload_id: upload_id.to_owned(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            access_key,
            attributes: serde_json::from_str(&attributes).map_err(|e| internal("upload record", e))?,
        })
    }

    /// Records `part` of `upload_id` (replacing an earlier upload of the same number).
    pub fn commit_part(&self, upload_id: &str, blob: NewBlob, part: &PartRecord) -> S3Result<()> {
        let replaced: Option<String> = {
            let mut db = self.db()?;
            let transaction =
                db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(database)?;
            let open: bool = transaction
                .query_row("SELECT EXISTS (SELECT 1 FROM uploads WHERE upload_id = ?1)", [upload_id], |row| row.get(0))
                .map_err(database)?;
            if !open {
                return Err(s3_error!(NoSuchUpload));
            }
            let old = transaction
                .query_row(
                    "SELECT blob FROM parts WHERE upload_id = ?1 AND number = ?2",
                    params![upload_id, part.number],
                    |row| row.get(0),
                )
                .optional()
                .map_err(database)?;
            transaction
                .execute(
                    "INSERT OR REPLACE INTO parts (upload_id, number, blob, size, etag, modified_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![upload_id, part.number, part.blob, size_column(part.size)?, part.etag, millis(part.modified)],
                )
                .map_err(database)?;
            transaction.commit().map_err(database)?;
            old
        };
        blob.committed();
        if let Some(old) = replaced {
            self.remove_blob(&old);
        }
        Ok(())
    }

    /// The parts of `upload_id`, by number.
    pub fn parts(&self, upload_id: &str) -> S3Result<Vec<PartRecord>> {
        let db = self.db()?;
        let mut statement = db
            .prepare("SELECT number, blob, size, etag, modified_ms FROM parts WHERE upload_id = ?1 ORDER BY number")
            .map_err(database)?;
        let rows = statement
            .query_map([upload_id], |row| {
                Ok(PartRecord {
                    number: row.get(0)?,
                    blob: row.get(1)?,
                    size: size_from_column(row.get(2)?),
                    etag: row.get(3)?,
                    modified: from_millis(row.get(4)?),
                })
            })
            .map_err(database)?;
        rows.collect::<Result<_, _>>().map_err(database)
    }

    /// Ends `upload_id`: its records go, then its part files.
    pub fn end_upload(&self, upload_id: &str) -> S3Result<()> {
        let blobs: Vec<String> = {
            let mut db = self.db()?;
            let transaction = db.transaction().map_err(database)?;
            let blobs = {
                let mut statement =
                    transaction.prepare("DELETE FROM parts WHERE upload_id = ?1 RETURNING blob").map_err(database)?;
                statement
                    .query_map([upload_id], |row| row.get(0))
                    .map_err(database)?
                    .collect::<Result<Vec<String>, _>>()
                    .map_err(database)?
            };
            transaction.execute("DELETE FROM uploads WHERE upload_id = ?1", [upload_id]).map_err(database)?;
            transaction.commit().map_err(database)?;
            blobs
        };
        for blob in blobs {
            self.remove_blob(&blob);
        }
        Ok(())
    }
}

/// Creates the schema on a new file (migrating s3s-fs's folders), or checks the layout.
fn prepare(root: &Path, connection: &mut Connection) -> S3Result<()> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(database)?;
    let layout: i64 = transaction.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(database)?;
    match layout {
        0 => {
            transaction.execute_batch(SCHEMA).map_err(database)?;
            let legacy = legacy::scan(root)?;
            for bucket in &legacy.buckets {
                transaction
                    .execute(
                        "INSERT INTO buckets (name, created_ms) VALUES (?1, ?2)",
                        params![bucket.0, millis(bucket.1)],
                    )
                    .map_err(database)?;
            }
            for (bucket, record) in &legacy.objects {
                insert_object(&transaction, bucket, record)?;
            }
            transaction.pragma_update(None, "user_version", LAYOUT).map_err(database)?;
            transaction.commit().map_err(database)?;
            if !legacy.objects.is_empty() {
                tracing::info!(objects = legacy.objects.len(), root = %root.display(), "migrated s3s-fs objects");
            }
            legacy::remove_side_files(root);
            Ok(())
        }
        LAYOUT => transaction.commit().map_err(database),
        newer => Err(internal(
            format!("{}", root.join(DATABASE).display()),
            format!("layout {newer} is newer than this imgflow understands ({LAYOUT})"),
        )),
    }
}

fn database(error: rusqlite::Error) -> S3Error {
    internal("the object database", error)
}

fn has_bucket(connection: &Connection, bucket: &str) -> S3Result<bool> {
    connection
        .query_row("SELECT 1 FROM buckets WHERE name = ?1", [bucket], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
        .map_err(database)
}

fn insert_object(connection: &Connection, bucket: &str, record: &ObjectRecord) -> S3Result<()> {
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO objects (bucket, key, blob, size, etag, modified_ms, attributes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                bucket,
                record.key,
                record.blob,
                size_column(record.size).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(3, i64::MAX))?,
                record.etag,
                millis(record.modified),
                attributes_json(&record.attributes)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(format!("{e:?}").into()))?,
            ])
        })
        .map_err(database)?;
    Ok(())
}

/// MD5 of a file's bytes in hex (objects migrated without a recorded ETag).
fn md5_of_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
    }
}

/// Copies `length` bytes at `offset` of `source` to the end of `target` (copy_file_range where
/// the kernel offers it: the bytes need not pass through user space).
pub fn copy_range(source: &Path, offset: u64, length: u64, target: &mut impl Write) -> std::io::Result<()> {
    let mut source = File::open(source)?;
    source.seek(SeekFrom::Start(offset))?;
    let copied = std::io::copy(&mut source.take(length), target)?;
    if copied != length {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
    }
    target.flush()
}

/// s3s-fs's layout, read once to migrate it.
mod legacy {
    use super::*;

    pub struct Legacy {
        pub buckets: Vec<(String, SystemTime)>,
        pub objects: Vec<(String, ObjectRecord)>,
    }

    /// s3s-fs's `.internal.json`: the ETag and the checksums.
    #[derive(Deserialize)]
    struct InternalInfo {
        e_tag: Option<String>,
        #[serde(flatten)]
        checksums: Checksums,
    }

    fn side_file(root: &Path, bucket: &str, key: &str, suffix: &str) -> PathBuf {
        use base64::Engine as _;
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        root.join(format!(".bucket-{}.object-{}.{suffix}", encode(bucket), encode(key)))
    }

    /// The buckets (folders with valid bucket names) and their objects (the files in them).
    pub fn scan(root: &Path) -> S3Result<Legacy> {
        let mut legacy = Legacy { buckets: Vec::new(), objects: Vec::new() };
        let entries = match std::fs::read_dir(root) {
            Ok(entries) => entries,
            Err(error) => return Err(internal(root.display(), error)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(metadata) = entry.metadata() else { continue };
            if !metadata.is_dir() || !s3s::path::check_bucket_name(&name) {
                continue;
            }
            legacy.buckets.push((
                name.clone(),
                metadata.created().or_else(|_| metadata.modified()).unwrap_or_else(|_| SystemTime::now()),
            ));
            let mut folders = vec![entry.path()];
            while let Some(folder) = folders.pop() {
                for file in std::fs::read_dir(&folder).map_err(|e| internal(folder.display(), e))?.flatten() {
                    let Ok(metadata) = file.metadata() else { continue };
                    if metadata.is_dir() {
                        folders.push(file.path());
                        continue;
                    }
                    let path = file.path();
                    let (Ok(relative), Ok(within_bucket)) = (path.strip_prefix(root), path.strip_prefix(entry.path()))
                    else {
                        continue;
                    };
                    let (Some(blob), Some(key)) = (relative.to_str(), within_bucket.to_str()) else { continue };
                    legacy.objects.push((name.clone(), object(root, &name, key, blob, &metadata)?));
                }
            }
        }
        Ok(legacy)
    }

    fn object(
        root: &Path,
        bucket: &str,
        key: &str,
        blob: &str,
        metadata: &std::fs::Metadata,
    ) -> S3Result<ObjectRecord> {
        let read_json = |suffix: &str| std::fs::read(side_file(root, bucket, key, suffix)).ok();
        let mut attributes: ObjectAttributes = read_json("metadata.json")
            .and_then(|json| {
                serde_json::from_slice::<ObjectAttributes>(&json).ok().or_else(|| {
                    // The oldest side files held only the user metadata.
                    serde_json::from_slice(&json)
                        .ok()
                        .map(|user| ObjectAttributes { user_metadata: Some(user), ..Default::default() })
                })
            })
            .unwrap_or_default();
        let internal_info =
            read_json("internal.json").and_then(|json| serde_json::from_slice::<InternalInfo>(&json).ok());
        let etag = match internal_info.as_ref().and_then(|info| info.e_tag.clone()) {
            Some(etag) => etag,
            None => md5_of_file(&root.join(blob)).map_err(|e| internal(blob, e))?,
        };
        if let Some(info) = internal_info {
            attributes.checksums = info.checksums;
        }
        Ok(ObjectRecord {
            key: key.to_owned(),
            blob: blob.to_owned(),
            size: metadata.len(),
            etag,
            modified: metadata.modified().unwrap_or_else(|_| SystemTime::now()),
            attributes,
        })
    }

    /// s3s-fs's side files, temporary files and unfinished multipart uploads (which do not carry
    /// over) at the top of the root.
    pub fn remove_side_files(root: &Path) {
        let Ok(entries) = std::fs::read_dir(root) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let side = name.starts_with(".bucket-") && name.ends_with(".json");
            let unfinished =
                name.starts_with(".upload") || (name.starts_with(".tmp.") && name.ends_with(".internal.part"));
            if (side || unfinished)
                && let Err(error) = std::fs::remove_file(entry.path())
            {
                tracing::warn!(file = %entry.path().display(), %error, "cannot delete an s3s-fs side file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob_files(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.join(BLOBS))
            .unwrap()
            .map(|e| format!("{BLOBS}/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        names.sort();
        names
    }

    /// Writes `content` as `bucket`/`key` the way the S3 layer does.
    fn put(store: &ObjectStore, bucket: &str, key: &str, content: &[u8]) -> ObjectRecord {
        let (blob, mut file) = store.create_blob().unwrap();
        file.write_all(content).unwrap();
        let record = ObjectRecord {
            key: key.to_owned(),
            blob: blob.name().to_owned(),
            size: content.len() as u64,
            etag: hex::encode(Md5::checksum(content)),
            modified: now(),
            attributes: ObjectAttributes { content_type: Some("image/jpeg".into()), ..Default::default() },
        };
        store.commit_object(bucket, Some(blob), &record, |_| Ok(())).unwrap();
        record
    }

    #[test]
    fn a_replaced_object_keeps_one_file_and_its_record_answers() {
        let root = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(root.path()).unwrap();
        assert!(store.create_bucket("images").unwrap());
        assert!(!store.create_bucket("images").unwrap(), "a second creation changes nothing");
        let first = put(&store, "images", "uploads/a", b"first");
        let second = put(&store, "images", "uploads/a", b"second version");
        assert_ne!(first.blob, second.blob);
        assert_eq!(blob_files(root.path()), std::slice::from_ref(&second.blob), "the replaced file is deleted");
        assert_eq!(store.object("images", "uploads/a").unwrap(), second);
        assert_eq!(std::fs::read(store.path(&second.blob)).unwrap(), b"second version");

        // A refused write leaves the object and the folder as they were.
        let (blob, mut file) = store.create_blob().unwrap();
        file.write_all(b"refused").unwrap();
        let refused = ObjectRecord { blob: blob.name().to_owned(), ..first.clone() };
        let error =
            store.commit_object("images", Some(blob), &refused, |_| Err(s3_error!(PreconditionFailed))).unwrap_err();
        assert_eq!(*error.code(), s3s::S3ErrorCode::PreconditionFailed);
        assert_eq!(store.object("images", "uploads/a").unwrap(), second);
        assert_eq!(blob_files(root.path()), std::slice::from_ref(&second.blob));

        assert_eq!(*store.object("images", "uploads/none").unwrap_err().code(), s3s::S3ErrorCode::NoSuchKey);
        assert_eq!(*store.object("other", "uploads/a").unwrap_err().code(), s3s::S3ErrorCode::NoSuchBucket);
        assert_eq!(*store.delete_bucket("images").unwrap_err().code(), s3s::S3ErrorCode::BucketNotEmpty);
        store.delete_object("images", "uploads/a").unwrap();
        store.delete_object("images", "uploads/a").unwrap();
        assert!(blob_files(root.path()).is_empty());
        store.delete_bucket("images").unwrap();
        assert!(store.buckets().unwrap().is_empty());
    }

    #[test]
    fn listings_follow_key_order_within_the_prefix() {
        let root = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(root.path()).unwrap();
        store.create_bucket("images").unwrap();
        for key in ["processed/b/thumb.jpg", "uploads/2", "processed/a/thumb.jpg", "uploads/1", "uploadsX"] {
            put(&store, "images", key, key.as_bytes());
        }
        let keys = |listed: Vec<ListedObject>| listed.into_iter().map(|o| o.key).collect::<Vec<_>>();
        assert_eq!(keys(store.list("images", "uploads/", "", 10).unwrap()), ["uploads/1", "uploads/2"]);
        assert_eq!(keys(store.list("images", "uploads/", "uploads/1", 10).unwrap()), ["uploads/2"]);
        assert_eq!(keys(store.list("images", "", "", 2).unwrap()), ["processed/a/thumb.jpg", "processed/b/thumb.jpg"]);
        assert_eq!(store.list("images", "", "", 10).unwrap()[1].size, "processed/b/thumb.jpg".len() as u64);
    }

    #[test]
    fn leftovers_of_an_interrupted_run_are_resolved_when_a_store_opens_alone() {
        let root = tempfile::tempdir().unwrap();
        let (kept, lost) = {
            let store = ObjectStore::open(root.path()).unwrap();
            store.create_bucket("images").unwrap();
            let kept = put(&store, "images", "uploads/kept", b"kept");
            let lost = put(&store, "images", "uploads/lost", b"lost");
            (kept, lost)
        };
        // While a store has the folder open, the files without records may be its writes in
        // flight: another store opening meanwhile leaves them alone.
        let running = ObjectStore::open(root.path()).unwrap();
        // As a kill -9 leaves them: a file whose record was never committed, and a record whose
        // file is gone.
        let orphan = root.path().join(BLOBS).join("0123456789abcdef0123456789abcdef");
        std::fs::write(&orphan, b"half written").unwrap();
        std::fs::remove_file(root.path().join(&lost.blob)).unwrap();
        drop(ObjectStore::open(root.path()).unwrap());
        assert!(orphan.exists());
        drop(running);

        let store = ObjectStore::open(root.path()).unwrap();
        assert!(!orphan.exists());
        assert_eq!(*store.object("images", "uploads/lost").unwrap_err().code(), s3s::S3ErrorCode::NoSuchKey);
        assert_eq!(store.object("images", "uploads/kept").unwrap(), kept);
        assert_eq!(blob_files(root.path()), [kept.blob]);
    }

    #[test]
    fn parts_belong_to_their_upload_until_it_ends() {
        let root = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(root.path()).unwrap();
        store.create_bucket("images").unwrap();
        let upload = UploadRecord {
            upload_id: "u1".into(),
            bucket: "images".into(),
            key: "big".into(),
            access_key: Some("test".into()),
            attributes: ObjectAttributes {
                content_type: Some("application/octet-stream".into()),
                ..Default::default()
            },
        };
        store.create_upload(&upload).unwrap();
        assert_eq!(store.upload("images", "big", "u1").unwrap(), upload);
        assert_eq!(*store.upload("images", "other", "u1").unwrap_err().code(), s3s::S3ErrorCode::NoSuchUpload);
        for (number, content) in [(2, b"two".as_slice()), (1, b"one"), (1, b"one again")] {
            let (blob, mut file) = store.create_blob().unwrap();
            file.write_all(content).unwrap();
            let part = PartRecord {
                number,
                blob: blob.name().to_owned(),
                size: content.len() as u64,
                etag: hex::encode(Md5::checksum(content)),
                modified: SystemTime::now(),
            };
            store.commit_part("u1", blob, &part).unwrap();
        }
        let parts = store.parts("u1").unwrap();
        assert_eq!(parts.iter().map(|p| (p.number, p.size)).collect::<Vec<_>>(), [(1, 9), (2, 3)]);
        assert_eq!(blob_files(root.path()).len(), 2, "the replaced part's file is deleted");
        assert_eq!(*store.delete_bucket("images").unwrap_err().code(), s3s::S3ErrorCode::BucketNotEmpty);
        store.end_upload("u1").unwrap();
        assert!(blob_files(root.path()).is_empty());
        assert!(store.parts("u1").unwrap().is_empty());
        let (blob, _) = store.create_blob().unwrap();
        let part = PartRecord {
            number: 1,
            blob: blob.name().to_owned(),
            size: 0,
            etag: String::new(),
            modified: SystemTime::now(),
        };
        assert_eq!(*store.commit_part("u1", blob, &part).unwrap_err().code(), s3s::S3ErrorCode::NoSuchUpload);
        assert!(blob_files(root.path()).is_empty(), "a refused part's file is deleted");
    }

    #[test]
    fn a_newer_layout_is_refused() {
        let root = tempfile::tempdir().unwrap();
        drop(ObjectStore::open(root.path()).unwrap());
        Connection::open(root.path().join(DATABASE)).unwrap().pragma_update(None, "user_version", LAYOUT + 1).unwrap();
        let error = ObjectStore::open(root.path()).unwrap_err();
        assert!(error.message().unwrap().contains("newer"), "{error:?}");
    }

    /// A request to s3s-fs as its S3 service would hand it over (signed by `test`).
    fn request<T>(input: T) -> s3s::S3Request<T> {
        s3s::S3Request {
            input,
            method: http::Method::PUT,
            uri: http::Uri::from_static("/"),
            headers: http::HeaderMap::new(),
            extensions: http::Extensions::new(),
            credentials: Some(s3s::auth::Credentials { access_key: "test".into(), secret_key: "test".into() }),
            region: None,
            service: Some("s3".into()),
            trailing_headers: None,
        }
    }

    fn blob(content: &[u8]) -> Option<s3s::dto::StreamingBlob> {
        Some(s3s::dto::StreamingBlob::from(s3s::Body::from(bytes::Bytes::copy_from_slice(content))))
    }

    /// A folder as the twin's earlier S3 backend (s3s-fs) wrote it, opened by this store.
    #[tokio::test]
    async fn folders_written_by_s3s_fs_are_migrated_on_first_open() {
        use s3s::S3 as _;
        use s3s::dto::*;

        let root = tempfile::tempdir().unwrap();
        let legacy = s3s_fs::FileSystem::new(root.path()).unwrap();
        legacy
            .create_bucket(request(CreateBucketInput::builder().bucket("images".into()).build().unwrap()))
            .await
            .unwrap();
        let photo: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let photo_put = PutObjectInput::builder()
            .bucket("images".into())
            .key("uploads/photo".into())
            .content_type(Some("image/jpeg".into()))
            .cache_control(Some("max-age=60".into()))
            .metadata(Some([("camera".to_owned(), "canon".to_owned())].into()))
            .body(blob(&photo))
            .build()
            .unwrap();
        let put_etag = legacy.put_object(request(photo_put)).await.unwrap().output.e_tag.unwrap().into_value();
        let created =
            CreateMultipartUploadInput::builder().bucket("images".into()).key("big/in-parts".into()).build().unwrap();
        let upload_id = legacy.create_multipart_upload(request(created)).await.unwrap().output.upload_id.unwrap();
        let parts = [vec![1u8; 5 << 20], vec![2u8; 10]];
        let mut completed = Vec::new();
        for (index, content) in parts.iter().enumerate() {
            let number = index as i32 + 1;
            let part = UploadPartInput::builder()
                .bucket("images".into())
                .key("big/in-parts".into())
                .upload_id(upload_id.clone())
                .part_number(number)
                .body(blob(content))
                .build()
                .unwrap();
            let etag = legacy.upload_part(request(part)).await.unwrap().output.e_tag;
            completed.push(CompletedPart { e_tag: etag, part_number: Some(number), ..Default::default() });
        }
        let complete = CompleteMultipartUploadInput::builder()
            .bucket("images".into())
            .key("big/in-parts".into())
            .upload_id(upload_id)
            .multipart_upload(Some(CompletedMultipartUpload { parts: Some(completed) }))
            .build()
            .unwrap();
        let mut answer = legacy.complete_multipart_upload(request(complete)).await.unwrap().output;
        if let Some(future) = answer.future.take() {
            answer = future.await.unwrap();
        }
        let multipart_etag = answer.e_tag.unwrap().into_value();
        // An unfinished upload and an empty bucket.
        let unfinished =
            CreateMultipartUploadInput::builder().bucket("images".into()).key("never".into()).build().unwrap();
        legacy.create_multipart_upload(request(unfinished)).await.unwrap();
        legacy
            .create_bucket(request(CreateBucketInput::builder().bucket("empty".into()).build().unwrap()))
            .await
            .unwrap();
        drop(legacy);

        let store = ObjectStore::open(root.path()).unwrap();
        let names: Vec<String> = store.buckets().unwrap().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["empty", "images"]);
        let migrated = store.object("images", "uploads/photo").unwrap();
        assert_eq!((migrated.size, migrated.etag.as_str()), (photo.len() as u64, put_etag.as_str()));
        assert_eq!(migrated.etag, hex::encode(Md5::checksum(&photo)));
        assert_eq!(migrated.attributes.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(migrated.attributes.cache_control.as_deref(), Some("max-age=60"));
        assert_eq!(migrated.attributes.user_metadata, Some([("camera".to_owned(), "canon".to_owned())].into()));
        assert_eq!(std::fs::read(store.path(&migrated.blob)).unwrap(), photo);
        let big = store.object("images", "big/in-parts").unwrap();
        assert_eq!((big.size, big.etag.as_str()), ((5 << 20) + 10, multipart_etag.as_str()));
        assert!(big.etag.ends_with("-2"));
        let keys: Vec<String> = store.list("images", "", "", 10).unwrap().into_iter().map(|o| o.key).collect();
        assert_eq!(keys, ["big/in-parts", "uploads/photo"]);
        // s3s-fs's side files and unfinished uploads are gone; only the store's own files stay.
        let mut top: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert!(top.iter().all(|name| !name.starts_with(".bucket-") && !name.starts_with(".upload")), "{top:?}");

        // Reopening migrates nothing twice; a replaced migrated object's file goes like any other.
        drop(store);
        let store = ObjectStore::open(root.path()).unwrap();
        assert_eq!(store.object("images", "uploads/photo").unwrap(), migrated);
        put(&store, "images", "uploads/photo", b"new");
        assert!(!store.path(&migrated.blob).exists());
    }
}
