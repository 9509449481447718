//! `Y-m-d H:i:s` timestamps from requests and the database, and plain SIP
//! addresses from paths.
#![no_main]

use flexiapi::domain::sip::SipAddress;
use flexiapi::domain::time::{format_iso, format_sql, parse_sql, sql_to_iso};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Any Unix time formats without panicking (overflow included).
    if data.len() >= 8 {
        let t = i64::from_le_bytes(data[..8].try_into().unwrap());
        let sql = format_sql(t);
        let _ = format_iso(t);
        if let Some(back) = parse_sql(&sql) {
            assert_eq!(back, t, "{sql}");
        }
    }

    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(t) = parse_sql(text) {
        assert_eq!(format_sql(t), text, "parse_sql({text:?}) = {t}");
        assert_eq!(sql_to_iso(text).len(), 27);
    } else {
        assert_eq!(sql_to_iso(text), "");
    }

    if let Some(a) = SipAddress::parse_plain(text) {
        assert!(!a.username.is_empty() && !a.domain.is_empty(), "{a:?}");
        assert!(!a.domain.contains(char::is_whitespace), "{a:?}");
        assert!(text.ends_with(&a.domain));
    }
});
