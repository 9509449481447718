//! Digest hashes: the HA1 Flexisip reads, and RFC 7616 responses.

use md5::Md5;
use sha2::{Digest, Sha256};

/// The algorithms an account password may be stored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
    /// Clear text, only from imports/seeds; Flexisip derives both hashes.
    ClearText,
}

impl Algorithm {
    pub fn parse(text: &str) -> Option<Algorithm> {
        match text {
            "MD5" => Some(Algorithm::Md5),
            "SHA-256" => Some(Algorithm::Sha256),
            "CLRTXT" => Some(Algorithm::ClearText),
            _ => None,
        }
    }

    /// Only these two may be chosen through the API.
    pub fn parse_hashing(text: &str) -> Option<Algorithm> {
        Algorithm::parse(text).filter(|a| *a != Algorithm::ClearText)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::ClearText => "CLRTXT",
        }
    }
}

/// Lowercase hex of H(text) for a hashing algorithm (clear text hashes as MD5).
pub fn hex_digest(algorithm: Algorithm, text: &str) -> String {
    match algorithm {
        Algorithm::Sha256 => to_hex(&Sha256::digest(text.as_bytes())),
        Algorithm::Md5 | Algorithm::ClearText => to_hex(&Md5::digest(text.as_bytes())),
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

/// HA1 = H(username:realm:password), the value stored in `passwords.password`.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    hex_digest(algorithm, &format!("{username}:{realm}:{password}"))
}

/// Does `password` match a stored row (`stored`, `algorithm`)?
pub fn password_matches(algorithm: Algorithm, stored: &str, username: &str, realm: &str, password: &str) -> bool {
    match algorithm {
        Algorithm::ClearText => constant_time_eq(stored.as_bytes(), password.as_bytes()),
        _ => constant_time_eq(
            ha1(algorithm, username, realm, password).as_bytes(),
            stored.to_ascii_lowercase().as_bytes(),
        ),
    }
}

/// Comparison whose duration does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(ha1(Algorithm::Md5, "a", "b", "c"), hex_digest(Algorithm::Md5, "a:b:c"));
        assert_eq!(hex_digest(Algorithm::Md5, ""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            hex_digest(Algorithm::Sha256, "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn matching() {
        let stored = ha1(Algorithm::Sha256, "bob", "sip.example.org", "secret");
        assert!(password_matches(Algorithm::Sha256, &stored, "bob", "sip.example.org", "secret"));
        assert!(!password_matches(Algorithm::Sha256, &stored, "bob", "sip.example.org", "Secret"));
        assert!(password_matches(Algorithm::ClearText, "pw", "bob", "x", "pw"));
        assert!(!constant_time_eq(b"a", b"ab"));
    }
}
