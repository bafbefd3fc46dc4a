//! The PostgreSQL store: several instances on one database.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _};

use atlas_promote_core::audit::ChainKey;

use crate::error::{Error, Result};
use crate::migrate;

/// A [`StateStore`](atlas_promote_core::StateStore) in a PostgreSQL database,
/// shared by every instance pointed at it.
///
/// Opened from `postgres://user@host/db`. A commit is one transaction that
/// locks the audit head row, so commits from every instance are ordered and
/// each sees the one before; outbox claims skip rows another instance holds.
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    pub(crate) location: String,
    pub(crate) key: Option<ChainKey>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .field("chain_key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// `url` with its password left out: what errors and logs may show.
fn redacted(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}

/// Whether `schema` is a plain lower-case identifier (it is quoted into SQL).
fn plain_identifier(schema: &str) -> bool {
    !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl PostgresStore {
    /// Open the store at `url`, in `schema` (created if missing) or the
    /// connection's default schema.
    pub(crate) async fn connect(url: &str, schema: Option<&str>, key: Option<ChainKey>) -> Result<Self> {
        let shown = url.split_once('@').map_or_else(|| url.to_owned(), |(_, host)| format!("postgres://…@{host}"));
        let options =
            PgConnectOptions::from_str(url).map_err(|e| Error::Url { url: shown.clone(), message: e.to_string() })?;
        let mut location = redacted(&options);
        let options = match schema {
            Some(schema) if !plain_identifier(schema) => {
                return Err(Error::Url {
                    url: shown,
                    message: format!("schema {schema:?} is not a lower-case identifier (a-z, 0-9, _)"),
                });
            }
            Some(schema) => {
                location = format!("{location} (schema {schema})");
                let mut conn = options.connect().await.map_err(|e| crate::error::database(&location, "connect", e))?;
                let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
                sqlx::query(sqlx::AssertSqlSafe(create))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| crate::error::database(&location, "create the schema", e))?;
                let _ = conn.close().await;
                options.options([("search_path", schema)])
            }
            None => options,
        };
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| crate::error::database(&location, "connect", e))?;
        let store = Self { pool, location, key };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() ORDER BY table_name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| crate::error::database(&self.location, "read the schema", e))?;
        migrate::check_tables(&self.location, &tables)?;
        migrate::postgres().run(&self.pool).await.map_err(|e| migrate::error(&self.location, e))
    }
}

crate::store::sql_store!(
    PostgresStore,
    sqlx::Postgres,
    begin = "BEGIN",
    lock = " FOR UPDATE",
    skip = " FOR UPDATE SKIP LOCKED"
);
crate::commit::sql_commit!(PostgresStore, sqlx::Postgres, lock = " FOR UPDATE");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_name_is_a_plain_identifier() {
        assert!(plain_identifier("atlas_test_1"));
        for bad in ["", "Atlas", "a;drop", "a\"b", "1abc"] {
            assert!(!plain_identifier(bad), "{bad}");
        }
    }
}
