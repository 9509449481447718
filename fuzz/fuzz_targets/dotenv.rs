//! The dotenv configuration file: parse, then validate every pair as start-up does.
#![no_main]

use flexiapi::config::{parse_dotenv, Config, Values};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(pairs) = parse_dotenv(text) else { return };
    let mut values = Values::default();
    for (key, value) in &pairs {
        // Keys are what the parser promised: non-empty, [A-Za-z0-9_.].
        assert!(!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'), "{key:?}");
        values.set(key, value);
    }
    // A value written back single-quoted (verbatim, no expansion) reads back the same.
    for (key, value) in &pairs {
        if !value.contains(['\'', '\n']) {
            let line = format!("{key}='{value}'\n");
            assert_eq!(parse_dotenv(&line), Ok(vec![(key.clone(), value.clone())]), "{line:?}");
        }
    }
    // Errors are fine (they name the key); a panic is not.
    if let Err(e) = Config::from_values(&values) {
        assert!(!e.key.is_empty());
    }
});
