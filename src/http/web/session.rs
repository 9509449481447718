//! Server-side portal sessions: a random id in an `HttpOnly`, `SameSite=Lax`
//! cookie (`Secure` when `APP_URL` is https), the row in `sessions` holding
//! the account, the CSRF token and a small JSON map (flash messages, the
//! pending QR token...). Idle sessions expire after `SESSION_LIFETIME`
//! minutes; login issues a new id; logout deletes the row.

use crate::db;
use crate::domain::{hash, random};
use crate::error::AppResult;
use crate::http::Ctx;
use serde_json::{Map, Value};

const ID_LEN: usize = 40;
const CSRF_LEN: usize = 40;
const CSRF_COOKIE: &str = "XSRF-TOKEN";

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub account_id: Option<i64>,
    pub csrf: String,
    pub data: Map<String, Value>,
    /// Created during this request (already inserted).
    pub fresh: bool,
    /// `data` changed during this request.
    pub dirty: bool,
}

/// `flexiapi_session` for `APP_NAME=FlexiAPI`: Laravel's slug of the name.
pub fn cookie_name(app_name: &str) -> String {
    let mut slug = String::new();
    for c in app_name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') && !slug.is_empty() {
            slug.push('_');
        }
    }
    let slug = slug.trim_end_matches('_');
    if slug.is_empty() {
        "flexiapi_session".to_string()
    } else {
        format!("{slug}_session")
    }
}

/// The session named by the request's cookie, when it exists and is not idle.
pub fn load(ctx: &Ctx) -> AppResult<Option<Session>> {
    let name = cookie_name(&ctx.app.config.app_name);
    let Some(id) = ctx.cookie(&name).filter(|id| id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric()))
    else {
        return Ok(None);
    };
    let lifetime = ctx.app.config.session_lifetime_minutes;
    let row = ctx.app.db.read(|c| db::web::session(c, &id, lifetime))?;
    Ok(row.map(|row| Session {
        id: row.id,
        account_id: row.account_id,
        csrf: row.csrf_token,
        data: serde_json::from_str::<Map<String, Value>>(&row.data).unwrap_or_default(),
        fresh: false,
        dirty: false,
    }))
}

/// Inserts a new session (new id, new CSRF token).
pub fn create(ctx: &Ctx, account_id: Option<i64>, data: Map<String, Value>) -> AppResult<Session> {
    let id = random::alphanumeric(ID_LEN);
    let csrf = random::alphanumeric(CSRF_LEN);
    let text = Value::Object(data.clone()).to_string();
    let idle = ctx.app.config.session_lifetime_minutes;
    ctx.app.db.write(|tx| {
        // Opportunistic clean-up of idle rows, so the table stays small.
        db::web::delete_idle_sessions(tx, idle)?;
        db::web::insert_session(tx, &id, account_id, &csrf, &text)?;
        Ok(())
    })?;
    set_cookies(ctx, &id, &csrf);
    Ok(Session { id, account_id, csrf, data, fresh: true, dirty: false })
}

/// Saves the data and slides the idle window.
pub fn save(ctx: &Ctx, session: &Session) -> AppResult<()> {
    let text = Value::Object(session.data.clone()).to_string();
    ctx.app.db.write(|tx| Ok(db::web::update_session(tx, &session.id, session.account_id, &text)?))
}

pub fn destroy(ctx: &Ctx, session: &Session) -> AppResult<()> {
    ctx.app.db.write(|tx| Ok(db::web::delete_session(tx, &session.id)?))?;
    let name = cookie_name(&ctx.app.config.app_name);
    ctx.add_header("Set-Cookie", format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}", secure(ctx)));
    ctx.add_header("Set-Cookie", format!("{CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax{}", secure(ctx)));
    Ok(())
}

/// Sends the session's cookies again with a new lifetime: the session
/// lives `SESSION_LIFETIME` minutes after the last request, browser closed
/// or not (web.md 1.4).
pub fn refresh_cookies(ctx: &Ctx, session: &Session) {
    set_cookies(ctx, &session.id, &session.csrf);
}

fn secure(ctx: &Ctx) -> &'static str {
    if ctx.app.config.is_https() {
        "; Secure"
    } else {
        ""
    }
}

/// The session id (HttpOnly), and the CSRF token in Laravel's readable
/// `XSRF-TOKEN` cookie, for scripts that send it back as `X-XSRF-TOKEN`.
fn set_cookies(ctx: &Ctx, id: &str, csrf: &str) {
    let name = cookie_name(&ctx.app.config.app_name);
    let max_age = ctx.app.config.session_lifetime_minutes.max(1) * 60;
    let secure = secure(ctx);
    ctx.add_header("Set-Cookie", format!("{name}={id}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"));
    ctx.add_header("Set-Cookie", format!("{CSRF_COOKIE}={csrf}; Path=/; Max-Age={max_age}; SameSite=Lax{secure}"));
}

/// Constant-time comparison of a submitted CSRF token.
pub fn csrf_matches(session: &Session, submitted: &str) -> bool {
    !submitted.is_empty() && hash::constant_time_eq(session.csrf.as_bytes(), submitted.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::cookie_name;

    #[test]
    fn cookie_names() {
        assert_eq!(cookie_name("FlexiAPI"), "flexiapi_session");
        assert_eq!(cookie_name("Linhome Free SIP"), "linhome_free_sip_session");
        assert_eq!(cookie_name("!!"), "flexiapi_session");
    }
}
