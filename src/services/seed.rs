//! `accounts:seed {file.json}`: liblinphone tester accounts (operations.md §9).

use crate::app::App;
use crate::db::{self, accounts::NewAccount};
use crate::error::{invalid, AppError, AppResult};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// PHP's `urlencode` leaves these unescaped.
const PHP_URLENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');
use serde_json::Value;

const SEED_TIME: &str = "2010-01-03 04:30:43";

struct Seeded {
    id: i64,
    username: String,
    domain: String,
    activated: bool,
    confirmation_key: Option<String>,
    phone: Option<String>,
    passwords: Vec<(String, String)>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse(items: &[Value]) -> AppResult<Vec<Seeded>> {
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let bad = |what: &str| invalid("file", format!("entry {index}: {what}"));
        let activated = item.get("activated").and_then(Value::as_bool).unwrap_or(true);
        let confirmation_key = text(item, "confirmation_key");
        match item.get("type").and_then(Value::as_str) {
            Some("account") => {
                let id = item.get("id").and_then(Value::as_i64).ok_or_else(|| bad("`id` must be a number"))?;
                let username = text(item, "username").ok_or_else(|| bad("`username` is missing"))?;
                let domain = text(item, "domain").ok_or_else(|| bad("`domain` is missing"))?;
                let mut passwords = Vec::new();
                for p in item.get("passwords").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
                    let hash = text(p, "hash").ok_or_else(|| bad("a password has no `hash`"))?;
                    let algorithm = text(p, "algorithm").unwrap_or_else(|| "MD5".into());
                    if crate::domain::hash::Algorithm::parse(&algorithm).is_none() {
                        return Err(bad("unknown password algorithm"));
                    }
                    passwords.push((hash, algorithm));
                }
                let phone = text(item, "phone").or_else(|| item.get("alias").and_then(|a| text(a, "alias")));
                out.push(Seeded { id, username, domain, activated, confirmation_key, phone, passwords });
            }
            Some("range") => {
                let id_pattern = text(item, "id").ok_or_else(|| bad("`id` pattern is missing"))?;
                let user_pattern = text(item, "username").ok_or_else(|| bad("`username` pattern is missing"))?;
                let domain = text(item, "domain").ok_or_else(|| bad("`domain` is missing"))?;
                let count =
                    item.get("iteration").and_then(Value::as_i64).ok_or_else(|| bad("`iteration` is missing"))?;
                let id_start =
                    item.get("idStart").and_then(Value::as_i64).ok_or_else(|| bad("`idStart` is missing"))?;
                let user_start = item.get("usernameStart").and_then(Value::as_i64).unwrap_or(0);
                if !(0..=1_000_000).contains(&count) {
                    return Err(bad("`iteration` must be between 0 and 1000000"));
                }
                for i in 0..count {
                    let id = id_pattern
                        .replace("%id%", &(id_start + i).to_string())
                        .parse::<i64>()
                        .map_err(|_| bad("`id` pattern does not give a number"))?;
                    out.push(Seeded {
                        id,
                        username: user_pattern.replace("%usernamePostfix%", &(user_start + i).to_string()),
                        domain: domain.clone(),
                        activated,
                        confirmation_key: confirmation_key.clone(),
                        phone: None,
                        passwords: vec![("secret".into(), "CLRTXT".into())],
                    });
                }
            }
            _ => return Err(bad("`type` must be \"account\" or \"range\"")),
        }
    }
    Ok(out)
}

/// Seeds the accounts; returns how many were written.
pub fn seed(app: &App, json_text: &str) -> AppResult<usize> {
    let value: Value =
        serde_json::from_str(json_text).map_err(|e| invalid("file", format!("malformed JSON file: {e}")))?;
    let items = value.as_array().ok_or_else(|| invalid("file", "malformed JSON file: expected an array"))?;
    let accounts = parse(items)?;
    app.db.write(|tx| {
        let ids: Vec<i64> = accounts.iter().map(|a| a.id).collect();
        db::maintenance::delete_accounts(tx, &ids)?;
        for a in &accounts {
            if let Some(existing) = db::accounts::by_sip(tx, &a.username, &a.domain)? {
                db::maintenance::delete_accounts(tx, &[existing.id])?;
            }
            let email = format!("{}@{}", utf8_percent_encode(&a.username, PHP_URLENCODE), a.domain);
            db::accounts::insert_with_id(
                tx,
                a.id,
                &NewAccount {
                    username: a.username.clone(),
                    domain: a.domain.clone(),
                    email: Some(email),
                    phone: a.phone.clone(),
                    activated: a.activated,
                    confirmation_key: a.confirmation_key.clone(),
                    user_agent: "FlexiAPI Seeder".into(),
                    created_at: Some(SEED_TIME.into()),
                    ..NewAccount::default()
                },
            )?;
            for (hash, algorithm) in &a.passwords {
                db::accounts::add_password(tx, a.id, hash, algorithm)?;
            }
        }
        Ok::<_, AppError>(accounts.len())
    })
}
