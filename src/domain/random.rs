//! Secrets from the operating system's CSPRNG.

use rand::rngs::OsRng;
use rand::TryRngCore;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A uniformly random integer in `0..bound`, rejection-sampled (no modulo bias).
fn below(bound: u32) -> u32 {
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        // The OS generator failing is unrecoverable for anything secret.
        let value = OsRng.try_next_u32().expect("the OS random generator is unavailable");
        if value < zone {
            return value % bound;
        }
    }
}

/// `[A-Za-z0-9]{len}`: tokens, keys, nonces.
pub fn alphanumeric(len: usize) -> String {
    (0..len).map(|_| ALPHANUMERIC[below(ALPHANUMERIC.len() as u32) as usize] as char).collect()
}

/// A 4-digit PIN, `1000`–`9999`.
pub fn pin() -> String {
    (1000 + below(9000)).to_string()
}

/// Token lengths used across the API (api.md §3.2).
pub const TOKEN_LEN: usize = 13;
pub const NONCE_LEN: usize = 32;
pub const AUTH_TOKEN_LEN: usize = 32;
pub const API_KEY_LEN: usize = 40;
pub const EMAIL_HASH_LEN: usize = 16;
pub const SESSION_ID_LEN: usize = 40;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let t = alphanumeric(40);
        assert_eq!(t.len(), 40);
        assert!(t.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(alphanumeric(32), alphanumeric(32));
        for _ in 0..200 {
            let p: u32 = pin().parse().unwrap();
            assert!((1000..=9999).contains(&p));
        }
    }
}
