//! The admin area: accounts (list, create, show, edit, delete, toggles,
//! provisioning link), contacts, types and actions of an account, account
//! types, statistics. State changes are POST/PUT/DELETE forms with CSRF;
//! GET URLs only show pages (confirmation pages included).

use super::{form_errors, page, redirect, Outcome, Web, WebResult};
use crate::db::accounts::{Account, Search};
use crate::domain::rules::Input;
use crate::error::AppError;
use crate::http::router::{id, Route};
use crate::http::Ctx;
use crate::services::{accounts, dictionary, external_accounts, statistics, web_login};
use crate::views::{self, admin as v};
use serde_json::Value;

pub const PER_PAGE: i64 = 30;

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &'a str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    let ["admin", rest @ ..] = segments else { return None };
    match (method, rest) {
        ("GET", ["accounts"]) => page(ctx, "/admin/accounts", method, |w| index(w, None)),
        ("POST", ["accounts", "search"]) => page(ctx, "/admin/accounts/search", method, search),
        ("GET", ["accounts", "create"]) => page(ctx, "/admin/accounts/create", method, create_form),
        ("POST", ["accounts"]) => page(ctx, "/admin/accounts", method, create),
        ("DELETE", ["accounts"]) => page(ctx, "/admin/accounts", method, destroy),
        // Account types, before `{id}`.
        ("GET", ["accounts", "types"]) => page(ctx, "/admin/accounts/types", method, types_index),
        ("GET", ["accounts", "types", "create"]) => {
            page(ctx, "/admin/accounts/types/create", method, |w| type_form(w, None))
        }
        ("POST", ["accounts", "types"]) => page(ctx, "/admin/accounts/types", method, |w| type_save(w, None)),
        ("GET", ["accounts", "types", t, "edit"]) if id(t).is_some() => {
            page(ctx, "/admin/accounts/types/{id}/edit", method, move |w| type_form(w, id(t)))
        }
        ("PUT", ["accounts", "types", t]) if id(t).is_some() => {
            page(ctx, "/admin/accounts/types/{id}", method, move |w| type_save(w, id(t)))
        }
        ("GET", ["accounts", "types", t, "delete"]) if id(t).is_some() => {
            page(ctx, "/admin/accounts/types/{id}/delete", method, move |w| type_delete_form(w, num(t)))
        }
        ("DELETE", ["accounts", "types", t]) if id(t).is_some() => {
            page(ctx, "/admin/accounts/types/{id}", method, move |w| type_delete(w, num(t)))
        }
        ("GET", ["accounts", n]) | ("GET", ["accounts", n, "show"]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}/show", method, move |w| show(w, num(n)))
        }
        ("GET", ["accounts", needle]) => page(ctx, "/admin/accounts/{search}", method, move |w| index(w, Some(needle))),
        ("GET", ["accounts", n, "edit"]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}/edit", method, move |w| edit_form(w, num(n)))
        }
        ("PUT", ["accounts", n]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}", method, move |w| update(w, num(n)))
        }
        ("GET", ["accounts", n, "delete"]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}/delete", method, move |w| delete_form(w, num(n)))
        }
        // GET on an action's URL: a page confirming it (the action is a form).
        ("GET", ["accounts", n, action]) if id(n).is_some() && TOGGLES.contains(action) => {
            page(ctx, "/admin/accounts/{id}/{toggle}", method, move |w| toggle_confirm(w, num(n), action))
        }
        ("GET", ["accounts", n, "external_account", "attach"]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}/external_account/attach", method, move |w| {
                confirm(w, num(n), "Attach an imported External Account?", "/external_account/attach", "POST", vec![])
            })
        }
        ("GET", ["accounts", n, "contacts", c, "delete"]) if id(n).is_some() && id(c).is_some() => {
            page(ctx, "/admin/accounts/{id}/contacts/{contact_id}/delete", method, move |w| {
                confirm(
                    w,
                    num(n),
                    "Remove this contact?",
                    "/contacts",
                    "DELETE",
                    vec![("contact_id", num(c).to_string())],
                )
            })
        }
        ("GET", ["accounts", n, "actions", a, "delete"]) if id(n).is_some() && id(a).is_some() => {
            page(ctx, "/admin/accounts/{id}/actions/{action_id}/delete", method, move |w| {
                confirm(w, num(n), "Delete this action?", &format!("/actions/{}", num(a)), "DELETE", vec![])
            })
        }
        ("POST", ["accounts", n, action]) if id(n).is_some() && TOGGLES.contains(action) => {
            page(ctx, "/admin/accounts/{id}/{toggle}", method, move |w| toggle(w, num(n), action))
        }
        // The external account.
        ("GET", ["accounts", n, "external_account"]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}/external_account", method, move |w| external_form(w, num(n)))
        }
        ("POST", ["accounts", n, "external_account"]) | ("PUT", ["accounts", n, "external_account"])
            if id(n).is_some() =>
        {
            page(ctx, "/admin/accounts/{id}/external_account", method, move |w| external_save(w, num(n)))
        }
        ("DELETE", ["accounts", n, "external_account"]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}/external_account", method, move |w| external_delete(w, num(n)))
        }
        ("POST", ["accounts", n, "external_account", "attach"]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}/external_account/attach", method, move |w| external_attach(w, num(n)))
        }
        // Contacts.
        ("GET", ["accounts", n, "contacts", "create"]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}/contacts/create", method, move |w| contact_form(w, num(n)))
        }
        ("POST", ["accounts", n, "contacts"]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}/contacts", method, move |w| contact_add(w, num(n)))
        }
        ("DELETE", ["accounts", n, "contacts"]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}/contacts", method, move |w| contact_remove(w, num(n)))
        }
        // Types of an account.
        ("GET", ["accounts", n, "types", "create"]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}/types/create", method, move |w| account_type_form(w, num(n)))
        }
        ("POST", ["accounts", n, "types"]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}/types", method, move |w| account_type_add(w, num(n)))
        }
        ("DELETE", ["accounts", n, "types", t]) if id(n).is_some() && id(t).is_some() => {
            page(ctx, "/admin/accounts/{id}/types/{type_id}", method, move |w| account_type_remove(w, num(n), num(t)))
        }
        // Actions.
        ("GET", ["accounts", n, "actions", "create"]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}/actions/create", method, move |w| action_form(w, num(n), None))
        }
        ("POST", ["accounts", n, "actions"]) if id(n).is_some() => {
            page(ctx, "/admin/accounts/{id}/actions", method, move |w| action_save(w, num(n), None))
        }
        ("GET", ["accounts", n, "actions", a, "edit"]) if id(n).is_some() && id(a).is_some() => {
            page(ctx, "/admin/accounts/{id}/actions/{action_id}/edit", method, move |w| action_form(w, num(n), id(a)))
        }
        ("PUT", ["accounts", n, "actions", a]) if id(n).is_some() && id(a).is_some() => {
            page(ctx, "/admin/accounts/{id}/actions/{action_id}", method, move |w| action_save(w, num(n), id(a)))
        }
        ("DELETE", ["accounts", n, "actions", a]) if id(n).is_some() && id(a).is_some() => {
            page(ctx, "/admin/accounts/{id}/actions/{action_id}", method, move |w| action_delete(w, num(n), num(a)))
        }
        ("GET", ["statistics"]) => page(ctx, "/admin/statistics", method, |w| {
            w.admin()?;
            redirect("/admin/statistics/day")
        }),
        ("GET", ["statistics", period]) if statistics::Period::parse(period).is_some() => {
            page(ctx, "/admin/statistics/{period}", method, move |w| stats(w, period))
        }
        _ => None,
    }
}

