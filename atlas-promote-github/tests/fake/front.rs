//! A TCP front of the wiremock server that can drop connections: wiremock
//! always answers, so a GitHub that closes a connection without a word
//! needs a hop of its own. The front reads each request, closes the
//! connection unanswered when a [`FaultKind::Drop`] fault hits it, and
//! otherwise forwards it (one request per connection) and relays the answer.
//!
//! Plain threads and blocking sockets: the front needs nothing from the
//! test's runtime, and the runtime features of this crate's dev-dependencies
//! stay what they are.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use super::{FakeGitHub, FaultKind};

/// Longer than any delay a test injects: a relay never hangs for good.
const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Front {
    address: SocketAddr,
    stopped: Arc<AtomicBool>,
}

impl Front {
    pub fn start(fake: FakeGitHub, upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let address = listener.local_addr().expect("a bound address");
        let stopped = Arc::new(AtomicBool::new(false));
        let stop = stopped.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let fake = fake.clone();
                thread::spawn(move || relay(&fake, client, upstream));
            }
        });
        Self { address, stopped }
    }

    pub fn uri(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accepting thread so it sees the flag.
        let _ = TcpStream::connect(self.address);
    }
}

fn relay(fake: &FakeGitHub, mut client: TcpStream, upstream: SocketAddr) {
    let _ = client.set_read_timeout(Some(RELAY_TIMEOUT));
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let mut request_line = head.split_whitespace();
    let (method, target) = (request_line.next().unwrap_or(""), request_line.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if let Some(FaultKind::Drop) = fake.take_fault_of(method, path, &buffer[head_end..], true) {
        // Dropped: the whole request was read, so closing sends a FIN, not a reset.
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    // One request per upstream connection: ask the server to close after answering.
    let mut forwarded: Vec<u8> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .flat_map(|l| [l.as_bytes(), b"\r\n"].concat())
        .collect();
    forwarded.extend_from_slice(b"connection: close\r\n\r\n");
    forwarded.extend_from_slice(&buffer[head_end..]);
    let Ok(mut server) = TcpStream::connect(upstream) else { return };
    let _ = server.set_read_timeout(Some(RELAY_TIMEOUT));
    if server.write_all(&forwarded).is_err() {
        return;
    }
    let mut answer = Vec::new();
    if server.read_to_end(&mut answer).is_ok() {
        let _ = client.write_all(&answer);
        let _ = client.shutdown(Shutdown::Both);
    }
}
