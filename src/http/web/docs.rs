//! `/documentation` and `/api`: served whatever `WEB_PANEL` says.

use super::{page, Web, WebResult};
use crate::http::router::Route;
use crate::http::Ctx;
use crate::views::{self, docs::Features};

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &'a str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("GET", ["documentation"]) => page(ctx, "/documentation", method, documentation),
        ("GET", ["api"]) => page(ctx, "/api", method, api),
        _ => None,
    }
}

fn features(w: &Web) -> Features {
    let c = w.config();
    Features {
        web_panel: c.web_panel,
        public_registration: super::public_registration(w.ctx),
        phone: c.phone_authentication,
        devices: c.devices_management,
        external_accounts: c.account_consume_external_account_on_create,
        dangerous_endpoints: c.dangerous_endpoints,
    }
}

fn documentation(w: &Web) -> WebResult {
    let f = features(w);
    Ok(w.render(w.t("Documentation"), 200, |p| views::docs::documentation(p, &f))?)
}

fn api(w: &Web) -> WebResult {
    let f = features(w);
    let mut page = w.page()?;
    page.wide = true;
    let body = views::docs::api(&page, &f);
    Ok(super::html(views::layout(&page, "API", body), 200))
}
