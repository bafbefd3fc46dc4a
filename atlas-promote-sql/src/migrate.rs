//! The schema, embedded: each database's migrations, applied on open.

use std::borrow::Cow;

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};

use crate::error::Error;

/// The newest schema version this build writes.
pub const SCHEMA_VERSION: i64 = 3;

/// The tables a store has (besides sqlx's `_sqlx_migrations`).
const TABLES: &[&str] = &["audit", "commits", "deliveries", "documents", "leases", "meta", "outbox", "tombstones"];

fn migrator(steps: &[(&'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        (1..)
            .zip(steps.iter().copied())
            .map(|(version, (name, sql))| {
                Migration::new(version, Cow::Borrowed(name), MigrationType::Simple, sql.into_sql_str(), false)
            })
            .collect(),
    )
}

/// The SQLite store's migrations.
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite() -> Migrator {
    migrator(&[
        ("initial", include_str!("../migrations/sqlite/0001_initial.sql")),
        ("chain key", include_str!("../migrations/sqlite/0002_chain_key.sql")),
        ("tombstones", include_str!("../migrations/sqlite/0003_tombstones.sql")),
    ])
}

/// The PostgreSQL store's migrations.
#[cfg(feature = "postgres")]
pub(crate) fn postgres() -> Migrator {
    migrator(&[
        ("initial", include_str!("../migrations/postgres/0001_initial.sql")),
        ("chain key", include_str!("../migrations/postgres/0002_chain_key.sql")),
        ("tombstones", include_str!("../migrations/postgres/0003_tombstones.sql")),
    ])
}

/// Refuse a database that holds tables but is not a store: another program's.
pub(crate) fn check_tables(location: &str, tables: &[String]) -> Result<(), Error> {
    let ours = |t: &String| t == "_sqlx_migrations" || t == "sqlite_sequence" || TABLES.contains(&t.as_str());
    if tables.is_empty() || tables.iter().any(|t| t == "_sqlx_migrations") && tables.iter().all(ours) {
        return Ok(());
    }
    let foreign: Vec<&str> = tables.iter().filter(|t| !ours(t)).map(String::as_str).take(5).collect();
    let message = if foreign.is_empty() {
        "it has some of a store's tables but no record of its schema version".to_owned()
    } else {
        format!("it holds other tables ({})", foreign.join(", "))
    };
    Err(Error::NotAStore { location: location.to_owned(), message })
}

/// This crate's error for a failed migration.
pub(crate) fn error(location: &str, error: MigrateError) -> Error {
    match error {
        MigrateError::VersionMissing(found) => {
            Error::NewerSchema { location: location.to_owned(), found, supported: SCHEMA_VERSION }
        }
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => {
            crate::error::database(location, "apply the schema", e)
        }
        other => Error::NotAStore { location: location.to_owned(), message: other.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_programs_tables_are_not_a_store() {
        let tables = vec!["customers".to_owned(), "orders".to_owned()];
        let err = check_tables("shop.db", &tables).unwrap_err();
        assert!(err.to_string().contains("shop.db is not an atlas-promote store"), "{err}");
        assert!(err.to_string().contains("customers, orders"), "{err}");
        assert!(check_tables("new.db", &[]).is_ok());
        let ours: Vec<String> = ["_sqlx_migrations", "audit", "meta"].map(String::from).to_vec();
        assert!(check_tables("atlas.db", &ours).is_ok());
    }
}
