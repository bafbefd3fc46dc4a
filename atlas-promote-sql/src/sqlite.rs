//! The SQLite store: one file, WAL, `synchronous=FULL`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use atlas_promote_core::audit::ChainKey;

use crate::error::{Error, Result};
use crate::migrate;

/// A [`StateStore`](atlas_promote_core::StateStore) in one SQLite file.
///
/// Opened from `sqlite://path/atlas.db` (the file and its directory are
/// created if missing). Every commit is one `BEGIN IMMEDIATE` transaction,
/// durable when it returns (write-ahead log, `synchronous=FULL`). Several
/// processes may open the same file; their commits take turns.
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    pub(crate) location: String,
    path: PathBuf,
    pub(crate) key: Option<ChainKey>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("chain_key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open (creating if missing) the store at `url` (`sqlite://path/atlas.db`).
    pub(crate) async fn connect(url: &str, key: Option<ChainKey>) -> Result<Self> {
        let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).ok_or_else(|| Error::Url {
            url: url.to_owned(),
            message: "a SQLite store's URL starts with sqlite://".into(),
        })?;
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Url { url: url.to_owned(), message: e.to_string() })?;
        let path = options.get_filename().to_owned();
        if rest.is_empty() || path.as_os_str().is_empty() {
            return Err(Error::Url { url: url.to_owned(), message: "the URL names no file".into() });
        }
        let location = path.display().to_string();
        create_parent(&path, &location)?;
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| why_not_opened(&path, &location, e))?;
        let store = Self { pool, location, path, key };
        store.migrate().await?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn migrate(&self) -> Result<()> {
        // A truncated or overwritten file can open and fail only when a lost
        // page is read: check every page now, so it is refused by name.
        let check: Vec<String> = sqlx::query_scalar("PRAGMA quick_check(1)")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| crate::error::database(&self.location, "check the database file", e))?;
        if check.first().map(String::as_str) != Some("ok") {
            return Err(Error::Damaged {
                location: self.location.clone(),
                what: "the database file".into(),
                message: check.join("; "),
            });
        }
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| crate::error::database(&self.location, "read the schema", e))?;
        migrate::check_tables(&self.location, &tables)?;
        migrate::sqlite().run(&self.pool).await.map_err(|e| migrate::error(&self.location, e))
    }
}

/// The error for a database that did not open. SQLite says only "unable to
/// open database file" (`SQLITE_CANTOPEN`); when the file system is the
/// reason (read-only, no permission), ask it, so the error says which.
fn why_not_opened(path: &Path, location: &str, error: sqlx::Error) -> Error {
    let error = crate::error::database(location, "open the database", error);
    if !matches!(&error, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::Other) {
        return error;
    }
    let probe = if path.exists() {
        std::fs::OpenOptions::new().write(true).open(path).map(drop)
    } else {
        std::fs::OpenOptions::new().write(true).create_new(true).open(path).and_then(|_| std::fs::remove_file(path))
    };
    match probe {
        Err(source) => {
            Error::Io { location: location.to_owned(), operation: "open the database for writing".into(), source }
        }
        Ok(()) => error,
    }
}

fn create_parent(path: &Path, location: &str) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::create_dir_all(dir).map_err(|source| {
            Error::Io { location: location.to_owned(), operation: "create the directory".into(), source }
        }),
        _ => Ok(()),
    }
}

crate::store::sql_store!(SqliteStore, sqlx::Sqlite, begin = "BEGIN IMMEDIATE", lock = "", skip = "");
crate::commit::sql_commit!(SqliteStore, sqlx::Sqlite, lock = "");
