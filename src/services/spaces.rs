//! Spaces: a SIP domain served on its own HTTP host. Hosts without a Space
//! fall back to the default Space, `APP_SIP_DOMAIN`, which needs no set-up.

use crate::app::App;
use crate::db;
use crate::error::{invalid, AppError, AppResult};

/// (SIP domain, is super) for a request's host.
pub fn for_host(app: &App, host: &str) -> (String, bool) {
    let host = host.to_ascii_lowercase();
    match app.db.read(|c| db::web::space_by_host(c, &host)) {
        Ok(Some(space)) => (space.domain, space.is_super),
        // Also when the lookup fails: serving the default domain is safe.
        _ => {
            let default_super = app
                .db
                .read(|c| db::web::space_by_domain(c, &app.config.sip_domain))
                .ok()
                .flatten()
                .is_some_and(|s| s.is_super);
            (app.config.sip_domain.clone(), default_super)
        }
    }
}

/// The default Space, `APP_SIP_DOMAIN` on the host of `APP_URL`, as a row
/// (operations.md: created on migrate/start when missing), so operators
/// see it beside the others. Requests work without it: unknown hosts fall
/// back to the default domain anyway.
pub fn ensure_default(app: &App) -> AppResult<()> {
    let Some(host) = app.config.app_host() else { return Ok(()) };
    let domain = &app.config.sip_domain;
    app.db.write(|tx| Ok(db::web::insert_space_if_free(tx, domain, &host)?))?;
    Ok(())
}

/// What `spaces:create-update` did.
#[derive(Debug, PartialEq, Eq)]
pub enum SpaceChange {
    Created,
    Updated,
}

/// `spaces:create-update {sip_domain} {host} [{name}] [--super]`.
pub fn create_or_update(
    app: &App,
    domain: &str,
    host: &str,
    name: Option<&str>,
    is_super: bool,
) -> AppResult<SpaceChange> {
    let valid = |s: &str| {
        !s.is_empty() && s.len() <= 255 && s.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
    };
    if !valid(domain) {
        return Err(invalid("sip_domain", "The sip domain format is invalid."));
    }
    if !valid(host) {
        return Err(invalid("host", "The host format is invalid."));
    }
    let host = host.to_ascii_lowercase();
    let name = name.unwrap_or(domain);
    app.db.write(|tx| {
        if let Some(other) = db::web::space_by_host(tx, &host)? {
            if other.domain != domain {
                // A conflict with the stored Spaces, not a malformed argument:
                // exit 1, as FlexiAPI.
                return Err(AppError::Forbidden("A Space with this host and another sip_domain exists.".into()));
            }
        }
        let existed = db::web::space_by_domain(tx, domain)?.is_some();
        db::web::upsert_space(tx, domain, &host, name, is_super)?;
        Ok(if existed { SpaceChange::Updated } else { SpaceChange::Created })
    })
}
