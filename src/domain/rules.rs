//! Input normalisation and the validation rules shared by the API, the
//! portal and the CLI. Messages follow Laravel's English wording, since
//! clients of FlexiAPI display them as they are.

use crate::error::FieldErrors;
use regex::Regex;
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// Request fields, normalised as FlexiAPI's middleware does: strings trimmed
/// (except passwords), empty strings turned into null.
#[derive(Debug, Clone, Default)]
pub struct Input(Map<String, Value>);

const UNTRIMMED: [&str; 3] = ["password", "password_confirmation", "old_password"];

impl Input {
    pub fn from_json(value: Value) -> Input {
        let map = match value {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let normalised = map
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => {
                        let s = if UNTRIMMED.contains(&k.as_str()) { s } else { s.trim().to_string() };
                        if s.is_empty() {
                            Value::Null
                        } else {
                            Value::String(s)
                        }
                    }
                    other => other,
                };
                (k, v)
            })
            .collect();
        Input(normalised)
    }

    /// From form fields (`application/x-www-form-urlencoded`).
    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Input {
        Input::from_json(Value::Object(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.0.insert(key.to_string(), value);
    }

    /// The fields a form may show again after a failure: no password of any
    /// kind, no CSRF token, no captcha answer (Laravel's "old input" keeps
    /// no passwords either). Kept in the session until the form is shown
    /// again, so only what a form can hold: short text values, a few dozen.
    pub fn without_secrets(&self) -> Value {
        const MOST_FIELDS: usize = 40;
        const LONGEST_VALUE: usize = 1024;
        let kept = self.0.iter().filter(|(k, v)| {
            k.len() <= 64
                && !k.contains("password")
                && !matches!(k.as_str(), "_token" | "_method" | "g-recaptcha-response")
                && match v {
                    Value::String(s) => s.len() <= LONGEST_VALUE,
                    Value::Null | Value::Bool(_) | Value::Number(_) => true,
                    Value::Array(_) | Value::Object(_) => false,
                }
        });
        Value::Object(kept.take(MOST_FIELDS).map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    /// A scalar as text; `None` when absent, null, an array or an object.
    pub fn text(&self, field: &str) -> Option<String> {
        match self.0.get(field)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
            _ => None,
        }
    }

    /// The key is there with a non-null value.
    pub fn filled(&self, field: &str) -> bool {
        !matches!(self.0.get(field), None | Some(Value::Null))
    }

    pub fn has_key(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// Laravel's `boolean`: true, false, 0, 1, "0", "1" (absent/null → None).
    pub fn boolean(&self, field: &str, errors: &mut FieldErrors) -> Option<bool> {
        match self.0.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Some(false),
            Some(Value::Number(n)) if n.as_i64() == Some(1) => Some(true),
            Some(Value::String(s)) if s == "1" => Some(true),
            Some(Value::String(s)) if s == "0" => Some(false),
            _ => {
                errors.add(field, format!("The {} field must be true or false.", label(field)));
                None
            }
        }
    }

    /// Required non-empty text, or an error for `field`.
    pub fn required(&self, field: &str, errors: &mut FieldErrors) -> Option<String> {
        match self.0.get(field) {
            None | Some(Value::Null) => {
                errors.add(field, required_message(field));
                None
            }
            Some(Value::String(_)) | Some(Value::Number(_)) => self.text(field),
            Some(_) => {
                errors.add(field, format!("The {} must be a string.", label(field)));
                None
            }
        }
    }

    /// Optional text: non-scalars are an error, absent/null is `None`.
    pub fn optional(&self, field: &str, errors: &mut FieldErrors) -> Option<String> {
        match self.0.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(_)) | Some(Value::Number(_)) => self.text(field),
            Some(_) => {
                errors.add(field, format!("The {} must be a string.", label(field)));
                None
            }
        }
    }
}

/// `account_creation_token` → `account creation token`, as Laravel names fields.
pub fn label(field: &str) -> String {
    field.replace('_', " ")
}

pub fn required_message(field: &str) -> String {
    format!("The {} field is required.", label(field))
}

pub fn taken_message(field: &str) -> String {
    format!("The {} has already been taken.", label(field))
}

pub fn invalid_choice_message(field: &str) -> String {
    format!("The selected {} is invalid.", label(field))
}

