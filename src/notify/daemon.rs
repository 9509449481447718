//! SIP messages through `linphone-daemon` (api.md section 5.6, operations.md
//! section 5).
//!
//! One connection per message on the daemon's UNIX stream socket: write the
//! single line `message sip:<to> <body>\n`, then read the reply
//! (`Status: Ok` + `Id: <id>`, or `Status: Error` + `Reason: <text>`) until
//! it is complete, the daemon closes, or the timeout expires.
//!
//! Line breaks: the daemon protocol is line based (a newline ends the
//! command and the rest of the body would be lost or run as another
//! command), so a `to` or `body` holding CR, LF or NUL is refused with
//! [`NotifyError::Invalid`] rather than silently altered.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{has_line_break, NotifyError};

/// Message of every failure to talk to the daemon (the reference's text).
pub const SOCKET_ERROR: &str = "The internal socket cannot be requested properly";

/// Default limit of the whole exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Once `Status: Ok` arrived, how long to wait for the `Id` line.
const ID_GRACE: Duration = Duration::from_millis(500);

/// Largest reply read.
const MAX_REPLY: usize = 64 * 1024;

/// The command line sent for a message.
pub fn message_command(to: &str, body: &str) -> String {
    format!("message sip:{to} {body}\n")
}

/// `Key: value` pairs of a reply (lines split on CR/LF, key = text before
/// the first `:`, both trimmed, empty lines skipped).
pub fn parse_reply(reply: &str) -> Vec<(String, String)> {
    reply
        .split(['\r', '\n'])
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect()
}

fn value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
}

/// Whether the complete lines received so far make a complete answer.
fn complete(received: &str) -> bool {
    // only lines already terminated count
    let done = match received.rfind(['\n', '\r']) {
        Some(i) => &received[..i],
        None => return false,
    };
    let pairs = parse_reply(done);
    match value(&pairs, "Status") {
        Some(s) if s.eq_ignore_ascii_case("ok") => value(&pairs, "Id").is_some(),
        Some(_) => value(&pairs, "Reason").is_some(),
        None => false,
    }
}

/// Serialises the exchanges with the daemon (one client at a time).
static DAEMON_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Pause before the one retry after a reset.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Why an exchange gave no reply.
enum Exchange {
    /// Refused, reset or closed before any byte of reply (command not taken).
    Reset,
    /// Anything else (socket missing, timeout...).
    Failed,
}

fn is_reset(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionReset | BrokenPipe | ConnectionAborted)
}

/// One connection: writes `command`, reads the reply until it is complete,
/// the daemon closes, or `deadline`. Returns the bytes received.
fn exchange(socket_path: &Path, command: &str, deadline: Instant) -> Result<Vec<u8>, Exchange> {
    let fail = |e: std::io::Error| if is_reset(&e) { Exchange::Reset } else { Exchange::Failed };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Exchange::Failed);
    }
    let mut stream = UnixStream::connect(socket_path).map_err(fail)?;
    stream.set_write_timeout(Some(left)).map_err(fail)?;
    stream.write_all(command.as_bytes()).map_err(fail)?;
    stream.flush().map_err(fail)?;

    let mut received: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    let mut status_seen_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let mut until = deadline;
        if let Some(t) = status_seen_at {
            until = until.min(t + ID_GRACE);
        }
        if now >= until {
            break;
        }
        if stream.set_read_timeout(Some(until - now)).is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) if received.is_empty() => {
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return Err(Exchange::Reset);
            }
            Ok(0) => break,
            Ok(n) => {
                received.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&received);
                if complete(&text) || received.len() >= MAX_REPLY {
                    break;
                }
                if status_seen_at.is_none() && value(&parse_reply(&text), "Status").is_some() {
                    status_seen_at = Some(Instant::now());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if received.is_empty() && is_reset(&e) => return Err(Exchange::Reset),
            Err(_) => break, // timeout or reset: judge what we have
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(received)
}

