//! The external account attached to an account: a second SIP account on
//! another service (username, domain, realm, registrar, outbound proxy,
//! transport, password stored as an HA1), provisioned next to the main one
//! (`proxy_1`/`auth_info_N`, see `services::provisioning`). Entered by an
//! admin on the account page, or taken from the imported pool.

use super::accounts;
use crate::app::App;
use crate::db::accounts::Account;
use crate::db::dictionary::{self as dict, ExternalAccount};
use crate::domain::hash;
use crate::domain::rules::{self, Input};
use crate::error::{AppError, AppResult, FieldErrors};

/// The transports a client may use to reach the external registrar.
pub const PROTOCOLS: [&str; 3] = ["UDP", "TCP", "TLS"];

/// The external account of `account`, if any.
pub fn of(app: &App, account: &Account) -> AppResult<Option<ExternalAccount>> {
    Ok(app.db.read(|c| dict::external_account_of(c, account.id))?)
}

/// Which of `account_ids` have an external account (the admin list's badge).
pub fn attached_among(app: &App, account_ids: &[i64]) -> AppResult<std::collections::HashSet<i64>> {
    Ok(app.db.read(|c| dict::with_external_account(c, account_ids))?.into_iter().collect())
}

/// Unused accounts left in the imported pool.
pub fn pool_left(app: &App) -> AppResult<i64> {
    Ok(app.db.read(crate::db::web::external_accounts_left)?)
}

/// A host name or IP literal, optionally `:port` (no scheme, no spaces).
fn is_host_port(text: &str) -> bool {
    let valid_port = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
    if let Some(rest) = text.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else { return false };
        let v6_ok = !v6.is_empty() && v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        return v6_ok && (after.is_empty() || after.strip_prefix(':').is_some_and(valid_port));
    }
    match text.split_once(':') {
        Some((host, port)) => is_host(host) && valid_port(port),
        None => is_host(text),
    }
}