pub const MIN_USERNAME_LEN: usize = 6;
pub const MIN_PASSWORD_LEN: usize = 6;
pub const MAX_USERNAME_LEN: usize = 64;

pub const DTMF_PROTOCOLS: [&str; 3] = ["sipinfo", "rfc2833", "sipmessage"];

fn phone_number_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^\+?[0-9]{0,3} ?(?:\([0-9]{1,3}\) ?(?:[0-9]{3,5}[. -]?[0-9]{4}|(?:[0-9]{2}[. -]?){4})|[. -]?(?:[0-9]{1,3}[. -]*)?(?:[0-9]{3,5}[. -]?[0-9]{4}|(?:[0-9]{2}[. -]?){4}))$")
            .expect("static regex")
    })
}

/// `host[:port]` (or `[v6]:port`) without its port: a `Host` header, the
/// authority of a URL.
pub fn host_without_port(authority: &str) -> &str {
    if let Some(end) = authority.find(']') {
        return &authority[..=end];
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// FlexiAPI's IsNotPhoneNumber: a leading `+` or anything shaped like a number.
pub fn looks_like_phone_number(text: &str) -> bool {
    text.starts_with('+') || phone_number_regex().is_match(text)
}

/// A phone number as the API accepts it: `+` then digits.
pub fn is_valid_phone(text: &str) -> bool {
    text.len() >= 2 && text.len() <= 32 && text.starts_with('+') && text[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Laravel's `email` rule, pragmatically: one `@`, a local part and a domain,
/// no spaces or characters that could break a mail header.
pub fn is_valid_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else { return false };
    !local.is_empty()
        && !domain.is_empty()
        && text.len() <= 254
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !text.chars().any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(c))
        && !local.contains('@')
        && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-')
}

/// Laravel's `alpha_dash`: Unicode letters and digits, `-` and `_`.
pub fn is_alpha_dash(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_')
}

pub fn is_alpha_num(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_alphanumeric())
}

/// The username rules that need no database: case, blacklist, regex,
/// length, and (when `refuse_phone`) not shaped like a phone number.
pub struct UsernamePolicy<'a> {
    pub regex: &'a Regex,
    pub blacklist: &'a [Regex],
}

impl UsernamePolicy<'_> {
    pub fn check(&self, field: &str, username: &str, refuse_phone: bool, errors: &mut FieldErrors) {
        self.check_with_minimum(field, username, refuse_phone, MIN_USERNAME_LEN, errors);
    }

    /// [`UsernamePolicy::check`] with another minimum length: the console
    /// creates the operator's own admin account, and FlexiAPI's default name
    /// for it, `admin`, is shorter than what users may choose.
    pub fn check_with_minimum(
        &self,
        field: &str,
        username: &str,
        refuse_phone: bool,
        minimum: usize,
        errors: &mut FieldErrors,
    ) {
        if username.chars().any(char::is_uppercase) {
            errors.add(field, "No uppercase letters are allowed.");
        }
        if self.blacklist.iter().any(|re| re.is_match(username)) {
            errors.add(field, "Username already used.");
        }
        if refuse_phone && looks_like_phone_number(username) {
            errors.add(field, "The username cannot be a phone number.");
        }
        if !self.regex.is_match(username) || username.contains(['@', ':', ';', '<', '>', '\r', '\n', ' ']) {
            errors.add(field, format!("The {} format is invalid.", label(field)));
        }
        let chars = username.chars().count();
        if chars < minimum {
            errors.add(field, format!("The {} must be at least {minimum} characters.", label(field)));
        } else if chars > MAX_USERNAME_LEN {
            errors.add(field, format!("The {} may not be greater than {MAX_USERNAME_LEN} characters.", label(field)));
        }
    }
}

/// The algorithm a password is stored with, as read from `field`: MD5 or
/// SHA-256 (clear text cannot be chosen). `None` when absent or invalid;
/// invalid adds the error.
pub fn check_algorithm(
    field: &str,
    text: Option<&str>,
    errors: &mut FieldErrors,
) -> Option<crate::domain::hash::Algorithm> {
    let algorithm = text.and_then(crate::domain::hash::Algorithm::parse_hashing);
    if text.is_some() && algorithm.is_none() {
        errors.add(field, invalid_choice_message(field));
    }
    algorithm
}

