//! Request authentication: API key (header, then cookie), else DIGEST.
//! Handlers call `user` or `admin` first; the order of checks is FlexiAPI's
//! (401/422 before 403).

use super::Ctx;
use crate::db::accounts::Account;
use crate::error::{AppError, AppResult};
use crate::services::auth;

/// The API key a request carries: the header wins over the cookie.
pub fn api_key(ctx: &Ctx) -> Option<String> {
    ctx.header("x-api-key")
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .or_else(|| ctx.cookie("x-api-key").filter(|k| !k.is_empty()))
}

/// Any authenticated account.
pub fn user(ctx: &Ctx) -> AppResult<Account> {
    if let Some(key) = api_key(ctx) {
        return auth::by_api_key(ctx.app, &key);
    }
    let authenticated = auth::by_digest(ctx.app, ctx.header("From"), ctx.header("Authorization"), ctx.req.method())?;
    for challenge in authenticated.challenges {
        ctx.add_header("WWW-Authenticate", challenge);
    }
    Ok(authenticated.account)
}

/// An authenticated admin of this request's Space; 403 for anyone else
/// (an admin of another Space included: its key must not manage this
/// Space's accounts by naming this Space's host).
pub fn admin(ctx: &Ctx) -> AppResult<Account> {
    let account = user(ctx)?;
    if !account.admin || !ctx.space_admits(&account) {
        return Err(AppError::Forbidden("Unauthorized area".into()));
    }
    Ok(account)
}
