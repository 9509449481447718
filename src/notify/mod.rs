//! Outbound notifications and the external peers flexiapi talks to:
//!
//! - [`mail`]: e-mails (SMTP or sendmail) and their templates;
//! - [`sms`]: SMS through the OVH API, and the SMS texts;
//! - [`push`]: account-creation tokens pushed through `flexisip_pusher`;
//! - [`redis`]: the devices Flexisip's registrar keeps in Redis;
//! - [`daemon`]: SIP messages through a `linphone-daemon` UNIX socket.
//!
//! Everything here is synchronous and bounded by timeouts. The module does not
//! depend on the rest of the crate: each submodule takes a small settings
//! struct that the caller fills from the configuration.

pub mod daemon;
pub mod mail;
pub mod push;
pub mod redis;
pub mod sms;

use std::fmt;

/// Why a notification could not be delivered to its peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyError {
    /// The channel is not configured (mail driver empty, no OVH key, no pusher path...).
    Disabled,
    /// The peer could not be reached or did not answer in time (down, refused, timeout).
    Unavailable(String),
    /// The peer answered with an error (bad recipient, bad signature, daemon `Status: Error`...).
    Rejected(String),
    /// The request was refused before being sent (malformed input).
    Invalid(String),
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::Disabled => f.write_str("notification channel not configured"),
            NotifyError::Unavailable(m) => write!(f, "peer unavailable: {m}"),
            NotifyError::Rejected(m) => write!(f, "rejected by peer: {m}"),
            NotifyError::Invalid(m) => write!(f, "invalid request: {m}"),
        }
    }
}

impl std::error::Error for NotifyError {}

/// True when `s` holds a character that would end a line (or a C string) in
/// a line-based protocol: CR, LF or NUL.
pub(crate) fn has_line_break(s: &str) -> bool {
    s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// Cuts `s` to at most `max` bytes on a character boundary (for error texts).
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// What a bounded child process left behind.
pub(crate) struct ChildOutput {
    /// `None` when the child was killed after the timeout.
    pub status: Option<std::process::ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Largest amount of stdout/stderr kept from a child (the rest is drained).
const CHILD_CAPTURE_LIMIT: usize = 64 * 1024;

fn drain_capped<R: std::io::Read + Send + 'static>(mut reader: R) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = CHILD_CAPTURE_LIMIT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        let _ = tx.send(kept);
    });
    rx
}

/// Starts `cmd`, waiting out "Text file busy": the program was open for
/// writing a moment ago (an operator's deploy replacing it, or a descriptor
/// a concurrent fork inherited for the instant before its exec). It clears
/// within milliseconds.
pub(crate) fn spawn(cmd: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    let mut attempts = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 10 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Runs `cmd` (never through a shell) with stdout/stderr captured, feeding
/// `stdin` when given, and kills it when it outlives `timeout`.
pub(crate) fn run_bounded(
    cmd: &mut std::process::Command,
    stdin: Option<Vec<u8>>,
    timeout: std::time::Duration,
) -> std::io::Result<ChildOutput> {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(cmd)?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(&data);
            // dropping the pipe closes the child's stdin
        });
    }
    let out_rx = child.stdout.take().map(drain_capped);
    let err_rx = child.stderr.take().map(drain_capped);

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait()? {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    // A grandchild may keep the pipes open: do not wait for it forever.
    let collect = |rx: Option<std::sync::mpsc::Receiver<Vec<u8>>>| {
        rx.and_then(|rx| rx.recv_timeout(Duration::from_millis(500)).ok()).unwrap_or_default()
    };
    Ok(ChildOutput { status, stdout: collect(out_rx), stderr: collect(err_rx) })
}

/// The last non-empty line of a child's output, for error messages.
pub(crate) fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    truncate(text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or(""), 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_helpers() {
        assert_eq!(NotifyError::Rejected("bad".into()).to_string(), "rejected by peer: bad");
        assert!(has_line_break("a\nb"));
        assert!(has_line_break("a\rb"));
        assert!(has_line_break("a\0b"));
        assert!(!has_line_break("a b"));
        assert_eq!(truncate("héllo", 2), "h...");
        assert_eq!(truncate("abc", 10), "abc");
        let e: Box<dyn std::error::Error> = Box::new(NotifyError::Disabled);
        assert!(!e.to_string().is_empty());
    }
}