/// An account's DTMF protocol, when given: one of [`DTMF_PROTOCOLS`].
pub fn check_dtmf_protocol(field: &str, value: Option<&str>, errors: &mut FieldErrors) {
    if value.is_some_and(|p| !DTMF_PROTOCOLS.contains(&p)) {
        errors.add(field, invalid_choice_message(field));
    }
}

/// Password length rule shared by every path that sets one.
pub fn check_password(field: &str, password: &str, errors: &mut FieldErrors) {
    check_password_with_minimum(field, password, MIN_PASSWORD_LEN, errors);
}

/// [`check_password`] with another minimum length (the console's admin).
pub fn check_password_with_minimum(field: &str, password: &str, minimum: usize, errors: &mut FieldErrors) {
    if password.chars().count() < minimum {
        errors.add(field, format!("The {} must be at least {minimum} characters.", label(field)));
    }
    if password.len() > 255 {
        errors.add(field, format!("The {} may not be greater than 255 characters.", label(field)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn old_input_keeps_short_plain_values_only() {
        let mut fields: Vec<(String, String)> = vec![
            ("username".into(), "alice01".into()),
            ("password".into(), "secret".into()),
            ("current_password".into(), "secret".into()),
            ("_token".into(), "csrf".into()),
            ("g-recaptcha-response".into(), "answer".into()),
            ("huge".into(), "x".repeat(5000)),
            ("k".repeat(100), "long name".into()),
        ];
        fields.extend((0..100).map(|i| (format!("zz-junk{i:03}"), "v".into())));
        let kept = Input::from_pairs(fields).without_secrets();
        let kept = kept.as_object().unwrap();
        assert_eq!(kept.get("username").and_then(Value::as_str), Some("alice01"));
        for gone in ["password", "current_password", "_token", "g-recaptcha-response", "huge"] {
            assert!(!kept.contains_key(gone), "{gone}");
        }
        assert!(kept.keys().all(|k| k.len() <= 64));
        assert!(kept.len() <= 40, "{} fields kept", kept.len());
    }

    #[test]
    fn normalisation() {
        let input = Input::from_json(json!({"username": " bob ", "password": " pw ", "email": "", "n": 3}));
        assert_eq!(input.text("username").as_deref(), Some("bob"));
        assert_eq!(input.text("password").as_deref(), Some(" pw "));
        assert!(!input.filled("email"));
        assert_eq!(input.text("n").as_deref(), Some("3"));
    }

    #[test]
    fn booleans() {
        let input = Input::from_json(json!({"a": true, "b": "1", "c": 0, "d": "true", "e": "yes"}));
        let mut errors = FieldErrors::default();
        assert_eq!(input.boolean("a", &mut errors), Some(true));
        assert_eq!(input.boolean("b", &mut errors), Some(true));
        assert_eq!(input.boolean("c", &mut errors), Some(false));
        assert_eq!(input.boolean("d", &mut errors), None);
        assert_eq!(input.boolean("e", &mut errors), None);
        assert!(errors.has("d") && errors.has("e"));
    }

    #[test]
    fn phone_shapes() {
        for refused in ["0612345678", "12345678", "1234567", "+33612121212"] {
            assert!(looks_like_phone_number(refused), "{refused}");
        }
        for accepted in ["foobar", "1234", "12345"] {
            assert!(!looks_like_phone_number(accepted), "{accepted}");
        }
        assert!(is_valid_phone("+12345"));
        assert!(!is_valid_phone("username") && !is_valid_phone("+12 34") && !is_valid_phone("+"));
    }

    #[test]
    fn emails() {
        assert!(is_valid_email("bob@example.org"));
        for bad in ["gnap", "a@", "@b", "a b@c", "a@b\r\nBcc: x", "a@b..c"] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn usernames() {
        let regex = Regex::new("^[a-z0-9+_.-]*$").unwrap();
        let blacklist = vec![Regex::new("blacklisted").unwrap(), Regex::new("username-.*").unwrap()];
        let policy = UsernamePolicy { regex: &regex, blacklist: &blacklist };
        let check = |u: &str| {
            let mut e = FieldErrors::default();
            policy.check("username", u, true, &mut e);
            e.is_empty()
        };
        assert!(check("valid-username"));
        for bad in ["blacklisted", "username-gnap", "Upper1", "blabla hop", "short", "+33612121212", "blabla🔥"] {
            assert!(!check(bad), "{bad}");
        }
    }
}