fn is_host(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The user part of a SIP address: no spaces, no URI delimiters.
fn is_sip_user(text: &str) -> bool {
    !text.chars().any(|c| c.is_whitespace() || c.is_control() || "@:;<>\"".contains(c))
}

fn too_long(field: &str, value: &str, max: usize, errors: &mut FieldErrors) -> bool {
    if value.chars().count() > max {
        errors.add(field, format!("The {} may not be greater than {max} characters.", rules::label(field)));
        return true;
    }
    false
}

/// Validates the form (`username`, `domain`, `realm`, `registrar`,
/// `outbound_proxy`, `protocol`, `password`, `algorithm`) into the row to
/// store. The password is required for a new external account and when
/// the username, domain or realm changes (the stored HA1 depends on them);
/// otherwise an empty one keeps the stored hash.
fn validate(
    app: &App,
    account: &Account,
    input: &Input,
    existing: Option<&ExternalAccount>,
) -> AppResult<ExternalAccount> {
    let mut errors = FieldErrors::default();
    let username = input.required("username", &mut errors);
    let domain = input.required("domain", &mut errors);
    let realm = input.optional("realm", &mut errors);
    let registrar = input.optional("registrar", &mut errors);
    let outbound_proxy = input.optional("outbound_proxy", &mut errors);
    let protocol = input.required("protocol", &mut errors).map(|p| p.to_ascii_uppercase());
    let password = input.optional("password", &mut errors);
    let algorithm_text = input.required("algorithm", &mut errors);

    if let Some(u) = &username {
        if !too_long("username", u, rules::MAX_USERNAME_LEN, &mut errors) && !is_sip_user(u) {
            errors.add("username", "The username may not contain spaces, @, :, ;, <, > or quotes.");
        }
    }
    if let Some(d) = &domain {
        if !too_long("domain", d, 64, &mut errors) && !is_host(d) {
            errors.add("domain", "The domain must be a valid host name.");
        }
    }
    if let Some(r) = &realm {
        if !too_long("realm", r, 64, &mut errors) && !is_sip_user(r) {
            errors.add("realm", "The realm may not contain spaces, @, :, ;, <, > or quotes.");
        }
    }
    for (field, value) in [("registrar", &registrar), ("outbound_proxy", &outbound_proxy)] {
        if let Some(v) = value {
            if !too_long(field, v, 255, &mut errors) && !is_host_port(v) {
                errors.add(
                    field,
                    format!("The {} must be a host name, optionally followed by :port.", rules::label(field)),
                );
            }
        }
    }
    if protocol.as_deref().is_some_and(|p| !PROTOCOLS.contains(&p)) {
        errors.add("protocol", rules::invalid_choice_message("protocol"));
    }
    let algorithm = rules::check_algorithm("algorithm", algorithm_text.as_deref(), &mut errors);
    match (&password, existing) {
        (Some(p), _) => {
            too_long("password", p, 255, &mut errors);
        }
        (None, None) => errors.add("password", rules::required_message("password")),
        (None, Some(e)) => {
            let same_identity = username.as_deref() == Some(e.username.as_str())
                && domain.as_deref() == Some(e.domain.as_str())
                && realm.as_deref().or(domain.as_deref()) == Some(e.effective_realm());
            if !same_identity {
                errors.add("password", "A new password is required when the username, domain or realm changes (the stored hash depends on them).");
            }
        }
    }
    if let (Some(u), Some(d)) = (&username, &domain) {
        if !errors.has("username") && !errors.has("domain") {
            let except = existing.map(|e| e.id);
            if app.db.read(|c| dict::external_account_taken(c, u, d, except))? {
                errors.add("username", "This external account is already attached to another account.");
            }
        }
    }
    errors.into_result()?;
    let (Some(username), Some(domain), Some(algorithm)) = (username, domain, algorithm) else {
        return Err(AppError::unvalidated());
    };
    let mut row = ExternalAccount {
        id: existing.map(|e| e.id).unwrap_or_default(),
        username,
        domain,
        password: String::new(),
        algorithm: algorithm.as_str().to_string(),
        account_id: Some(account.id),
        realm,
        registrar,
        outbound_proxy,
        protocol,
    };
    match (password, existing) {
        (Some(p), _) => row.password = hash::ha1(algorithm, &row.username, row.effective_realm(), &p),
        (None, Some(e)) => {
            row.password = e.password.clone();
            row.algorithm = e.algorithm.clone();
        }
        (None, None) => return Err(AppError::unvalidated()),
    }
    Ok(row)
}

/// Creates or replaces the external account of `account` (422 on invalid
/// fields, the typed values kept by the caller).
pub fn save(app: &App, account: &Account, input: &Input) -> AppResult<ExternalAccount> {
    let existing = of(app, account)?;
    let row = validate(app, account, input, existing.as_ref())?;
    app.db
        .write(|tx| Ok(dict::save_external_account(tx, account.id, &row)?))
        .map_err(accounts::unique_race_to_422("username"))?;
    of(app, account)?.ok_or_else(|| AppError::Internal("the external account vanished".into()))
}

/// Removes the external account of `account`; 404 when there is none.
pub fn delete(app: &App, account: &Account) -> AppResult<()> {
    if app.db.write(|tx| Ok(dict::delete_external_account(tx, account.id)?))? == 0 {
        return Err(AppError::not_found());
    }
    Ok(())
}

/// Attaches the first unused account of the imported pool (only offered
/// with `ACCOUNT_CONSUME_EXTERNAL_ACCOUNT_ON_CREATE`, else 404). 403 when
/// the account already has one or the pool is empty.
pub fn attach_from_pool(app: &App, account: &Account) -> AppResult<()> {
    if !app.config.account_consume_external_account_on_create {
        return Err(AppError::not_found());
    }
    app.db.write(|tx| {
        if dict::external_account_of(tx, account.id)?.is_some() {
            return Err(AppError::Forbidden("An External Account is already attached".into()));
        }
        if !dict::consume_external_account(tx, account.id)? {
            return Err(AppError::Forbidden("No External Account left".into()));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports() {
        for ok in ["sip.example.org", "10.0.0.1", "proxy.example.net:5060", "[2001:db8::1]:5061", "[::1]", "localhost"]
        {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in
            ["", "sip:host", "host name", "host:0", "host:99999", "-a.org", "a..org", "host:port", "x;transport=tcp"]
        {
            assert!(!is_host_port(bad), "{bad}");
        }
        assert!(is_sip_user("alice.b+1"));
        assert!(!is_sip_user("a b") && !is_sip_user("a@b") && !is_sip_user("a:b"));
    }
}