/// Sends `body` to `to` (`user@domain`, no `sip:` scheme) with [`DEFAULT_TIMEOUT`].
pub fn send_message(socket_path: &Path, to: &str, body: &str) -> Result<String, NotifyError> {
    send_message_with_timeout(socket_path, to, body, DEFAULT_TIMEOUT)
}

/// Sends a message and returns the daemon's message id (empty if the daemon
/// said `Status: Ok` without an `Id`). `Invalid` for an empty `to`/`body`,
/// a `to` with spaces, or a line break in either; `Rejected(reason)` on
/// `Status: Error`; `Unavailable(SOCKET_ERROR)` (exactly that text) when the
/// socket cannot be used or the reply has no `Status` within `timeout`.
pub fn send_message_with_timeout(
    socket_path: &Path,
    to: &str,
    body: &str,
    timeout: Duration,
) -> Result<String, NotifyError> {
    if has_line_break(to) || has_line_break(body) {
        return Err(NotifyError::Invalid("to and body cannot contain line breaks".into()));
    }
    let to = to.trim();
    if to.is_empty() || body.is_empty() {
        return Err(NotifyError::Invalid("to and body are required".into()));
    }
    if to.chars().any(char::is_whitespace) {
        return Err(NotifyError::Invalid("to cannot contain spaces".into()));
    }
    let unavailable = || NotifyError::Unavailable(SOCKET_ERROR.to_string());
    let timeout = if timeout.is_zero() { DEFAULT_TIMEOUT } else { timeout };
    let deadline = Instant::now() + timeout;
    let command = message_command(to, body);

    // The daemon serves one client at a time and resets a second one:
    // exchanges are serialised (waiting for our turn counts in `timeout`).
    let _turn = loop {
        match DAEMON_TURN.try_lock() {
            Ok(guard) => break guard,
            Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                if Instant::now() >= deadline {
                    return Err(unavailable());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    // A reset before any reply means the daemon did not take the command
    // (it was still busy with a previous client, e.g. another process):
    // one retry is safe.
    let received = match exchange(socket_path, &command, deadline) {
        Err(Exchange::Reset) if deadline.saturating_duration_since(Instant::now()) > RETRY_PAUSE * 2 => {
            std::thread::sleep(RETRY_PAUSE);
            exchange(socket_path, &command, deadline)
        }
        other => other,
    };
    let Ok(received) = received else { return Err(unavailable()) };

    let pairs = parse_reply(&String::from_utf8_lossy(&received));
    match value(&pairs, "Status") {
        Some(s) if s.eq_ignore_ascii_case("ok") => Ok(value(&pairs, "Id").unwrap_or("").to_string()),
        Some(_) => Err(NotifyError::Rejected(
            value(&pairs, "Reason").filter(|r| !r.is_empty()).unwrap_or("Unknown error").to_string(),
        )),
        None => Err(unavailable()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    fn socket_path() -> PathBuf {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("flexiapi-ld-{}-{n}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    /// A fake daemon: reads one line, answers with `chunks` (pausing
    /// `pause` between them), keeps the connection open `linger` after.
    fn fake_daemon(
        chunks: Vec<&'static str>,
        pause: Duration,
        linger: Duration,
    ) -> (PathBuf, std::thread::JoinHandle<String>) {
        let path = socket_path();
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut w = stream;
            for c in chunks {
                let _ = w.write_all(c.as_bytes());
                std::thread::sleep(pause);
            }
            std::thread::sleep(linger);
            line
        });
        (path, handle)
    }

    #[test]
    fn ok_reply_with_id() {
        // the daemon keeps the socket open: the client must stop at the Id line
        let (path, h) = fake_daemon(vec!["Status: Ok\n\nId: 42\n\n"], Duration::ZERO, Duration::from_millis(1500));
        let started = Instant::now();
        assert_eq!(send_message(&path, "bob@sip.example.org", "Hello Bob, ça va ?").unwrap(), "42");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(h.join().unwrap(), "message sip:bob@sip.example.org Hello Bob, ça va ?\n");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn reply_in_several_chunks() {
        let (path, h) = fake_daemon(
            vec!["Status: O", "k\r\n\r\nId", ": abc-1\r\n"],
            Duration::from_millis(50),
            Duration::from_millis(200),
        );
        assert_eq!(send_message(&path, "a@b", "x").unwrap(), "abc-1");
        h.join().unwrap();
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn error_reply() {
        let (path, h) =
            fake_daemon(vec!["Status: Error\nReason: Bad sip uri.\n"], Duration::ZERO, Duration::from_millis(200));
        assert_eq!(send_message(&path, "sip:a@b", "x"), Err(NotifyError::Rejected("Bad sip uri.".into())));
        h.join().unwrap();
        // error then close without a reason
        let (path2, h) = fake_daemon(vec!["Status: Error\n"], Duration::ZERO, Duration::ZERO);
        assert_eq!(send_message(&path2, "a@b", "x"), Err(NotifyError::Rejected("Unknown error".into())));
        h.join().unwrap();
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&path2);
    }

    #[test]
    fn ok_without_id_closes() {
        let (path, h) = fake_daemon(vec!["Status: Ok\n"], Duration::ZERO, Duration::ZERO);
        assert_eq!(send_message(&path, "a@b", "x").unwrap(), "");
        h.join().unwrap();
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn unavailable_cases() {
        let missing = socket_path();
        assert_eq!(send_message(&missing, "a@b", "x"), Err(NotifyError::Unavailable(SOCKET_ERROR.into())));
        // garbage then close
        let (path, h) = fake_daemon(vec!["Unknown thing\n"], Duration::ZERO, Duration::ZERO);
        assert_eq!(send_message(&path, "a@b", "x"), Err(NotifyError::Unavailable(SOCKET_ERROR.into())));
        h.join().unwrap();
        // silent daemon: bounded by the timeout
        let (path2, _h) = fake_daemon(vec![], Duration::ZERO, Duration::from_secs(3));
        let started = Instant::now();
        let r = send_message_with_timeout(&path2, "a@b", "x", Duration::from_millis(300));
        assert_eq!(r, Err(NotifyError::Unavailable(SOCKET_ERROR.into())));
        assert!(started.elapsed() < Duration::from_secs(2));
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&path2);
    }

    #[test]
    fn retries_once_after_a_reset_and_serialises_callers() {
        // Like the daemon busy with another client: the first connection is
        // closed without a reply; the retry is served.
        let path = socket_path();
        let listener = UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            drop(listener.accept().unwrap());
            let (stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(stream.try_clone().unwrap()).read_line(&mut line).unwrap();
            (&stream).write_all(b"Status: Ok\n\nId: again\n\n").unwrap();
            std::thread::sleep(Duration::from_millis(200));
            line
        });
        assert_eq!(send_message(&path, "a@b", "x").unwrap(), "again");
        assert_eq!(h.join().unwrap(), "message sip:a@b x\n");
        // Two resets: unavailable, quickly.
        let listener = UnixListener::bind({
            let _ = std::fs::remove_file(&path);
            &path
        })
        .unwrap();
        let h = std::thread::spawn(move || {
            drop(listener.accept().unwrap());
            drop(listener.accept().unwrap());
        });
        let started = Instant::now();
        assert_eq!(send_message(&path, "a@b", "x"), Err(NotifyError::Unavailable(SOCKET_ERROR.into())));
        assert!(started.elapsed() < Duration::from_secs(2));
        h.join().unwrap();
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn refuses_line_breaks() {
        let p = socket_path();
        for (to, body) in
            [("a@b", "x\ny"), ("a@b", "x\r"), ("a@b\n", "x"), ("a@b", ""), ("", "x"), ("a b@c", "x"), ("a@b", "x\0")]
        {
            assert!(matches!(send_message(&p, to, body), Err(NotifyError::Invalid(_))), "{to:?} {body:?}");
        }
        assert_eq!(
            parse_reply("Status: Ok\r\n\r\nId: 1:2\n"),
            vec![("Status".to_string(), "Ok".to_string()), ("Id".to_string(), "1:2".to_string())]
        );
    }
}
