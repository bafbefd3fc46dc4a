//! One commit, one transaction: version checks, document writes, audit
//! records chained to the head, the commit journal and the outbox.

/// Implement `run_commit` for `$store` on database `$db`; `$begin` and
/// `$lock` as for [`sql_store`](crate::store::sql_store).
macro_rules! sql_commit {
    ($store:ident, $db:ty, lock = $lock:literal) => {
        impl $store {
            async fn run_commit(&self, commit: atlas_promote_core::Commit) -> atlas_promote_core::Result<Vec<u64>> {
                use crate::codec::{micros, signed, text, unsigned};
                use atlas_promote_core::{Error, Write};
                let op = "commit";
                let fail = |e| self.fail(op, e);
                let mut tx = self.begin(op).await?;
                // Reading the head with `$lock` orders every commit after the one before.
                let heads: Vec<(String, String)> = sqlx::query_as(concat!(
                    "SELECT name, value FROM meta WHERE name IN ('audit_head_seq', 'audit_head_hash') ORDER BY name",
                    $lock
                ))
                .fetch_all(&mut *tx)
                .await
                .map_err(fail)?;
                let mut head = crate::codec::parse_head(&self.location, &heads)?;

                for (i, entry) in commit.outbox.iter().enumerate() {
                    let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE id = $1")
                        .bind(&entry.id)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(fail)?;
                    if taken > 0 || commit.outbox[..i].iter().any(|e| e.id == entry.id) {
                        return Err(Error::Conflict {
                            key: format!("outbox/{}", entry.id),
                            expected: None,
                            found: Some(1),
                        });
                    }
                }

                let mut versions = Vec::with_capacity(commit.writes.len());
                let mut journal: Vec<(&str, u64)> = Vec::with_capacity(commit.writes.len());
                for write in &commit.writes {
                    let key = write.key();
                    // A key is a document or a tombstone, never both.
                    let row: Option<(i64, i64)> = sqlx::query_as(
                        "SELECT version, CAST(1 AS BIGINT) FROM documents WHERE key = $1 \
                         UNION ALL SELECT version, CAST(0 AS BIGINT) FROM tombstones WHERE key = $1",
                    )
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(fail)?;
                    let (version, live) = match row {
                        Some((v, live)) => (unsigned(&self.location, key, v)?, live == 1),
                        None => (0, false),
                    };
                    let found = live.then_some(version);
                    let expected = match write {
                        Write::Put { expected, .. } => *expected,
                        Write::Delete { expected, .. } => Some(*expected),
                    };
                    if expected != found {
                        return Err(Error::Conflict { key: key.to_owned(), expected, found });
                    }
                    let next = version.checked_add(1).filter(|v| i64::try_from(*v).is_ok()).ok_or_else(|| {
                        Error::Invalid {
                            what: format!("write of {key}"),
                            message: "the document's version cannot grow any more".into(),
                        }
                    })?;
                    match write {
                        Write::Put { value, .. } => {
                            let value = serde_json::to_string(value).map_err(|e| Error::Invalid {
                                what: format!("document {key}"),
                                message: e.to_string(),
                            })?;
                            sqlx::query(
                                "INSERT INTO documents (key, version, value) VALUES ($1, $2, $3) \
                                 ON CONFLICT (key) DO UPDATE SET version = excluded.version, value = excluded.value",
                            )
                            .bind(key)
                            .bind(signed(next))
                            .bind(value)
                            .execute(&mut *tx)
                            .await
                            .map_err(fail)?;
                            if !live && version > 0 {
                                sqlx::query("DELETE FROM tombstones WHERE key = $1")
                                    .bind(key)
                                    .execute(&mut *tx)
                                    .await
                                    .map_err(fail)?;
                            }
                        }
                        Write::Delete { .. } => {
                            sqlx::query("DELETE FROM documents WHERE key = $1")
                                .bind(key)
                                .execute(&mut *tx)
                                .await
                                .map_err(fail)?;
                            sqlx::query(
                                "INSERT INTO tombstones (key, version) VALUES ($1, $2) \
                                 ON CONFLICT (key) DO UPDATE SET version = excluded.version",
                            )
                            .bind(key)
                            .bind(signed(next))
                            .execute(&mut *tx)
                            .await
                            .map_err(fail)?;
                        }
                    }
                    versions.push(next);
                    journal.push((key, next));
                }

                for entry in commit.audit {
                    let record = atlas_promote_core::audit::chain_after_keyed(&head, entry, self.key.as_ref());
                    sqlx::query(
                        "INSERT INTO audit (seq, at, actor, action, subject, message, prev, hash) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(signed(record.seq))
                    .bind(text(record.entry.at))
                    .bind(&record.entry.actor)
                    .bind(&record.entry.action)
                    .bind(&record.entry.subject)
                    .bind(&record.entry.message)
                    .bind(&record.prev)
                    .bind(&record.hash)
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
                    head = atlas_promote_core::audit::AuditHead::of(Some(&record));
                }
                for (name, value) in [("audit_head_seq", head.seq.to_string()), ("audit_head_hash", head.hash.clone())] {
                    sqlx::query("UPDATE meta SET value = $2 WHERE name = $1")
                        .bind(name)
                        .bind(value)
                        .execute(&mut *tx)
                        .await
                        .map_err(fail)?;
                }

                if !journal.is_empty() {
                    let writes = serde_json::to_string(&journal).unwrap_or_default();
                    sqlx::query("INSERT INTO commits (audit_seq, writes) VALUES ($1, $2)")
                        .bind(signed(head.seq))
                        .bind(writes)
                        .execute(&mut *tx)
                        .await
                        .map_err(fail)?;
                }

                for entry in &commit.outbox {
                    let payload = serde_json::to_string(&entry.payload).unwrap_or_default();
                    sqlx::query(
                        "INSERT INTO outbox (id, kind, payload, created_at, created_us, next_attempt_us) \
                         VALUES ($1, $2, $3, $4, $5, $5)",
                    )
                    .bind(&entry.id)
                    .bind(&entry.kind)
                    .bind(payload)
                    .bind(text(entry.created_at))
                    .bind(micros(entry.created_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
                }
                self.finish(tx, op).await?;
                Ok(versions)
            }
        }
    };
}

pub(crate) use sql_commit;
