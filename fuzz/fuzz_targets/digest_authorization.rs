//! The DIGEST `Authorization` header (RFC 7616), as `services::auth` reads it:
//! parse, read the nonce count, and compute the expected response.
#![no_main]

use flexiapi::domain::digest::{expected_response, parse_authorization, parse_nc};
use flexiapi::domain::hash::Algorithm;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    let Some(params) = parse_authorization(header) else { return };

    // A parameter value never has the quotes or escapes of its wire form.
    if let Some(nc) = params.nc.as_deref() {
        if let Some(n) = parse_nc(nc) {
            assert!((0..=0xffff_ffff).contains(&n), "nc {nc:?} -> {n}");
        }
    }
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
        let response = expected_response(
            algorithm,
            &s(&params.username),
            &s(&params.nonce),
            &s(&params.nc),
            &s(&params.cnonce),
            &s(&params.qop),
            "GET",
            &s(&params.uri),
        );
        let expected_len = if algorithm == Algorithm::Md5 { 32 } else { 64 };
        assert_eq!(response.len(), expected_len);
    }
    // Writing the parameters back as quoted-strings reads back the same.
    let quote = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    let mut rebuilt = String::from("Digest ");
    for (name, value) in [
        ("username", &params.username),
        ("realm", &params.realm),
        ("nonce", &params.nonce),
        ("uri", &params.uri),
        ("response", &params.response),
        ("algorithm", &params.algorithm),
        ("cnonce", &params.cnonce),
        ("opaque", &params.opaque),
        ("qop", &params.qop),
        ("nc", &params.nc),
    ] {
        if let Some(v) = value {
            rebuilt.push_str(&format!("{name}=\"{}\", ", quote(v)));
        }
    }
    // ("Digest" alone is refused, while "Digest ," parses to no parameters.)
    if params != Default::default() {
        assert_eq!(parse_authorization(&rebuilt).as_ref(), Some(&params), "{rebuilt}");
    }

    // The algorithm parameter goes through the same parser the service uses.
    if let Some(a) = params.algorithm.as_deref() {
        let _ = Algorithm::parse(a);
    }
});
