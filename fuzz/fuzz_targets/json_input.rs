//! JSON request bodies into the request normaliser and the validators.
#![no_main]

use flexiapi::domain::rules::{
    check_password, is_alpha_dash, is_alpha_num, is_valid_email, is_valid_phone, looks_like_phone_number, Input,
    UsernamePolicy,
};
use flexiapi::error::FieldErrors;
use libfuzzer_sys::fuzz_target;
use regex::Regex;
use std::sync::OnceLock;

const FIELDS: &[&str] = &[
    "username",
    "password",
    "password_confirmation",
    "old_password",
    "email",
    "phone",
    "domain",
    "algorithm",
    "display_name",
    "activated",
    "admin",
    "dtmf_protocol",
    "confirmation_key_expires",
    "account_creation_token",
    "code",
    "key",
    "role",
    "type",
    "name",
    "value",
    "contact_id",
    "",
];

fn policy_regexes() -> &'static (Regex, Vec<Regex>) {
    static R: OnceLock<(Regex, Vec<Regex>)> = OnceLock::new();
    R.get_or_init(|| {
        // The default ACCOUNT_USERNAME_REGEX, and a blacklist like the docs' example.
        (Regex::new("^[a-z0-9+_.-]*$").unwrap(), vec![Regex::new("^admin").unwrap(), Regex::new("root").unwrap()])
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let input = Input::from_json(value);
    let (regex, blacklist) = policy_regexes();
    let policy = UsernamePolicy { regex, blacklist };
    let mut errors = FieldErrors::default();
    for field in FIELDS {
        let _ = input.filled(field);
        let _ = input.has_key(field);
        let _ = input.boolean(field, &mut errors);
        let _ = input.optional(field, &mut errors);
        let required = input.required(field, &mut errors);
        let text = input.text(field);
        if let Some(r) = &required {
            // Required text is never empty, and outside passwords never padded.
            assert!(!r.is_empty());
            if !field.contains("password") {
                assert_eq!(r.trim(), r);
            }
        }
        let Some(text) = text else { continue };

        let email = is_valid_email(&text);
        if email {
            // Nothing that could break a mail header gets through.
            assert!(!text.contains(['\r', '\n', '<', '>', ',', ';', '"']), "{text:?}");
            assert!(text.len() <= 254);
        }
        if is_valid_phone(&text) {
            assert!(text.starts_with('+') && text[1..].bytes().all(|b| b.is_ascii_digit()));
        }
        let _ = looks_like_phone_number(&text);
        if is_alpha_dash(&text) || is_alpha_num(&text) {
            assert!(!text.contains(['\r', '\n', ' ', '@', ':', '<']));
        }
        let mut username_errors = FieldErrors::default();
        policy.check("username", &text, true, &mut username_errors);
        if username_errors.is_empty() {
            assert!(regex.is_match(&text) && !text.contains(['\r', '\n', '@', ':', ';', '<', '>', ' ']));
            let n = text.chars().count();
            assert!((6..=64).contains(&n));
        }
        check_password("password", &text, &mut errors);
    }
});
