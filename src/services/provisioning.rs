//! Remote provisioning of Linphone clients: which account a request resolves
//! to (provisioning token, auth token, authenticated account), the side
//! effects (activation, one-use tokens, password reset) and the lpconfig
//! document built for it (provisioning.md §2–§6).
//!
//! Section layout: the RC file first, then `misc/contacts-vcard-list`, then
//! the account's `proxy_0` and `auth_info_N` and the external account pair,
//! then the hook's sections, then overwrite-all. Sections that share a name
//! are merged into one (FlexiAPI 1.6), so an RC `[proxy_0]` carrying the
//! transport receives the account's identity instead of competing with it.

use crate::app::App;
use crate::db::accounts::{self as rows, Account, Password};
use crate::db::dictionary::{self, ExternalAccount};
use crate::db::{self};
use crate::domain::hash::{self, Algorithm};
use crate::domain::random;
use crate::error::{AppError, AppResult};
use crate::provisioning::{self, Config};
use crate::services::hooks::{self, AccountEvent};

/// Auth tokens are valid this long (provisioning.md §10).
const AUTH_TOKEN_MINUTES: i64 = 5;

/// Length of the password `reset_password` generates (FlexiAPI: 10 alnum).
const RESET_PASSWORD_LEN: usize = 10;

/// What the request asked for besides the account.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `reset_password` was present, whatever its value.
    pub reset_password: bool,
    /// The query string, decoded, handed to the provisioning hook.
    pub query: Vec<(String, String)>,
}

/// An account with what its sections are built from, read in the same
/// transaction as the changes the request made.
#[derive(Debug, Clone)]
struct Resolved {
    account: Account,
    passwords: Vec<Password>,
    external: Option<ExternalAccount>,
}

fn load(conn: &rusqlite::Connection, account: Account) -> rusqlite::Result<Resolved> {
    Ok(Resolved {
        passwords: rows::passwords(conn, account.id)?,
        external: dictionary::external_account_of(conn, account.id)?,
        account,
    })
}

/// `GET /provisioning`: no account. Without a hook this is the shared,
/// pre-rendered base document written out as it is.
pub fn public_document(app: &App, request: &Request) -> String {
    build(app, None, request).to_xml()
}

/// `GET /provisioning/{token}`: consumes the token, activates the account,
/// optionally resets its password. Unknown or used token, or an expired
/// activation window: 404. All of it is one transaction, so the document
/// and the database agree even when two clients race for the token.
pub fn by_provisioning_token(app: &App, token: &str, request: &Request) -> AppResult<String> {
    let (resolved, was_activated) = app.db.write(|tx| {
        let Some(account) = rows::by_provisioning_token(tx, token)? else { return Err(AppError::not_found()) };
        if rows::activation_expired(tx, account.id)? {
            return Err(AppError::not_found());
        }
        if rows::consume_provisioning_token(tx, token)?.is_none() {
            return Err(AppError::not_found());
        }
        if request.reset_password {
            reset_password(app, tx, &account)?;
        }
        let fresh = rows::by_id(tx, account.id)?.ok_or_else(AppError::not_found)?;
        Ok((load(tx, fresh)?, account.activated))
    })?;
    if !was_activated {
        hooks::account_event(app, AccountEvent::Activated, &resolved.account);
    } else if request.reset_password {
        hooks::account_event(app, AccountEvent::Edited, &resolved.account);
    }
    Ok(build(app, Some(&resolved), request).to_xml())
}

/// `GET /provisioning/auth_token/{token}`: a fresh token attached to an
/// account of this Space's domain (provisioning.md §1), deleted on use; no
/// activation.
pub fn by_auth_token(app: &App, domain: &str, token: &str, request: &Request) -> AppResult<String> {
    let resolved = app.db.write(|tx| {
        let Some(auth_token) = db::auth::fresh_auth_token(tx, token, AUTH_TOKEN_MINUTES)? else {
            return Err(AppError::not_found());
        };
        let Some(account_id) = auth_token.account_id else { return Err(AppError::not_found()) };
        let Some(account) = rows::by_id(tx, account_id)?.filter(|a| a.domain == domain) else {
            return Err(AppError::not_found());
        };
        if !db::auth::consume_auth_token(tx, auth_token.id)? {
            return Err(AppError::not_found());
        }
        if request.reset_password {
            reset_password(app, tx, &account)?;
        }
        Ok(load(tx, account)?)
    })?;
    if request.reset_password {
        hooks::account_event(app, AccountEvent::Edited, &resolved.account);
    }
    Ok(build(app, Some(&resolved), request).to_xml())
}

