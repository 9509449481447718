//! The SIP `From` header sent with DIGEST requests, and `user@domain` paths.
#![no_main]

use flexiapi::domain::sip::SipAddress;
use libfuzzer_sys::fuzz_target;

fn no_line_breaks(s: &str) -> bool {
    !s.contains(['\r', '\n'])
}

/// A well-formed `"display" <sip:user@host>;tag=x` built from the input must
/// give back exactly that user and host, whatever the quoted display name holds.
fn well_formed(text: &str) {
    let mut parts = text.splitn(3, '\u{0}');
    let (Some(display), Some(user), Some(host)) = (parts.next(), parts.next(), parts.next()) else { return };
    let user: String = user.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.!~*'()+".contains(*c)).collect();
    let host: String = host.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-').collect();
    if user.is_empty() || host.is_empty() {
        return;
    }
    let display: String = display.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let quoted = display.replace('\\', "\\\\").replace('"', "\\\"");
    let header = format!("\"{quoted}\" <sip:{user}@{host}>;tag=1");
    let parsed = SipAddress::parse_from_header(&header);
    assert_eq!(parsed, Some(SipAddress { username: user, domain: host }), "{header:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    well_formed(text);
    if let Some(a) = SipAddress::parse_from_header(text) {
        assert!(!a.username.is_empty() && !a.domain.is_empty(), "{a:?}");
        assert!(no_line_breaks(&a.username) && no_line_breaks(&a.domain), "{a:?}");
        assert!(!a.domain.contains(char::is_whitespace), "{a:?}");
    }
    if let Some(a) = SipAddress::parse_plain(text) {
        assert!(!a.username.is_empty() && !a.domain.is_empty(), "{a:?}");
        assert!(no_line_breaks(&a.domain) && !a.domain.contains(char::is_whitespace), "{a:?}");
        // The `sip:` URI of a plain address reads back as the same address.
        assert_eq!(SipAddress::parse_plain(&a.uri()), Some(a.clone()));
    }
});
