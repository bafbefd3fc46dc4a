//! A TCP front of a local HTTP server that can drop connections or cut
//! answers short.
//!
//! wiremock always answers, and always sends the whole body it declares, so
//! a server that closes a connection without a word, or one that declares
//! more bytes than it sends and then closes (a proxy restarting mid-answer),
//! needs a hop of its own. The front reads each request, asks a
//! [`FaultPlan`] whether a fault hits it, and otherwise forwards it (one
//! request per connection) and relays the answer.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the front does to one request instead of relaying it faithfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayFault {
    /// Read the request, then close the connection without answering.
    Drop,
    /// Relay the request, then send the answer's head (with its
    /// `content-length`) and only the first half of its body, and close.
    CutShort,
}

/// Decides, per request, whether a [`RelayFault`] hits it. A fake's fault
/// list implements it (counting what hit).
pub trait FaultPlan: Send + Sync + 'static {
    /// The fault for this request, if any. `path` has no query string.
    fn relay_fault(&self, method: &str, path: &str, body: &[u8]) -> Option<RelayFault>;
}

impl<F> FaultPlan for F
where
    F: Fn(&str, &str, &[u8]) -> Option<RelayFault> + Send + Sync + 'static,
{
    fn relay_fault(&self, method: &str, path: &str, body: &[u8]) -> Option<RelayFault> {
        self(method, path, body)
    }
}

/// The front: listens on a local port and relays to `upstream`. Stops when dropped.
#[derive(Debug)]
pub struct Front {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Front {
    /// Listen on a fresh local port, relaying to `upstream` as `plan` says.
    pub async fn start(plan: impl FaultPlan, upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a local port");
        let address = listener.local_addr().expect("a bound address");
        let plan: Arc<dyn FaultPlan> = Arc::new(plan);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(plan.clone(), client, upstream));
            }
        });
        Self { address, task }
    }

    /// The base URL to point a backend at.
    pub fn uri(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where the head of an HTTP message ends (after its blank line).
fn end_of_head(buffer: &[u8]) -> Option<usize> {
    buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4)
}

async fn relay(plan: Arc<dyn FaultPlan>, mut client: TcpStream, upstream: SocketAddr) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = end_of_head(&buffer) {
            break at;
        }
        match client.read(&mut chunk).await {
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
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let mut request_line = head.split_whitespace();
    let (method, target) = (request_line.next().unwrap_or(""), request_line.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let fault = plan.relay_fault(method, path, &buffer[head_end..]);
    if fault == Some(RelayFault::Drop) {
        // The whole request was read, so closing sends a FIN, not a reset.
        let _ = client.shutdown().await;
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
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    if server.write_all(&forwarded).await.is_err() {
        return;
    }
    let mut answer = Vec::new();
    if server.read_to_end(&mut answer).await.is_err() {
        return;
    }
    if fault == Some(RelayFault::CutShort)
        && let Some(body_start) = end_of_head(&answer)
    {
        let body_length = answer.len() - body_start;
        answer.truncate(body_start + body_length / 2);
    }
    let _ = client.write_all(&answer).await;
    let _ = client.shutdown().await;
}