/// `GET /provisioning/me`: the authenticated account, every time.
pub fn for_account(app: &App, account: &Account, request: &Request) -> AppResult<String> {
    let resolved = if request.reset_password {
        app.db.write(|tx| {
            reset_password(app, tx, account)?;
            let fresh = rows::by_id(tx, account.id)?.ok_or_else(AppError::not_found)?;
            Ok(load(tx, fresh)?)
        })?
    } else {
        app.db.read(|c| load(c, account.clone()))?
    };
    if request.reset_password {
        hooks::account_event(app, AccountEvent::Edited, &resolved.account);
    }
    Ok(build(app, Some(&resolved), request).to_xml())
}

/// The absolute URL a provisioning QR code carries.
pub fn provisioning_url(app: &App, token: &str, reset_password: bool) -> String {
    let token = percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC);
    let mut url = app.config.url(&format!("/provisioning/{token}"));
    if reset_password {
        url.push_str("?reset_password=1");
    }
    url
}

/// `GET /provisioning/qrcode/{token}`: the PNG and the URL it encodes. The
/// token is only checked (same 404 rules), not consumed.
pub fn qrcode(app: &App, token: &str, reset_password: bool) -> AppResult<(Vec<u8>, String)> {
    let usable = app.db.read(|c| {
        let Some(account) = rows::by_provisioning_token(c, token)? else { return Ok(false) };
        Ok(!rows::activation_expired(c, account.id)?)
    })?;
    if !usable {
        return Err(AppError::not_found());
    }
    let url = provisioning_url(app, token, reset_password);
    let png = provisioning::qr_png(&url).map_err(AppError::Internal)?;
    Ok((png, url))
}

/// `reset_password`: a new random password replaces every stored one, as
/// one SHA-256 row (provisioning.md §6: MD5-only clients cannot use it, as
/// in FlexiAPI). The clear text is never stored nor returned, only the HA1.
fn reset_password(app: &App, conn: &rusqlite::Connection, account: &Account) -> AppResult<()> {
    let password = random::alphanumeric(RESET_PASSWORD_LEN);
    let realm = app.config.realm_for(&account.domain);
    let ha1 = hash::ha1(Algorithm::Sha256, &account.username, &realm, &password);
    rows::replace_password(conn, account.id, &ha1, Algorithm::Sha256.as_str())?;
    Ok(())
}

/// `ACCOUNT_PROXY_REGISTRAR_ADDRESS` as a `reg_proxy` value. The address may
/// be a bare host (`sip.example.org`, `host:5061`) or carry its own scheme and
/// parameters (`sip:host;transport=tcp`); TLS is the default transport,
/// Flexisip's recommended one.
pub fn registrar_uri(address: &str) -> String {
    let inner = address.trim().trim_start_matches('<').trim_end_matches('>');
    let mut uri = if inner.starts_with("sip:") || inner.starts_with("sips:") {
        inner.to_string()
    } else {
        format!("sip:{inner}")
    };
    if !uri.contains(";transport=") && !uri.starts_with("sips:") {
        uri.push_str(";transport=tls");
    }
    format!("<{uri}>")
}

/// `<sip:host>` of an external account, `;transport=` when one is chosen.
fn external_uri(host: &str, protocol: Option<&str>) -> String {
    match protocol {
        Some(p) => format!("<sip:{host};transport={}>", p.to_ascii_lowercase()),
        None => format!("<sip:{host}>"),
    }
}

/// `<sip:user@domain>`, with the display name quoted when there is one.
fn identity(display_name: Option<&str>, username: &str, domain: &str) -> String {
    match display_name.filter(|d| !d.is_empty()) {
        Some(name) => {
            // A quoted-string (RFC 3261): `"` and `\` are escaped inside.
            let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{quoted}\" <sip:{username}@{domain}>")
        }
        None => format!("<sip:{username}@{domain}>"),
    }
}

/// The input the provisioning hook reads on stdin.
fn hook_input(resolved: Option<&Resolved>, request: &Request, auth_sections: &[String]) -> serde_json::Value {
    let query: serde_json::Map<String, serde_json::Value> =
        request.query.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
    serde_json::json!({
        "account": resolved.map(|r| hooks::account_json(&r.account)),
        "query": query,
        "proxy_section": resolved.map(|_| "proxy_0"),
        "auth_info_sections": auth_sections,
    })
}

/// The RC file and the contacts list: the same in every document.
fn base(app: &App) -> &Config {
    app.provisioning_base.get_or_init(|| {
        let mut config = match &app.rc {
            Some(rc) => Config::from_rc(rc),
            None => Config::new(),
        };
        // An RC value wins: in FlexiAPI the RC `misc` came first, and the
        // client keeps the first value it sees.
        let misc = config.section_mut("misc");
        if misc.get("contacts-vcard-list").is_none() {
            misc.set("contacts-vcard-list", app.config.url("/contacts/vcard"));
        }
        // Applied again over the whole document in `build`; applying it
        // here too means the shared sections are already in final form.
        if app.config.account_provisioning_overwrite_all {
            config.set_overwrite_all();
        }
        config.freeze();
        config
    })
}

