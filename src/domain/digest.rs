//! RFC 7616 `Authorization: Digest ...` parsing and response computation.

use super::hash::{hex_digest, Algorithm};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestParams {
    pub username: Option<String>,
    pub realm: Option<String>,
    pub nonce: Option<String>,
    pub uri: Option<String>,
    pub response: Option<String>,
    pub algorithm: Option<String>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
}

/// Parses the header value; `None` when it is not a Digest header at all or
/// is malformed (unterminated quote, a parameter without `=`).
pub fn parse_authorization(header: &str) -> Option<DigestParams> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut params = DigestParams::default();
    let mut chars = rest.char_indices().peekable();
    let bytes = rest;
    loop {
        // skip separators
        while let Some((_, c)) = chars.peek() {
            if c.is_whitespace() || *c == ',' {
                chars.next();
            } else {
                break;
            }
        }
        let Some(&(start, _)) = chars.peek() else { break };
        let mut eq = None;
        for (i, c) in chars.by_ref() {
            if c == '=' {
                eq = Some(i);
                break;
            }
            if c == ',' {
                return None;
            }
        }
        let eq = eq?;
        let name = bytes[start..eq].trim().to_ascii_lowercase();
        let value = if let Some((_, '"')) = chars.peek() {
            chars.next();
            let mut value = String::new();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                return None;
            }
            value
        } else {
            let mut value = String::new();
            while let Some((_, c)) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
            value.trim().to_string()
        };
        let slot = match name.as_str() {
            "username" => &mut params.username,
            "realm" => &mut params.realm,
            "nonce" => &mut params.nonce,
            "uri" => &mut params.uri,
            "response" => &mut params.response,
            "algorithm" => &mut params.algorithm,
            "cnonce" => &mut params.cnonce,
            "opaque" => &mut params.opaque,
            "qop" => &mut params.qop,
            "nc" => &mut params.nc,
            _ => continue,
        };
        *slot = Some(value);
    }
    Some(params)
}

/// The nonce count as sent (8 hex digits), as a number.
pub fn parse_nc(nc: &str) -> Option<i64> {
    if nc.is_empty() || nc.len() > 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    i64::from_str_radix(nc, 16).ok()
}

/// H(HA1:nonce:nc:cnonce:qop:H(method:uri)).
pub fn expected_response(
    algorithm: Algorithm,
    ha1: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
    qop: &str,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = hex_digest(algorithm, &format!("{method}:{uri}"));
    hex_digest(algorithm, &format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
}

/// One `WWW-Authenticate` value, in the exact shape FlexiAPI sends.
pub fn challenge(realm: &str, algorithm: Algorithm, nonce: &str, opaque: &str) -> String {
    format!(
        "Digest realm=\"{}\",qop=\"auth\",algorithm={},nonce=\"{nonce}\",opaque=\"{opaque}\"",
        realm.replace(['"', '\\', '\r', '\n'], ""),
        algorithm.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc_example() {
        let p = parse_authorization(
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", algorithm=SHA-256, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", \
             qop=auth, response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        )
        .unwrap();
        assert_eq!(p.username.as_deref(), Some("Mufasa"));
        assert_eq!(p.algorithm.as_deref(), Some("SHA-256"));
        assert_eq!(p.nc.as_deref(), Some("00000001"));
        assert_eq!(p.qop.as_deref(), Some("auth"));
        let ha1 = crate::domain::hash::ha1(Algorithm::Sha256, "Mufasa", "http-auth@example.org", "Circle of Life");
        assert_eq!(
            expected_response(
                Algorithm::Sha256,
                &ha1,
                p.nonce.as_deref().unwrap(),
                "00000001",
                p.cnonce.as_deref().unwrap(),
                "auth",
                "GET",
                "/dir/index.html"
            ),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["", "Basic abc", "Digest username=\"open", "Digest a,b", "Digest"] {
            assert_eq!(parse_authorization(bad), None, "{bad}");
        }
        assert_eq!(parse_nc("0000000g"), None);
        assert_eq!(parse_nc("00000010"), Some(16));
        assert_eq!(parse_nc("123456789"), None);
    }
}
