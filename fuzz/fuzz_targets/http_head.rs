//! The HTTP/1.1 front end (`http::server`): request heads, Content-Length and
//! chunked bodies, pipelined requests on one connection, absolute-form targets.
//!
//! Input: two bytes (little-endian `u16`) for the body limit, then the bytes a
//! client sends.
#![no_main]

use flexiapi::http::server::fuzzing::{self, Head};
use libfuzzer_sys::fuzz_target;

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What every accepted head satisfies.
fn check(head: &Head, max_body: usize) {
    assert!(!head.method.is_empty() && head.method.bytes().all(is_tchar), "{head:?}");
    assert!(head.target.starts_with('/') || head.target == "*", "{head:?}");
    assert!(head.target.bytes().all(|b| b.is_ascii_graphic()), "{head:?}");
    for (name, value) in &head.headers {
        assert!(!name.is_empty() && name.bytes().all(is_tchar), "{head:?}");
        assert!(!value.contains(['\r', '\n', '\0']), "{head:?}");
        assert!(!value.starts_with([' ', '\t']) && !value.ends_with([' ', '\t']), "{head:?}");
    }
    let has = |n: &str| head.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    assert!(!(head.chunked && head.content_length.is_some()), "{head:?}");
    // Never both headers, whatever the framing chosen.
    assert!(!(has("Transfer-Encoding") && has("Content-Length")), "{head:?}");
    assert_eq!(head.chunked, has("Transfer-Encoding"), "{head:?}");
    assert_eq!(head.content_length.is_some(), has("Content-Length"), "{head:?}");
    assert!(head.content_length.is_none_or(|n| n <= max_body), "{head:?}");
    assert!(!(head.http10 && (head.chunked || head.expect_continue)), "{head:?}");
}

/// The head written back from its parsed form.
fn serialise(head: &Head) -> Vec<u8> {
    let version = if head.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let mut out = format!("{} {} {version}\r\n", head.method, head.target);
    for (name, value) in &head.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

fn round_trip(head: &Head, max_body: usize) {
    let raw = serialise(head);
    assert_eq!(fuzzing::parse_head(&raw, max_body).as_ref(), Ok(head), "{:?}", String::from_utf8_lossy(&raw));
    // Through a connection, with a body framed as announced, when within the
    // head limits (`parse_head` alone checks none, and invalid UTF-8 in a
    // value comes back as U+FFFD, three bytes per bad byte).
    let within = head.headers.len() <= 100
        && raw.len() <= 60 * 1024
        && raw.split(|b| *b == b'\n').all(|line| line.len() <= 8 * 1024);
    if !within {
        return;
    }
    let mut sent = raw.clone();
    let body: Vec<u8> = match head.content_length {
        Some(n) => (0..n).map(|i| i as u8).collect(),
        None if head.chunked => b"body".iter().copied().filter(|_| max_body >= 4).collect(),
        None => Vec::new(),
    };
    if head.chunked {
        if !body.is_empty() {
            sent.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            sent.extend_from_slice(&body);
            sent.extend_from_slice(b"\r\n");
        }
        sent.extend_from_slice(b"0\r\n\r\n");
    } else {
        sent.extend_from_slice(&body);
    }
    let (requests, end) = fuzzing::connection(&sent, max_body);
    assert_eq!(end, 0, "{:?}", String::from_utf8_lossy(&sent));
    assert_eq!(requests, vec![(head.clone(), body)], "{:?}", String::from_utf8_lossy(&sent));
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let max_body = u16::from_le_bytes([data[0], data[1]]) as usize;
    let raw = &data[2..];

    // A head on its own (what `Input::head` hands over, or anything else).
    if let Ok(head) = fuzzing::parse_head(raw, max_body) {
        check(&head, max_body);
        round_trip(&head, max_body);
    }

    // A connection: heads, bodies, pipelining.
    let (requests, end) = fuzzing::connection(raw, max_body);
    assert!([0, 400, 408, 413, 414, 417, 431, 501, 505].contains(&end), "{end}");
    for (head, body) in &requests {
        check(head, max_body);
        assert!(body.len() <= max_body, "{head:?}");
        if let Some(n) = head.content_length {
            assert_eq!(body.len(), n);
        }
    }

    // The chunked decoder on its own: within the limit, and a body written
    // back as one chunk decodes to itself with the same bytes left over.
    if let Ok((body, rest)) = fuzzing::chunked(raw, max_body) {
        assert!(body.len() <= max_body);
        let mut again = Vec::new();
        if !body.is_empty() {
            again.extend_from_slice(format!("{:X};x=1\r\n", body.len()).as_bytes());
            again.extend_from_slice(&body);
            again.extend_from_slice(b"\r\n");
        }
        again.extend_from_slice(b"0\r\nTrailer: t\r\n\r\n");
        again.extend_from_slice(&rest);
        assert_eq!(fuzzing::chunked(&again, max_body), Ok((body, rest)));
    }

    // Absolute-form targets on any text, not only graphic ASCII.
    if let Ok(text) = std::str::from_utf8(raw) {
        let path = fuzzing::origin_form(text);
        let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
        if (lower.starts_with("http://") && text.len() > 7) || (lower.starts_with("https://") && text.len() > 8) {
            assert!(path.starts_with('/'), "{text:?} -> {path:?}");
        } else {
            assert_eq!(path, text);
        }
    }
});