/// Builds the document (provisioning.md §2 order, merged per name).
fn build(app: &App, resolved: Option<&Resolved>, request: &Request) -> Config {
    let mut config = base(app).clone();

    let mut auth_sections = Vec::new();
    if let Some(r) = resolved {
        let account = &r.account;
        let realm = app.config.realm_for(&account.domain);
        let proxy = config.section_mut("proxy_0");
        proxy.set("reg_identity", identity(account.display_name.as_deref(), &account.username, &account.domain));
        proxy.set("reg_sendregister", "1");
        proxy.set("refkey", "push_notification");
        // A bare liblinphone drops a proxy without `reg_proxy` (§15); the
        // RC file keeps the last word on the transport when it sets one.
        if proxy.get("reg_proxy").is_none() && proxy.get("reg_route").is_none() {
            let registrar = registrar_uri(&app.config.account_proxy_registrar_address);
            proxy.set("reg_proxy", registrar.clone());
            proxy.set("reg_route", registrar);
        }
        if proxy.get("realm").is_none() {
            proxy.set("realm", realm.clone());
        }
        if r.external.is_some() {
            proxy.set("depends_on", "external_account");
        }

        let mut next_auth = 0;
        for password in &r.passwords {
            let name = format!("auth_info_{next_auth}");
            next_auth += 1;
            let section = config.section_mut(&name);
            section.set("username", account.username.as_str());
            section.set("domain", account.domain.as_str());
            if password.algorithm == "CLRTXT" {
                // Clear text goes in `passwd`; as `ha1` it would be unusable.
                section.set("passwd", password.password.as_str());
                section.set("realm", realm.as_str());
            } else {
                section.set("ha1", password.password.as_str());
                section.set("realm", realm.as_str());
                section.set("algorithm", password.algorithm.as_str());
            }
            auth_sections.push(name);
        }

        if let Some(external) = &r.external {
            let proxy = config.section_mut("proxy_1");
            proxy.set("reg_identity", identity(None, &external.username, &external.domain));
            proxy.set("reg_sendregister", "1");
            proxy.set("refkey", "push_notification");
            proxy.set("idkey", "external_account");
            // Same reason as above: without it liblinphone drops the account.
            // Its registrar (else its domain), through its outbound proxy
            // when one is set, with its transport when one is chosen.
            if proxy.get("reg_proxy").is_none() {
                let host = external.registrar.as_deref().unwrap_or(&external.domain);
                proxy.set("reg_proxy", external_uri(host, external.protocol.as_deref()));
                if let Some(route) = &external.outbound_proxy {
                    proxy.set("reg_route", external_uri(route, external.protocol.as_deref()));
                }
            }
            let realm = external.effective_realm();
            if proxy.get("realm").is_none() {
                proxy.set("realm", realm);
            }
            let section = config.section_mut(&format!("auth_info_{next_auth}"));
            section.set("username", external.username.as_str());
            section.set("domain", external.domain.as_str());
            // The order of provisioning.md §3: the secret, realm, algorithm.
            if external.algorithm == "CLRTXT" {
                section.set("passwd", external.password.as_str());
                section.set("realm", realm);
            } else {
                section.set("ha1", external.password.as_str());
                section.set("realm", realm);
                section.set("algorithm", external.algorithm.as_str());
            }
        }
    }

    // The hook's input is only built when there is a hook to read it.
    if app.config.account_provisioning_hook.is_some() {
        if let Some(sections) = hooks::provisioning_sections(app, &hook_input(resolved, request, &auth_sections)) {
            config.merge_sections(sections);
        }
    }
    if app.config.account_provisioning_overwrite_all {
        config.set_overwrite_all();
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrar_uri_forms() {
        assert_eq!(registrar_uri("sip.example.org"), "<sip:sip.example.org;transport=tls>");
        assert_eq!(registrar_uri("host:5061"), "<sip:host:5061;transport=tls>");
        assert_eq!(registrar_uri("127.0.0.1;transport=tcp"), "<sip:127.0.0.1;transport=tcp>");
        assert_eq!(registrar_uri("<sip:h;transport=udp>"), "<sip:h;transport=udp>");
        assert_eq!(registrar_uri("sips:h"), "<sips:h>");
    }

    #[test]
    fn identity_quotes_display_names() {
        assert_eq!(identity(Some("Bob"), "bob", "d"), "\"Bob\" <sip:bob@d>");
        assert_eq!(identity(Some("a\"b\\c"), "bob", "d"), "\"a\\\"b\\\\c\" <sip:bob@d>");
        assert_eq!(identity(Some(""), "bob", "d"), "<sip:bob@d>");
        assert_eq!(identity(None, "bob", "d"), "<sip:bob@d>");
    }
}
