//! A PostgreSQL connection dropped in the middle of a commit (through a TCP
//! relay that cuts it just before or just after the `COMMIT` reaches the
//! server): the commit fails with a temporary error, it either happened or
//! did not, and a writer finds out which by reading again or by retrying
//! the same versioned write (a retry of a commit that happened is a
//! conflict naming the version it left).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use atlas_promote_core::{Error, StateStore, Write};
use atlas_promote_sql::{OpenOptions, SqlStore};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const KEY: &str = "promotion/trunk/9fceb02";

/// What the relay does with the next `COMMIT` it sees.
const PASS: u8 = 0;
const CUT_BEFORE: u8 = 1;
const CUT_AFTER: u8 = 2;

/// A TCP relay to PostgreSQL that can cut a connection at its next `COMMIT`.
struct Relay {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let shared = mode.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else { continue };
                tokio::spawn(relay(client, server, shared.clone()));
            }
        });
        Self { addr, mode }
    }

    fn cut_next_commit(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

/// Forward both ways; at a `COMMIT` (a simple query message carrying
/// `COMMIT\0`) while a cut is armed, stop answering the client, forward the
/// `COMMIT` or not, and close the connection to the server.
async fn relay(client: TcpStream, server: TcpStream, mode: Arc<AtomicU8>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let muted = Arc::new(AtomicBool::new(false));
    let mute = muted.clone();
    let answers = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) if mute.load(Ordering::SeqCst) => break,
                Ok(n) => {
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        // Dropping the client's half closes its connection.
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match client_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let commit = chunk.windows(7).any(|w| w == b"COMMIT\0");
        let armed = mode.load(Ordering::SeqCst);
        if commit && armed != PASS {
            mode.store(PASS, Ordering::SeqCst);
            muted.store(true, Ordering::SeqCst);
            if armed == CUT_AFTER {
                let _ = server_write.write_all(chunk).await;
                let _ = server_write.flush().await;
                // Give the server the time to apply it before it sees the end.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            break;
        }
        if server_write.write_all(chunk).await.is_err() {
            break;
        }
    }
    drop(server_write);
    let _ = answers.await;
}

/// `url` with its host and port replaced by `addr`, and the server's `host:port`.
fn through(url: &str, addr: SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (user, rest) = rest.rsplit_once('@').map_or(("", rest), |(u, r)| (u, r));
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = if host.contains(':') { host.to_owned() } else { format!("{host}:5432") };
    let user = if user.is_empty() { String::new() } else { format!("{user}@") };
    (format!("{scheme}://{user}{addr}/{path}"), host)
}

fn put(expected: Option<u64>, step: u32) -> Write {
    Write::Put { key: KEY.into(), expected, value: json!({ "step": step }) }
}

/// A store through a relay, holding the document at version 1; `None` when
/// no PostgreSQL is configured.
async fn store_through_relay(test: &str) -> Option<(SqlStore, Relay)> {
    let url = common::postgres_url(test)?;
    let (_, upstream) = through(&url, "127.0.0.1:1".parse().unwrap());
    let relay = Relay::start(upstream).await;
    // In the clear, so that the relay can see the `COMMIT` go by.
    let (relayed, _) = through(&url, relay.addr);
    let relayed = format!("{relayed}{}sslmode=disable", if relayed.contains('?') { '&' } else { '?' });
    let options = OpenOptions::new().with_schema(common::fresh_schema(test));
    let store = SqlStore::open_with(&relayed, options).await.expect("open through the relay");
    store.commit(vec![put(None, 1)], vec![common::entry(1)]).await.expect("a commit through the relay");
    Some((store, relay))
}

#[tokio::test]
async fn a_connection_dropped_before_the_commit_reached_the_server_is_temporary_and_nothing_was_written() {
    let Some((store, relay)) = store_through_relay("dropped_before").await else { return };
    relay.cut_next_commit(CUT_BEFORE);
    let error = store.commit(vec![put(Some(1), 2)], vec![common::entry(2)]).await.expect_err("the connection is cut");
    assert!(error.is_temporary(), "a dropped connection is temporary: {error:?}");

    let document = store.get(KEY).await.unwrap().unwrap();
    assert_eq!(document.version, 1, "the commit did not happen");
    assert_eq!(store.audit(0).await.unwrap().len(), 1, "nor did its audit entry");
    // Retrying the same write is how a writer goes on: it applies now, once.
    assert_eq!(store.commit(vec![put(Some(1), 2)], vec![common::entry(2)]).await.unwrap(), [2]);
    assert_eq!(store.audit(0).await.unwrap().len(), 2);
    store.verify().await.expect("the chain verifies");
}

#[tokio::test]
async fn a_connection_dropped_after_the_commit_reached_the_server_is_temporary_and_the_commit_is_found() {
    let Some((store, relay)) = store_through_relay("dropped_after").await else { return };
    relay.cut_next_commit(CUT_AFTER);
    let error = store.commit(vec![put(Some(1), 2)], vec![common::entry(2)]).await.expect_err("the answer is lost");
    assert!(error.is_temporary(), "a dropped connection is temporary: {error:?}");

    let document = store.get(KEY).await.unwrap().unwrap();
    assert_eq!((document.version, document.value), (2, json!({"step": 2})), "the commit happened");
    assert_eq!(store.audit(0).await.unwrap().len(), 2, "with its audit entry, once");
    // Retrying the same write finds out too: a conflict at the version the
    // lost commit left, and nothing written twice.
    let retry = store.commit(vec![put(Some(1), 2)], vec![common::entry(2)]).await.expect_err("already applied");
    assert!(matches!(retry, Error::Conflict { expected: Some(1), found: Some(2), .. }), "{retry:?}");
    assert_eq!(store.audit(0).await.unwrap().len(), 2);
    store.verify().await.expect("the chain verifies");
}
