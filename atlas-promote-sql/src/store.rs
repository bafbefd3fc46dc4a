//! The [`StateStore`](atlas_promote_core::StateStore) implementation both
//! databases share.
//!
//! SQLite and PostgreSQL run the same statements (both take `$1`
//! placeholders, `ON CONFLICT`, and sort text bytewise with the collations
//! the migrations set); they differ in how a commit excludes the others
//! (SQLite: `BEGIN IMMEDIATE` takes the write lock; PostgreSQL: the audit
//! head row is locked `FOR UPDATE`) and in PostgreSQL's `SKIP LOCKED` for
//! outbox claims. The macro writes the implementation once for each
//! database type, so that no generic bounds over sqlx's traits are needed.

/// Implement the store for `$store` (fields `pool: sqlx::Pool<$db>` and
/// `location: String`). `$begin` starts a write transaction, `$lock` ends a
/// `SELECT` that must hold its rows until the transaction ends and `$skip`
/// one that passes over rows another transaction holds.
macro_rules! sql_store {
    ($store:ident, $db:ty, begin = $begin:literal, lock = $lock:literal, skip = $skip:literal) => {
        impl $store {
            fn fail(&self, operation: &str, error: sqlx::Error) -> atlas_promote_core::Error {
                crate::error::database(&self.location, operation, error).into()
            }

            async fn begin(&self, operation: &str) -> atlas_promote_core::Result<sqlx::Transaction<'static, $db>> {
                self.pool.begin_with($begin).await.map_err(|e| self.fail(operation, e))
            }

            async fn finish(
                &self,
                tx: sqlx::Transaction<'static, $db>,
                operation: &str,
            ) -> atlas_promote_core::Result<()> {
                tx.commit().await.map_err(|e| self.fail(operation, e))
            }

            fn document(
                &self,
                key: String,
                version: i64,
                value: &str,
            ) -> atlas_promote_core::Result<atlas_promote_core::Document> {
                let what = format!("document {key}");
                let value = serde_json::from_str(value)
                    .map_err(|e| crate::codec::damaged(&self.location, &what, e.to_string()))?;
                let version = crate::codec::unsigned(&self.location, &what, version)?;
                Ok(atlas_promote_core::Document { key, version, value })
            }

            fn record(
                &self,
                row: &<$db as sqlx::Database>::Row,
            ) -> atlas_promote_core::Result<atlas_promote_core::AuditRecord> {
                use sqlx::Row as _;
                let get = |e: sqlx::Error| self.fail("read the audit log", e);
                let seq: i64 = row.try_get(0).map_err(get)?;
                let at: String = row.try_get(1).map_err(get)?;
                let what = format!("audit record {seq}");
                Ok(atlas_promote_core::AuditRecord {
                    seq: crate::codec::unsigned(&self.location, &what, seq)?,
                    entry: atlas_promote_core::AuditEntry {
                        at: crate::codec::parse_text(&self.location, &what, &at)?,
                        actor: row.try_get(2).map_err(get)?,
                        action: row.try_get(3).map_err(get)?,
                        subject: row.try_get(4).map_err(get)?,
                        message: row.try_get(5).map_err(get)?,
                    },
                    prev: row.try_get(6).map_err(get)?,
                    hash: row.try_get(7).map_err(get)?,
                })
            }

            /// The audit records with `after < seq <= upto`, in order.
            pub(crate) async fn records(
                &self,
                after: u64,
                upto: u64,
            ) -> atlas_promote_core::Result<Vec<atlas_promote_core::AuditRecord>> {
                let rows = sqlx::query(
                    "SELECT seq, at, actor, action, subject, message, prev, hash FROM audit \
                     WHERE seq > $1 AND seq <= $2 ORDER BY seq",
                )
                .bind(crate::codec::signed(after))
                .bind(crate::codec::signed(upto))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.fail("read the audit log", e))?;
                rows.iter().map(|row| self.record(row)).collect()
            }

            /// Record `fingerprint` as the chain's key if none is and the log is empty.
            pub(crate) async fn adopt_chain_key(&self, fingerprint: &str) -> atlas_promote_core::Result<bool> {
                let op = "record the audit chain key";
                let mut tx = self.begin(op).await?;
                let rows: Vec<(String, String)> = sqlx::query_as(concat!(
                    "SELECT name, value FROM meta WHERE name IN ('audit_head_seq', 'chain_key') ORDER BY name",
                    $lock
                ))
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| self.fail(op, e))?;
                let empty = rows.iter().any(|(n, v)| n == "audit_head_seq" && v == "0")
                    && rows.iter().any(|(n, v)| n == "chain_key" && v.is_empty());
                if !empty {
                    return Ok(false);
                }
                sqlx::query("UPDATE meta SET value = $1 WHERE name = 'chain_key'")
                    .bind(fingerprint)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.fail(op, e))?;
                self.finish(tx, op).await?;
                Ok(true)
            }

            /// The named values of the `meta` table.
            pub(crate) async fn meta(&self, name: &str) -> atlas_promote_core::Result<String> {
                let value: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.fail("read the store's metadata", e))?;
                value
                    .ok_or_else(|| crate::codec::damaged(&self.location, "the meta table", format!("it has no {name}")))
            }

            /// Set named values of the `meta` table, in one transaction.
            pub(crate) async fn set_meta(&self, values: &[(&str, String)]) -> atlas_promote_core::Result<()> {
                let mut tx = self.begin("write the store's metadata").await?;
                for (name, value) in values {
                    sqlx::query("UPDATE meta SET value = $2 WHERE name = $1")
                        .bind(*name)
                        .bind(value)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.fail("write the store's metadata", e))?;
                }
                self.finish(tx, "write the store's metadata").await
            }

            /// The audit head as the `meta` table records it.
            pub(crate) async fn head(&self) -> atlas_promote_core::Result<atlas_promote_core::audit::AuditHead> {
                let seq = self.meta("audit_head_seq").await?;
                let seq = seq
                    .parse::<u64>()
                    .map_err(|e| crate::codec::damaged(&self.location, "the audit head", format!("{seq:?}: {e}")))?;
                Ok(atlas_promote_core::audit::AuditHead { seq, hash: self.meta("audit_head_hash").await? })
            }

            /// The (key, version committed) pairs of the commits after `after`, and the last commit's id.
            pub(crate) async fn commits_after(
                &self,
                after: i64,
            ) -> atlas_promote_core::Result<(Vec<(String, u64)>, i64)> {
                use sqlx::Row as _;
                let rows = sqlx::query("SELECT id, writes FROM commits WHERE id > $1 ORDER BY id")
                    .bind(after)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.fail("read the commit journal", e))?;
                let mut last = after;
                let mut out = Vec::new();
                for row in &rows {
                    let id: i64 = row.try_get(0).map_err(|e| self.fail("read the commit journal", e))?;
                    let writes: String = row.try_get(1).map_err(|e| self.fail("read the commit journal", e))?;
                    let parsed: Vec<(String, u64)> = serde_json::from_str(&writes)
                        .map_err(|e| crate::codec::damaged(&self.location, &format!("commit {id}"), e.to_string()))?;
                    out.extend(parsed);
                    last = id;
                }
                Ok((out, last))
            }

            /// The version stored for `key`, deleted or not.
            pub(crate) async fn stored_version(&self, key: &str) -> atlas_promote_core::Result<Option<u64>> {
                let version: Option<i64> = sqlx::query_scalar(
                    "SELECT version FROM documents WHERE key = $1 \
                     UNION ALL SELECT version FROM tombstones WHERE key = $1",
                )
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.fail("read a document", e))?;
                version.map(|v| crate::codec::unsigned(&self.location, key, v)).transpose()
            }

            async fn list_range(&self, prefix: &str) -> atlas_promote_core::Result<Vec<atlas_promote_core::Document>> {
                use sqlx::Row as _;
                let rows = match crate::codec::prefix_end(prefix) {
                    Some(end) => {
                        sqlx::query(
                            "SELECT key, version, value FROM documents \
                         WHERE key >= $1 AND key < $2 ORDER BY key",
                        )
                        .bind(prefix)
                        .bind(end)
                        .fetch_all(&self.pool)
                        .await
                    }
                    None => {
                        sqlx::query(
                            "SELECT key, version, value FROM documents \
                         WHERE key >= $1 ORDER BY key",
                        )
                        .bind(prefix)
                        .fetch_all(&self.pool)
                        .await
                    }
                }
                .map_err(|e| self.fail("list documents", e))?;
                rows.iter()
                    .map(|row| {
                        let get = |e| self.fail("list documents", e);
                        let key: String = row.try_get(0).map_err(get)?;
                        let version: i64 = row.try_get(1).map_err(get)?;
                        let value: String = row.try_get(2).map_err(get)?;
                        self.document(key, version, &value)
                    })
                    .collect()
            }
        }

        #[async_trait::async_trait]
        impl atlas_promote_core::StateStore for $store {
            async fn get(&self, key: &str) -> atlas_promote_core::Result<Option<atlas_promote_core::Document>> {
                let row: Option<(i64, String)> = sqlx::query_as("SELECT version, value FROM documents WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.fail("read a document", e))?;
                row.map(|(version, value)| self.document(key.to_owned(), version, &value)).transpose()
            }

            async fn list(&self, prefix: &str) -> atlas_promote_core::Result<Vec<atlas_promote_core::Document>> {
                self.list_range(prefix).await
            }

            async fn get_if_changed(
                &self,
                key: &str,
                version: u64,
            ) -> atlas_promote_core::Result<atlas_promote_core::Fetched> {
                // The value is sent only when the caller's copy is stale.
                let row: Option<(i64, i64, Option<String>)> = sqlx::query_as(
                    "SELECT version, CAST(CASE WHEN value IS NULL THEN 0 ELSE 1 END AS BIGINT), \
                     CASE WHEN version = $2 THEN NULL ELSE value END \
                     FROM documents WHERE key = $1",
                )
                .bind(key)
                .bind(crate::codec::signed(version))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.fail("read a document", e))?;
                Ok(match row {
                    Some((_, 1, None)) => atlas_promote_core::Fetched::Unchanged,
                    Some((stored, 1, Some(value))) => {
                        atlas_promote_core::Fetched::Current(Some(self.document(key.to_owned(), stored, &value)?))
                    }
                    _ => atlas_promote_core::Fetched::Current(None),
                })
            }

            async fn commit(
                &self,
                writes: Vec<atlas_promote_core::Write>,
                audit: Vec<atlas_promote_core::AuditEntry>,
            ) -> atlas_promote_core::Result<Vec<u64>> {
                self.commit_with(atlas_promote_core::Commit::new().with_writes(writes).with_audit(audit)).await
            }

            async fn audit(&self, after: u64) -> atlas_promote_core::Result<Vec<atlas_promote_core::AuditRecord>> {
                self.records(after, u64::MAX >> 1).await
            }

            async fn commit_with(&self, commit: atlas_promote_core::Commit) -> atlas_promote_core::Result<Vec<u64>> {
                self.run_commit(commit).await
            }

            async fn acquire_lease(
                &self,
                name: &str,
                holder: &str,
                now: chrono::DateTime<chrono::Utc>,
                ttl: chrono::TimeDelta,
            ) -> atlas_promote_core::Result<atlas_promote_core::LeaseOutcome> {
                use crate::codec::{from_micros, micros, signed, unsigned};
                let op = "acquire a lease";
                let mut tx = self.begin(op).await?;
                sqlx::query(
                    "INSERT INTO leases (name, holder, until_us, token) VALUES ($1, '', $2, 0) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(micros(chrono::DateTime::<chrono::Utc>::MIN_UTC))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.fail(op, e))?;
                let (held_by, until, token): (String, i64, i64) =
                    sqlx::query_as(concat!("SELECT holder, until_us, token FROM leases WHERE name = $1", $lock))
                        .bind(name)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(|e| self.fail(op, e))?;
                let held = atlas_promote_core::Lease {
                    name: name.to_owned(),
                    holder: held_by,
                    until: from_micros(&self.location, until)?,
                    token: unsigned(&self.location, "a lease token", token)?,
                };
                let new_until = crate::codec::after(now, ttl);
                let lease = if held.until > now && held.holder != holder {
                    return Ok(atlas_promote_core::LeaseOutcome::Held(held));
                } else if held.until > now {
                    atlas_promote_core::Lease { until: new_until, ..held }
                } else {
                    atlas_promote_core::Lease {
                        holder: holder.to_owned(),
                        until: new_until,
                        token: held.token.saturating_add(1),
                        ..held
                    }
                };
                sqlx::query("UPDATE leases SET holder = $2, until_us = $3, token = $4 WHERE name = $1")
                    .bind(name)
                    .bind(&lease.holder)
                    .bind(micros(lease.until))
                    .bind(signed(lease.token))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.fail(op, e))?;
                self.finish(tx, op).await?;
                Ok(atlas_promote_core::LeaseOutcome::Acquired(lease))
            }

            async fn renew_lease(
                &self,
                lease: &atlas_promote_core::Lease,
                now: chrono::DateTime<chrono::Utc>,
                ttl: chrono::TimeDelta,
            ) -> atlas_promote_core::Result<Option<atlas_promote_core::Lease>> {
                use crate::codec::{micros, signed};
                let until = crate::codec::after(now, ttl);
                let done = sqlx::query(
                    "UPDATE leases SET until_us = $4 \
                     WHERE name = $1 AND holder = $2 AND token = $3 AND until_us > $5",
                )
                .bind(&lease.name)
                .bind(&lease.holder)
                .bind(signed(lease.token))
                .bind(micros(until))
                .bind(micros(now))
                .execute(&self.pool)
                .await
                .map_err(|e| self.fail("renew a lease", e))?;
                Ok((done.rows_affected() == 1).then(|| atlas_promote_core::Lease { until, ..lease.clone() }))
            }

            async fn release_lease(&self, lease: &atlas_promote_core::Lease) -> atlas_promote_core::Result<bool> {
                use crate::codec::{micros, signed};
                let min = micros(chrono::DateTime::<chrono::Utc>::MIN_UTC);
                let done = sqlx::query(
                    "UPDATE leases SET until_us = $4 \
                     WHERE name = $1 AND holder = $2 AND token = $3 AND until_us > $4",
                )
                .bind(&lease.name)
                .bind(&lease.holder)
                .bind(signed(lease.token))
                .bind(min)
                .execute(&self.pool)
                .await
                .map_err(|e| self.fail("release a lease", e))?;
                Ok(done.rows_affected() == 1)
            }

            async fn leases(&self, prefix: &str) -> atlas_promote_core::Result<Vec<atlas_promote_core::Lease>> {
                let rows: Vec<(String, String, i64, i64)> = match crate::codec::prefix_end(prefix) {
                    Some(end) => {
                        sqlx::query_as(
                            "SELECT name, holder, until_us, token FROM leases \
                         WHERE name >= $1 AND name < $2 ORDER BY name",
                        )
                        .bind(prefix)
                        .bind(end)
                        .fetch_all(&self.pool)
                        .await
                    }
                    None => {
                        sqlx::query_as(
                            "SELECT name, holder, until_us, token FROM leases WHERE name >= $1 ORDER BY name",
                        )
                        .bind(prefix)
                        .fetch_all(&self.pool)
                        .await
                    }
                }
                .map_err(|e| self.fail("list leases", e))?;
                rows.into_iter()
                    .map(|(name, holder, until, token)| {
                        Ok(atlas_promote_core::Lease {
                            until: crate::codec::from_micros(&self.location, until)?,
                            token: crate::codec::unsigned(&self.location, "a lease token", token)?,
                            name,
                            holder,
                        })
                    })
                    .collect()
            }

            async fn record_delivery(
                &self,
                source: &str,
                id: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> atlas_promote_core::Result<atlas_promote_core::Delivery> {
                let done = sqlx::query(
                    "INSERT INTO deliveries (source, id, at_us) VALUES ($1, $2, $3) \
                     ON CONFLICT (source, id) DO NOTHING",
                )
                .bind(source)
                .bind(id)
                .bind(crate::codec::micros(at))
                .execute(&self.pool)
                .await
                .map_err(|e| self.fail("record a delivery", e))?;
                Ok(if done.rows_affected() == 1 {
                    atlas_promote_core::Delivery::First
                } else {
                    atlas_promote_core::Delivery::Duplicate
                })
            }

            async fn prune_deliveries(&self, before: chrono::DateTime<chrono::Utc>) -> atlas_promote_core::Result<u64> {
                let done = sqlx::query("DELETE FROM deliveries WHERE at_us < $1")
                    .bind(crate::codec::micros(before))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.fail("prune deliveries", e))?;
                Ok(done.rows_affected())
            }

            async fn claim_outbox(
                &self,
                claim: atlas_promote_core::ClaimOutbox,
            ) -> atlas_promote_core::Result<Vec<atlas_promote_core::OutboxItem>> {
                use crate::codec::{micros, parse_text, unsigned};
                let op = "claim outbox entries";
                let mut tx = self.begin(op).await?;
                let rows: Vec<(i64, String, String, String, String, i64, Option<String>)> = sqlx::query_as(concat!(
                    "SELECT pos, id, kind, payload, created_at, attempts, last_error FROM outbox \
                         WHERE delivered = 0 AND next_attempt_us <= $1 ORDER BY created_us, pos LIMIT $2",
                    $skip
                ))
                .bind(micros(claim.now))
                .bind(i64::try_from(claim.limit).unwrap_or(i64::MAX))
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| self.fail(op, e))?;
                let hold_until = crate::codec::after(claim.now, claim.hold);
                let mut items = Vec::with_capacity(rows.len());
                for (pos, id, kind, payload, created_at, attempts, last_error) in rows {
                    sqlx::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_us = $2 WHERE pos = $1")
                        .bind(pos)
                        .bind(micros(hold_until))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.fail(op, e))?;
                    let what = format!("outbox entry {id}");
                    let payload = serde_json::from_str(&payload)
                        .map_err(|e| crate::codec::damaged(&self.location, &what, e.to_string()))?;
                    let created_at = parse_text(&self.location, &what, &created_at)?;
                    let attempts = unsigned(&self.location, &what, attempts)?.saturating_add(1);
                    items.push(atlas_promote_core::OutboxItem {
                        entry: atlas_promote_core::OutboxEntry::new(id, kind, payload, created_at),
                        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                        next_attempt_at: hold_until,
                        last_error,
                    });
                }
                self.finish(tx, op).await?;
                Ok(items)
            }

            async fn outbox_delivered(&self, id: &str) -> atlas_promote_core::Result<()> {
                let done = sqlx::query("UPDATE outbox SET delivered = 1 WHERE id = $1 AND delivered = 0")
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.fail("mark an outbox entry delivered", e))?;
                if done.rows_affected() == 0 {
                    return Err(crate::store::undelivered(&self.location, id));
                }
                Ok(())
            }

            async fn outbox_failed(
                &self,
                id: &str,
                error: &str,
                next_attempt_at: chrono::DateTime<chrono::Utc>,
            ) -> atlas_promote_core::Result<()> {
                let done = sqlx::query(
                    "UPDATE outbox SET last_error = $2, next_attempt_us = $3 WHERE id = $1 AND delivered = 0",
                )
                .bind(id)
                .bind(error)
                .bind(crate::codec::micros(next_attempt_at))
                .execute(&self.pool)
                .await
                .map_err(|e| self.fail("record a failed delivery", e))?;
                if done.rows_affected() == 0 {
                    return Err(crate::store::undelivered(&self.location, id));
                }
                Ok(())
            }
        }
    };
}

pub(crate) use sql_store;

/// The error for an outbox id that is unknown or already delivered.
pub(crate) fn undelivered(location: &str, id: &str) -> atlas_promote_core::Error {
    atlas_promote_core::Error::NotFound { backend: location.to_owned(), what: format!("undelivered outbox entry {id}") }
}
