//! Secrets from the operating system's CSPRNG (issue 7: all random
//! material comes from it; a user-space generator would save a system call
//! per draw, about 2% of a DIGEST round, not worth departing from that).

use rand::rngs::OsRng;
use rand::TryRngCore;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Random bytes from the OS generator, `n` at a time: one system call per
/// secret rather than one per character.
fn bytes(n: usize) -> Vec<u8> {
    let mut buffer = vec![0u8; n];
    // The OS generator failing is unrecoverable for anything secret.
    OsRng.try_fill_bytes(&mut buffer).expect("the OS random generator is unavailable");
    buffer
}

/// `len` symbols drawn uniformly from `alphabet` (at most 256 symbols):
/// bytes at or above the largest multiple of the alphabet's size are
/// dropped, so there is no modulo bias.
fn draw(alphabet: &[u8], len: usize) -> Vec<u8> {
    let size = alphabet.len();
    let zone = 256 - (256 % size);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        // Twice what is needed: about 3% of bytes are dropped for 62 symbols.
        for b in bytes(2 * (len - out.len())) {
            if (b as usize) < zone && out.len() < len {
                out.push(alphabet[b as usize % size]);
            }
        }
    }
    out
}

/// `[A-Za-z0-9]{len}`: tokens, keys, nonces.
pub fn alphanumeric(len: usize) -> String {
    draw(ALPHANUMERIC, len).into_iter().map(char::from).collect()
}

/// Digits in ASCII order, so that base-62 numbers of one length sort as
/// strings in the order of their values.
const SORTABLE_BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Characters of the time prefix of [`time_ordered`]: 62^9 microseconds
/// reach past the year 2300.
const TIME_PREFIX_LEN: usize = 9;

/// `[A-Za-z0-9]{len}` (len > 9) starting with the current time in
/// microseconds, base 62, then random characters (23 of them for a
/// 32-character nonce: 136 random bits). Keys made this way are inserted
/// at the end of their index instead of at random places, so the pages a
/// busy server writes stay few and cached. For values whose creation time
/// is no secret (DIGEST nonces: the `Date` header tells it anyway).
pub fn time_ordered(len: usize) -> String {
    let micros =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
    let prefix = time_prefix(micros);
    let random = draw(ALPHANUMERIC, len.saturating_sub(TIME_PREFIX_LEN));
    prefix.bytes().chain(random).take(len).map(char::from).collect()
}

/// The prefix `time_ordered` gives a value made at `micros` (microseconds
/// since 1970): every value made earlier sorts below it.
pub fn time_prefix(micros: u64) -> String {
    let mut prefix = [b'0'; TIME_PREFIX_LEN];
    let mut rest = micros;
    for slot in prefix.iter_mut().rev() {
        *slot = SORTABLE_BASE62[(rest % 62) as usize];
        rest /= 62;
    }
    prefix.iter().map(|&b| char::from(b)).collect()
}

/// A 4-digit PIN, `1000`–`9999`.
pub fn pin() -> String {
    let digits = draw(b"0123456789", 3);
    let first = draw(b"123456789", 1);
    [first, digits].concat().into_iter().map(char::from).collect()
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
    fn time_ordered_nonces_sort_by_creation_and_stay_random() {
        let first = time_ordered(NONCE_LEN);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = time_ordered(NONCE_LEN);
        assert_eq!(first.len(), NONCE_LEN);
        assert!(first.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(first < second, "{first} then {second}");
        // Same microsecond or not, the random part differs.
        let (a, b) = (time_ordered(NONCE_LEN), time_ordered(NONCE_LEN));
        assert_ne!(a[TIME_PREFIX_LEN..], b[TIME_PREFIX_LEN..]);
    }

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

    #[test]
    fn every_symbol_is_about_equally_likely() {
        let sample = alphanumeric(62 * 2000);
        let mut counts = [0usize; 256];
        for b in sample.bytes() {
            counts[b as usize] += 1;
        }
        // Expected 2000 each; a bias of a few percent (modulo bias would
        // give 248/256 vs 256/256) stays well inside, a missing symbol not.
        for &symbol in ALPHANUMERIC {
            let n = counts[symbol as usize];
            assert!((1700..2300).contains(&n), "{} drawn {n} times", symbol as char);
        }
        let leading: std::collections::HashSet<char> = (0..500).map(|_| pin().chars().next().unwrap()).collect();
        assert_eq!(leading.len(), 9);
    }
}