const TOGGLES: [&str; 5] = ["activate", "deactivate", "admin", "unadmin", "provision"];

fn num(segment: &str) -> i64 {
    id(segment).unwrap_or(0)
}

/// The account `n` within the admin's scope (404 otherwise).
fn target(w: &Web, n: i64) -> Result<(Account, Account), Outcome> {
    let admin = w.admin()?;
    let account = accounts::find(w.ctx.app, &w.ctx.scope(true), n)?;
    Ok((admin, account))
}

fn show_url(id: i64) -> String {
    format!("/admin/accounts/{id}/show")
}

/// A success message, then back to the account page.
fn to_show(w: &Web, id: i64, message: impl Into<String>) -> WebResult {
    w.flash("success", message)?;
    redirect(&show_url(id))
}

/// A success message, then back to the account types.
fn to_types(w: &Web, message: &str) -> WebResult {
    w.flash("success", message)?;
    redirect("/admin/accounts/types")
}

// --- list ---

/// Query parameters of the list, kept in the pager's links.
fn list_query(w: &Web, needle: Option<&str>) -> v::ListQuery {
    let q = |name: &str| w.ctx.query(name).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let flag = |name: &str| match q(name).as_deref() {
        Some("1") | Some("yes") | Some("true") => Some(true),
        Some("0") | Some("no") | Some("false") => Some(false),
        _ => None,
    };
    let sort = q("sort")
        .filter(|s| crate::db::accounts::SORTABLE.contains(&s.as_str()))
        .unwrap_or_else(|| "created_at".into());
    let descending = q("order").map(|o| o != "asc").unwrap_or(true);
    let page = q("page").and_then(|p| p.parse::<i64>().ok()).filter(|p| (1..1_000_000).contains(p)).unwrap_or(1);
    v::ListQuery {
        search: needle.map(str::to_string).or_else(|| q("search")),
        activated: flag("activated"),
        admin: flag("admin"),
        sort,
        descending,
        page,
    }
}

