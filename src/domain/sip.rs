//! SIP addresses as they arrive in paths (`user@domain`) and in the `From`
//! header (`sip:user@domain`, `"Name" <sips:user@domain>;tag=x`).

use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipAddress {
    pub username: String,
    pub domain: String,
}

impl SipAddress {
    /// `user@domain`; `None` when there is no `@` or a side is empty.
    pub fn parse_plain(text: &str) -> Option<SipAddress> {
        let text = text.strip_prefix("sip:").or_else(|| text.strip_prefix("sips:")).unwrap_or(text);
        let (user, domain) = text.rsplit_once('@')?;
        if user.is_empty() || domain.is_empty() || domain.contains(char::is_whitespace) {
            return None;
        }
        Some(SipAddress { username: user.to_string(), domain: domain.to_string() })
    }

    /// A `From` header value: optional display name, optional angle brackets,
    /// `sip:` or `sips:`, parameters after `;` dropped, user part URL-decoded.
    pub fn parse_from_header(header: &str) -> Option<SipAddress> {
        let header = header.trim();
        // A quoted display name may itself hold `<` or `>`: look past it.
        let (quoted_name, rest) = match header.strip_prefix('"') {
            Some(quoted) => (true, after_quoted_string(quoted)?),
            None => (false, header),
        };
        let uri = match (rest.find('<'), rest.rfind('>')) {
            (Some(start), Some(end)) if start < end => &rest[start + 1..end],
            (None, None) if !quoted_name => rest,
            _ => return None,
        };
        let uri = uri.trim();
        let uri = uri.strip_prefix("sip:").or_else(|| uri.strip_prefix("sips:"))?;
        let uri = uri.split(';').next().unwrap_or("");
        let uri = uri.split('?').next().unwrap_or("");
        let (user, host) = uri.rsplit_once('@')?;
        let user = percent_decode_str(user).decode_utf8().ok()?.into_owned();
        // A port is not part of the account's domain.
        let host = match host.rsplit_once(':') {
            Some((h, port)) if !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        if user.is_empty() || host.is_empty() || user.contains(['\r', '\n']) || host.contains(char::is_whitespace) {
            return None;
        }
        Some(SipAddress { username: user, domain: host.to_string() })
    }

    pub fn uri(&self) -> String {
        format!("sip:{}@{}", self.username, self.domain)
    }
}

/// What follows the closing quote of a quoted-string whose opening quote has
/// been removed (`\\` escapes the next character); `None` when unterminated.
fn after_quoted_string(text: &str) -> Option<&str> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(&text[i + 1..]),
            _ => {}
        }
    }
    None
}

impl std::fmt::Display for SipAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.username, self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(u: &str, d: &str) -> Option<SipAddress> {
        Some(SipAddress { username: u.into(), domain: d.into() })
    }

    #[test]
    fn from_headers() {
        assert_eq!(SipAddress::parse_from_header("sip:bob@sip.example.org"), addr("bob", "sip.example.org"));
        assert_eq!(
            SipAddress::parse_from_header("sip:%2B3312@sip.example.org;tag=1"),
            addr("+3312", "sip.example.org")
        );
        assert_eq!(
            SipAddress::parse_from_header("\"Bob\" <sips:bob@example.org:5061>;tag=x"),
            addr("bob", "example.org")
        );
        assert_eq!(SipAddress::parse_from_header("<sip:bob@example.org>"), addr("bob", "example.org"));
        for bad in ["", "bob@example.org", "sip:bob", "sip:@x", "sip:bob@", "<sip:bob@x", "sip:%ff@x"] {
            assert_eq!(SipAddress::parse_from_header(bad), None, "{bad}");
        }
    }

    /// Found by `fuzz/fuzz_targets/from_header.rs`: a `<` inside the quoted
    /// display name was taken for the start of the URI, refusing a valid header.
    #[test]
    fn fuzz_regression_angle_bracket_in_display_name() {
        assert_eq!(
            SipAddress::parse_from_header("\"<si6\" <sip:bob2001d@b81060subjectxB>;tag=1"),
            addr("bob2001d", "b81060subjectxB")
        );
        assert_eq!(SipAddress::parse_from_header("\"a<b>\\\"c\" <sips:bob@example.org>"), addr("bob", "example.org"));
        // A display name still needs the URI in angle brackets, and its quote closed.
        for bad in ["\"Bob\" sip:bob@example.org", "\"Bob <sip:bob@example.org>"] {
            assert_eq!(SipAddress::parse_from_header(bad), None, "{bad}");
        }
    }

    #[test]
    fn plain() {
        assert_eq!(SipAddress::parse_plain("bob@x.org"), addr("bob", "x.org"));
        assert_eq!(SipAddress::parse_plain("bob"), None);
    }
}
