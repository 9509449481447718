//! Authentication: API keys and RFC 7616 DIGEST (MD5 and SHA-256).
//!
//! The DIGEST flow never reveals whether an address exists: an unknown
//! `From` gets the same two challenges (and the same database write) as a
//! known one, and every failure is the same 401 with fresh challenges.

use crate::app::App;
use crate::db::{self, accounts::Account, auth::NonceUse};
use crate::domain::digest::{self, challenge as challenge_for, expected_response};
use crate::domain::hash::{constant_time_eq, hex_digest, Algorithm};
use crate::domain::random;
use crate::domain::rules;
use crate::domain::sip::SipAddress;
use crate::domain::time;
use crate::error::{invalid, AppError, AppResult, FieldErrors};

/// A successful authentication, and the challenges to repeat on the
/// response so the client can go on with the same nonce.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub account: Account,
    pub challenges: Vec<String>,
}

/// How often `api_keys.last_used_at` is rewritten: refreshing it on every
/// request would turn each read into a write.
const TOUCH_EVERY_SECONDS: i64 = 30;

/// Authenticates an API key (header or cookie).
pub fn by_api_key(app: &App, key: &str) -> AppResult<Account> {
    let unauthenticated = || AppError::Unauthorized { message: "Unauthenticated request".into(), challenges: vec![] };
    let found = app.db.read(|c| db::auth::api_key_with_account(c, key))?;
    let Some((api_key, account)) = found else { return Err(unauthenticated()) };
    if !constant_time_eq(api_key.key.as_bytes(), key.as_bytes()) {
        return Err(unauthenticated());
    }
    let now = time::now_unix();
    let last_used = time::parse_sql(&api_key.last_used_at).unwrap_or(0);
    let expiration = app.config.api_key_expiration_minutes;
    if expiration > 0 && last_used < now - expiration * 60 {
        return Err(unauthenticated());
    }
    if now - last_used >= TOUCH_EVERY_SECONDS {
        let stamp = time::format_sql(now);
        // A bookkeeping write: when the database cannot be written (disk
        // full, read-only), the read this key authenticates still goes on.
        if let Err(e) = app.db.write(|tx| Ok(db::auth::touch_api_key(tx, key, &stamp)?)) {
            crate::log_line!("warning: cannot record the API key use of account {}: {e}", account.id);
        }
    }
    Ok(account)
}

/// The algorithms offered to an account, SHA-256 first.
fn offered_algorithms(passwords: &[db::accounts::Password]) -> Vec<Algorithm> {
    let has = |a: &str| passwords.iter().any(|p| p.algorithm == a);
    let clear = has("CLRTXT");
    let mut out = Vec::new();
    if clear || has("SHA-256") {
        out.push(Algorithm::Sha256);
    }
    if clear || has("MD5") {
        out.push(Algorithm::Md5);
    }
    if out.is_empty() {
        out = vec![Algorithm::Sha256, Algorithm::Md5];
    }
    out
}

/// A new (nonce, opaque) pair; drawn before any write job (system calls
/// have no place under the writer).
fn nonce_pair() -> (String, String) {
    (random::time_ordered(random::NONCE_LEN), random::alphanumeric(random::NONCE_LEN))
}

/// Emits a fresh nonce and the challenges for it.
fn new_challenges(app: &App, account_id: Option<i64>, realm: &str, algorithms: &[Algorithm]) -> AppResult<Vec<String>> {
    let (nonce, opaque) = nonce_pair();
    app.db.write_async_commit(|tx| Ok(db::auth::insert_nonce(tx, account_id, &nonce, &opaque)?))?;
    Ok(algorithms.iter().map(|a| challenge_for(realm, *a, &nonce, &opaque)).collect())
}

fn unauthorized(message: &str, challenges: Vec<String>) -> AppError {
    AppError::Unauthorized { message: message.to_string(), challenges }
}