fn index(w: &Web, needle: Option<&str>) -> WebResult {
    w.admin()?;
    let query = list_query(w, needle);
    let scope = w.ctx.scope(true);
    let search = Search {
        needle: query.search.clone(),
        domain: scope.domain_filter().map(str::to_string),
        activated: query.activated,
        admin: query.admin,
        order_by: query.sort.clone(),
        descending: query.descending,
    };
    let (rows, total) =
        w.ctx.app.db.read(|c| crate::db::accounts::search(c, &search, PER_PAGE, (query.page - 1) * PER_PAGE))?;
    let ids: Vec<i64> = rows.iter().map(|a| a.id).collect();
    let with_external = crate::services::external_accounts::attached_among(w.ctx.app, &ids)?;
    let details = accounts::load_details_many(w.ctx.app, rows)?;
    let mut page = w.page()?;
    page.wide = true;
    let body = v::list(&page, &details, &with_external, total, PER_PAGE, &query);
    Ok(super::html(views::layout(&page, page.t("Accounts"), body), 200))
}

fn search(w: &Web) -> WebResult {
    w.admin()?;
    let needle = w.form().text("search").unwrap_or_default();
    if needle.is_empty() {
        return redirect("/admin/accounts");
    }
    // web.md §8: the search is a path segment.
    let encoded = percent_encoding::utf8_percent_encode(&needle, percent_encoding::NON_ALPHANUMERIC).to_string();
    redirect(&format!("/admin/accounts/{encoded}"))
}

// --- create / edit ---

/// The admin form's fields as the account service expects them.
fn account_input(w: &Web, existing: Option<&Account>) -> Input {
    let mut input = w.form_with_algorithm();
    // The form has no admin/activated fields: they are toggles on the show page.
    input.set("admin", Value::Bool(existing.is_some_and(|a| a.admin)));
    input.set("activated", Value::Null);
    input
}

fn form_options(w: &Web) -> v::FormOptions {
    v::FormOptions { multi_domain: w.ctx.scope(true).all_domains, domain: w.ctx.space_domain().to_string() }
}

