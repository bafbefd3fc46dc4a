//! What `tracing` writes, captured: for tests that prove a secret never
//! shows in logs.

use std::cell::RefCell;
use std::io;
use std::sync::{Arc, Mutex, Once};

use tracing_subscriber::fmt::format::FmtSpan;

/// Everything `tracing` writes on the current thread, at every level, with
/// span events, while the [`Capturing`] guard from [`CapturedLogs::start`]
/// lives.
///
/// The first `start` in a process installs a global subscriber that writes
/// each thread's output to that thread's capture, if it has one, and drops
/// the rest. A global subscriber, unlike a thread's default one, cannot miss
/// an event because a test on another thread, with no subscriber, had its
/// callsite registered as never interesting first. So: drive the code under
/// test on the current thread (`#[tokio::test]` uses a current-thread
/// runtime), and do not set another global subscriber in the same test
/// binary.
///
/// ```
/// use atlas_promote_core::testkit::CapturedLogs;
///
/// let (logs, _capturing) = CapturedLogs::start();
/// tracing::info!(backend = "mine", "calling the API");
/// assert!(logs.text().contains("calling the API"));
/// assert!(!logs.text().contains("the-secret-token"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURE: RefCell<Option<CapturedLogs>> = const { RefCell::new(None) };
}

/// Ends the capture of its thread when dropped.
#[derive(Debug)]
pub struct Capturing(());

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURE.with(|c| c.borrow_mut().take());
    }
}

/// Writes to the capture of the thread it writes on, if any.
struct ThisThread;

impl io::Write for ThisThread {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(captured) = &*c.borrow() {
                captured.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// Start capturing what this thread logs.
    ///
    /// # Panics
    /// If another global `tracing` subscriber was set in this process.
    pub fn start() -> (Self, Capturing) {
        static GLOBAL: Once = Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_span_events(FmtSpan::FULL)
                .with_writer(|| ThisThread)
                .finish();
            if tracing::subscriber::set_global_default(subscriber).is_err() {
                panic!("CapturedLogs needs to set the global tracing subscriber, and another one is set");
            }
        });
        let captured = Self::default();
        CAPTURE.with(|c| *c.borrow_mut() = Some(captured.clone()));
        (captured, Capturing(()))
    }

    /// What was captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_thread_and_only_while_capturing() {
        let (logs, capturing) = CapturedLogs::start();
        tracing::warn!("on this thread");
        std::thread::spawn(|| tracing::warn!("on another thread")).join().unwrap();
        let span = tracing::trace_span!("a.span", n = 1);
        span.in_scope(|| tracing::debug!("inside"));
        drop(capturing);
        tracing::warn!("after the capture");
        let text = logs.text();
        assert!(text.contains("on this thread") && text.contains("a.span") && text.contains("inside"), "{text}");
        assert!(!text.contains("another thread") && !text.contains("after the capture"), "{text}");
    }
}