/// DIGEST authentication of a request.
///
/// `from` is the `From` header, `authorization` the `Authorization` header,
/// `method` the HTTP method (part of HA2).
pub fn by_digest(app: &App, from: Option<&str>, authorization: Option<&str>, method: &str) -> AppResult<Authenticated> {
    let Some(from) = from.map(str::trim).filter(|f| !f.is_empty()) else {
        return Err(invalid("from", "The from field is required."));
    };
    let Some(address) = SipAddress::parse_from_header(from) else {
        return Err(invalid("from", "The from must be a SIP address (sip:user@domain)."));
    };
    // What the client answered: nothing, something unusable (a fresh
    // challenge: FlexiAPI crashes with a 500 here), or a nonce, a count, a
    // response and a uri to check.
    let header = authorization.filter(|h| !h.trim().is_empty());
    let answer = header.and_then(digest::parse_authorization).and_then(|params| {
        let nc = digest::parse_nc(params.nc.as_deref()?)?;
        (params.nonce.is_some() && params.response.is_some() && params.uri.is_some()).then_some((params, nc))
    });

    // One write job on the writer connection (whose cached pages no other
    // connection's commit invalidates): the account and its passwords, then
    // the nonce count checked and recorded in one atomic statement before
    // anything else (a replay loses the nonce whatever else it carries), or,
    // when a challenge is certain, its new nonce.
    // A challenge is certain without an answer: its nonce is drawn now,
    // outside the writer (the rare unknown address with an answer draws
    // its own inside).
    // The job does not wait for its commit (`Db::write_async_commit`): the
    // next answer is checked on the same writer connection, which sees the
    // new nonce or count at once, so replays are refused all the same; only
    // a failing commit could lose a count, and after one the writes wait
    // again. Waiting cost a third of the throughput of a DIGEST round.
    // What the job changes (a new nonce, a count that only grows) is right
    // to keep even if the job then fails: it needs no savepoint.
    let fresh_pair = answer.is_none().then(nonce_pair);
    let job = |tx: &rusqlite::Connection| {
        let found = db::accounts::by_sip_with_passwords(tx, &address.username, &address.domain)?;
        let (used, challenge) = match (&found, &answer) {
            (Some((account, _)), Some((params, nc))) => {
                let nonce = params.nonce.as_deref().unwrap_or_default();
                let opaque = params.opaque.as_deref().unwrap_or_default();
                (Some(db::auth::use_nonce(tx, account.id, nonce, opaque, *nc)?), None)
            }
            _ => {
                let (nonce, opaque) = fresh_pair.unwrap_or_else(nonce_pair);
                db::auth::insert_nonce(tx, found.as_ref().map(|(a, _)| a.id), &nonce, &opaque)?;
                (None, Some((nonce, opaque)))
            }
        };
        Ok((found, used, challenge))
    };
    let (found, used, challenge) = app.db.write_async_commit(job)?;
    let Some((account, passwords)) = found else {
        // Same challenges and the same write as for a real account.
        let realm = app.config.realm_for(&address.domain);
        let (nonce, opaque) = challenge.unwrap_or_default();
        let challenges = [Algorithm::Sha256, Algorithm::Md5].iter().map(|a| challenge_for(&realm, *a, &nonce, &opaque));
        return Err(unauthorized("Unauthenticated request", challenges.collect()));
    };
    let realm = app.config.realm_for(&account.domain);
    let algorithms = offered_algorithms(&passwords);
    if let Some((nonce, opaque)) = challenge {
        let message = if header.is_none() { "Unauthenticated request" } else { "Unauthorized" };
        let challenges = algorithms.iter().map(|a| challenge_for(&realm, *a, &nonce, &opaque)).collect();
        return Err(unauthorized(message, challenges));
    }
    let fresh = |message: &str| -> AppError {
        match new_challenges(app, Some(account.id), &realm, &algorithms) {
            Ok(challenges) => unauthorized(message, challenges),
            Err(e) => e,
        }
    };
    let Some((params, _)) = &answer else { return Err(fresh("Unauthorized")) };
    let (Some(nonce), Some(nc_text), Some(response), Some(uri)) =
        (&params.nonce, &params.nc, &params.response, &params.uri)
    else {
        return Err(fresh("Unauthorized"));
    };
    let issued_opaque = match used {
        Some(NonceUse::Accepted { opaque }) => opaque,
        Some(NonceUse::Replayed) => return Err(fresh("Nonce replayed")),
        Some(NonceUse::Unknown) | None => return Err(fresh("Nonce invalid")),
    };

    // Then the parameters themselves (api.md §2.2 step 3): 422 naming them.
    let mut errors = FieldErrors::default();
    let mut must_equal = |field: &str, given: Option<&str>, expected: &str| match given {
        None => errors.add(field, rules::required_message(field)),
        Some(value) if value != expected => errors.add(field, rules::invalid_choice_message(field)),
        Some(_) => {}
    };
    must_equal("opaque", params.opaque.as_deref(), &issued_opaque);
    must_equal("qop", params.qop.as_deref(), "auth");
    must_equal("realm", params.realm.as_deref(), &realm);
    must_equal("username", params.username.as_deref(), &address.username);
    if params.cnonce.is_none() {
        errors.add("cnonce", rules::required_message("cnonce"));
    }
    let algorithm = match params.algorithm.as_deref().unwrap_or("MD5") {
        "MD5" => Some(Algorithm::Md5),
        "SHA-256" => Some(Algorithm::Sha256),
        _ => {
            errors.add("algorithm", rules::invalid_choice_message("algorithm"));
            None
        }
    };
    errors.into_result()?;
    let (Some(algorithm), Some(cnonce)) = (algorithm, &params.cnonce) else { return Err(fresh("Unauthorized")) };
    let opaque = issued_opaque;

    let ha1 = if let Some(row) = passwords.iter().find(|p| p.algorithm == algorithm.as_str()) {
        row.password.to_ascii_lowercase()
    } else if let Some(row) = passwords.iter().find(|p| p.algorithm == "CLRTXT") {
        hex_digest(algorithm, &format!("{}:{}:{}", account.username, realm, row.password))
    } else {
        return Err(fresh("Wrong algorithm"));
    };
    let expected = expected_response(algorithm, &ha1, nonce, nc_text, cnonce, "auth", method, uri);
    if !constant_time_eq(expected.as_bytes(), response.to_ascii_lowercase().as_bytes()) {
        return Err(fresh("Unauthorized"));
    }
    let challenges = algorithms.iter().map(|a| challenge_for(&realm, *a, nonce, &opaque)).collect();
    Ok(Authenticated { account, challenges })
}