fn account_view(w: &Web, account: Option<&Account>) -> WebResult {
    let o = form_options(w);
    let title = if account.is_some() { w.t("Edit an account") } else { w.t("Create an account") };
    let old = w.old();
    Ok(w.render(title, 200, |p| v::account_form(p, account, &o, &old.state(w.lang)))?)
}

fn create_form(w: &Web) -> WebResult {
    w.admin()?;
    account_view(w, None)
}

fn create(w: &Web) -> WebResult {
    w.admin()?;
    let input = account_input(w, None);
    // Recorded as made by this application, not by the admin's browser (web.md §8).
    let client = crate::services::Client { user_agent: None, ..w.ctx.client() };
    match form_errors(accounts::create_by_admin(w.ctx.app, &w.ctx.scope(true), &input, &client))? {
        Ok(account) => to_show(w, account.id, "Account created."),
        Err(errors) => w.back("/admin/accounts/create", &input, &errors),
    }
}

fn edit_form(w: &Web, n: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    account_view(w, Some(&account))
}

fn update(w: &Web, n: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    let input = account_input(w, Some(&account));
    match form_errors(accounts::update_by_admin(
        w.ctx.app,
        &w.ctx.scope(true),
        account.id,
        &input,
        accounts::PasswordOnUpdate::KeepWhenEmpty,
    ))? {
        Ok(updated) => to_show(w, updated.id, "Account updated."),
        Err(errors) => w.back(&format!("/admin/accounts/{}/edit", account.id), &input, &errors),
    }
}

// --- show, toggles, delete ---

fn show(w: &Web, n: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    let details = accounts::load_details(w.ctx.app, account.clone())?;
    let contacts = dictionary::contacts(w.ctx.app, account.id)?;
    let external = external_accounts::of(w.ctx.app, &account)?;
    let pool = if w.config().account_consume_external_account_on_create {
        Some(external_accounts::pool_left(w.ctx.app)?)
    } else {
        None
    };
    let info = v::Show {
        details: &details,
        contacts: &contacts,
        external: external.as_ref(),
        external_pool: pool,
        provisioning_url: account.provisioning_token.as_ref().map(|t| w.config().url(&format!("/provisioning/{t}"))),
    };
    Ok(w.render(&account.sip(), 200, |p| v::show(p, &info))?)
}

/// A confirmation page for an action on account `n`; `path` is the action's
/// URL below the account's.
fn confirm(
    w: &Web,
    n: i64,
    question: &'static str,
    path: &str,
    method: &str,
    hidden: Vec<(&str, String)>,
) -> WebResult {
    let (_, account) = target(w, n)?;
    let action = format!("/admin/accounts/{}{path}", account.id);
    Ok(w.render(question, 200, |p| v::confirm(p, &account, p.t(question), &action, method, &hidden))?)
}

fn toggle_confirm(w: &Web, n: i64, action: &str) -> WebResult {
    let question = match action {
        "activate" => "Activate this account?",
        "deactivate" => "Deactivate this account?",
        "admin" => "Give this account the admin role?",
        "unadmin" => "Remove the admin role of this account?",
        _ => "Renew the provisioning link? The previous one will stop working.",
    };
    confirm(w, n, question, &format!("/{action}"), "POST", vec![])
}

fn toggle(w: &Web, n: i64, action: &str) -> WebResult {
    let (admin, account) = target(w, n)?;
    let app = w.ctx.app;
    let message = match action {
        "activate" => accounts::set_activated(app, &account, true).map(|_| "Account activated."),
        "deactivate" => accounts::set_activated(app, &account, false).map(|_| "Account deactivated."),
        "admin" => web_login::set_admin(app, &admin, &account, true).map(|_| "Admin role added."),
        "unadmin" => web_login::set_admin(app, &admin, &account, false).map(|_| "Admin role removed."),
        "provision" => accounts::renew_provisioning_token(app, &account)
            .map(|_| "Provisioning link renewed; the previous one no longer works."),
        _ => Err(AppError::not_found()),
    }?;
    to_show(w, account.id, message)
}

fn delete_form(w: &Web, n: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    Ok(w.render("Delete an account", 200, |p| v::delete(p, &account))?)
}

fn destroy(w: &Web) -> WebResult {
    w.admin()?;
    let n = w.form_id("account_id")?;
    let (_, account) = target(w, n)?;
    accounts::delete(w.ctx.app, &account)?;
    w.flash("success", format!("Account {} deleted.", account.sip()))?;
    redirect("/admin/accounts")
}

// --- the external account ---

fn external_form(w: &Web, n: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    let existing = external_accounts::of(w.ctx.app, &account)?;
    let title = if existing.is_some() { w.t("Edit the External Account") } else { w.t("Attach an External Account") };
    let old = w.old();
    Ok(w.render(title, 200, |p| v::external_form(p, &account, existing.as_ref(), &old.state(w.lang)))?)
}

fn external_save(w: &Web, n: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    let input = w.form_with_algorithm();
    match form_errors(external_accounts::save(w.ctx.app, &account, &input))? {
        Ok(_) => to_show(w, account.id, w.t("External Account saved.")),
        Err(errors) => w.back(&format!("/admin/accounts/{}/external_account", account.id), &input, &errors),
    }
}

fn external_delete(w: &Web, n: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    external_accounts::delete(w.ctx.app, &account)?;
    to_show(w, account.id, w.t("External Account removed."))
}

fn external_attach(w: &Web, n: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    external_accounts::attach_from_pool(w.ctx.app, &account)?;
    to_show(w, account.id, w.t("External Account attached."))
}

// --- contacts ---

fn contact_form(w: &Web, n: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    let old = w.old();
    Ok(w.render("Add a contact", 200, |p| v::contact_form(p, &account, &old.state(w.lang)))?)
}

fn contact_add(w: &Web, n: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    let input = w.form();
    let sip = input.text("sip").unwrap_or_default();
    let result = match accounts::find_by_sip(w.ctx.app, &w.ctx.scope(true), &sip) {
        Ok(contact) => dictionary::add_contact(w.ctx.app, &account, &contact).map_err(|e| match e {
            AppError::Forbidden(_) => {
                crate::error::invalid("sip", "This account is already a contact (or is the account itself).")
            }
            other => other,
        }),
        Err(AppError::NotFound(_)) => Err(crate::error::invalid("sip", "The contact SIP address doesn't exist.")),
        Err(e) => Err(e),
    };
    match form_errors(result)? {
        Ok(()) => to_show(w, account.id, "Contact added."),
        Err(errors) => w.back(&format!("/admin/accounts/{}/contacts/create", account.id), input, &errors),
    }
}

fn contact_remove(w: &Web, n: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    let contact_id = w.form_id("contact_id")?;
    dictionary::remove_contact(w.ctx.app, &account, contact_id)?;
    to_show(w, account.id, "Contact removed.")
}

// --- types of an account ---

fn account_type_form(w: &Web, n: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    let attached = accounts::load_details(w.ctx.app, account.clone())?.types;
    let available: Vec<_> =
        dictionary::types(w.ctx.app)?.into_iter().filter(|t| !attached.iter().any(|a| a.id == t.id)).collect();
    Ok(w.render("Add a type", 200, |p| v::account_type_form(p, &account, &available))?)
}

fn account_type_add(w: &Web, n: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    let type_id = w.form_id("account_type_id")?;
    dictionary::attach_type(w.ctx.app, &account, type_id)?;
    to_show(w, account.id, "Type added.")
}

fn account_type_remove(w: &Web, n: i64, type_id: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    dictionary::detach_type(w.ctx.app, &account, type_id)?;
    to_show(w, account.id, "Type removed.")
}

// --- actions ---

fn action_form(w: &Web, n: i64, action_id: Option<i64>) -> WebResult {
    let (_, account) = target(w, n)?;
    let action = action_id.map(|a| dictionary::action(w.ctx.app, &account, a)).transpose()?;
    let old = w.old();
    Ok(w.render("Action", 200, |p| v::action_form(p, &account, action.as_ref(), &old.state(w.lang)))?)
}

fn action_save(w: &Web, n: i64, action_id: Option<i64>) -> WebResult {
    let (_, account) = target(w, n)?;
    let input = w.form();
    let result = match action_id {
        Some(a) => dictionary::update_action(w.ctx.app, &account, a, input),
        None => dictionary::create_action(w.ctx.app, &account, input),
    };
    match form_errors(result)? {
        Ok(_) => to_show(w, account.id, if action_id.is_some() { "Action updated." } else { "Action created." }),
        Err(errors) => {
            let form_page = match action_id {
                Some(a) => format!("/admin/accounts/{}/actions/{a}/edit", account.id),
                None => format!("/admin/accounts/{}/actions/create", account.id),
            };
            w.back(&form_page, input, &errors)
        }
    }
}

fn action_delete(w: &Web, n: i64, action_id: i64) -> WebResult {
    let (_, account) = target(w, n)?;
    dictionary::delete_action(w.ctx.app, &account, action_id)?;
    to_show(w, account.id, "Action deleted.")
}

// --- account types ---

fn types_index(w: &Web) -> WebResult {
    w.admin()?;
    let list = dictionary::types(w.ctx.app)?;
    Ok(w.render(w.t("Account types"), 200, |p| v::types(p, &list))?)
}

fn type_form(w: &Web, type_id: Option<i64>) -> WebResult {
    w.admin()?;
    let existing = type_id.map(|t| dictionary::type_by_id(w.ctx.app, t)).transpose()?;
    let old = w.old();
    Ok(w.render(w.t("Account types"), 200, |p| v::type_form(p, existing.as_ref(), &old.state(w.lang)))?)
}

/// Creates (`type_id` None) or updates an account type.
fn type_save(w: &Web, type_id: Option<i64>) -> WebResult {
    w.admin()?;
    let input = w.form();
    let result = match type_id {
        Some(t) => dictionary::type_by_id(w.ctx.app, t)
            .and_then(|_| dictionary::update_type(w.ctx.app, t, input))
            .map(|_| "Account type updated."),
        None => dictionary::create_type(w.ctx.app, input).map(|_| "Account type created."),
    };
    match form_errors(result)? {
        Ok(message) => to_types(w, message),
        Err(errors) => {
            let form_page = match type_id {
                Some(t) => format!("/admin/accounts/types/{t}/edit"),
                None => "/admin/accounts/types/create".to_string(),
            };
            w.back(&form_page, input, &errors)
        }
    }
}

fn type_delete_form(w: &Web, type_id: i64) -> WebResult {
    w.admin()?;
    let existing = dictionary::type_by_id(w.ctx.app, type_id)?;
    Ok(w.render(w.t("Account types"), 200, |p| v::type_delete(p, &existing))?)
}

fn type_delete(w: &Web, type_id: i64) -> WebResult {
    w.admin()?;
    dictionary::delete_type(w.ctx.app, type_id)?;
    to_types(w, "Account type deleted.")
}

// --- statistics ---

fn stats(w: &Web, period_name: &str) -> WebResult {
    w.admin()?;
    let period = statistics::Period::parse(period_name).ok_or_else(AppError::not_found)?;
    let buckets = statistics::registrations(w.ctx.app, &w.ctx.scope(true), period)?;
    let mut page = w.page()?;
    page.wide = true;
    let body = views::stats::page(&page, period_name, &buckets);
    Ok(super::html(views::layout(&page, page.t("Statistics"), body), 200))
}
