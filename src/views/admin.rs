//! The admin area pages.

use super::form::{self, Field, State};
use super::{breadcrumb, Page};
use crate::db::accounts::Account;
use crate::db::dictionary::{AccountType, Action, ExternalAccount};
use crate::services::accounts::Details;
use maud::{html, Markup};

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn accounts_crumb(p: &Page) -> (&'static str, Option<String>) {
    (p.t("Accounts"), Some("/admin/accounts".to_string()))
}

/// The list's filters, sort and page, as query parameters.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub search: Option<String>,
    pub activated: Option<bool>,
    pub admin: Option<bool>,
    pub sort: String,
    pub descending: bool,
    pub page: i64,
}

impl ListQuery {
    pub fn href(&self, page: i64, sort: Option<(&str, bool)>) -> String {
        let (sort, desc) = sort.unwrap_or((&self.sort, self.descending));
        let mut q = vec![format!("sort={sort}"), format!("order={}", if desc { "desc" } else { "asc" })];
        if let Some(s) = &self.search {
            q.push(format!("search={}", enc(s)));
        }
        if let Some(a) = self.activated {
            q.push(format!("activated={}", a as u8));
        }
        if let Some(a) = self.admin {
            q.push(format!("admin={}", a as u8));
        }
        q.push(format!("page={page}"));
        format!("/admin/accounts?{}", q.join("&"))
    }
}

fn flag_select(name: &str, label: &str, value: Option<bool>) -> Markup {
    let id = format!("f-{name}");
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(name) {
                option value="" selected[value.is_none()] { "Any" }
                option value="1" selected[value == Some(true)] { "Yes" }
                option value="0" selected[value == Some(false)] { "No" }
            }
        }
    }
}

fn sort_link(q: &ListQuery, column: &str, label: &str) -> Markup {
    let active = q.sort == column;
    let desc = if active { !q.descending } else { column == "created_at" };
    let arrow = if active {
        if q.descending {
            " ↓"
        } else {
            " ↑"
        }
    } else {
        ""
    };
    html! { a href=(q.href(1, Some((column, desc)))) { (label) (arrow) } }
}

fn badge(on: bool, text: &str, title: &str) -> Markup {
    html! { @if on { span.badge.on title=(title) { (text) } } }
}

/// `with_external`: the ids of the listed accounts that have an external
/// account attached (the EA badge).
pub fn list(
    p: &Page,
    rows: &[Details],
    with_external: &std::collections::HashSet<i64>,
    total: i64,
    per_page: i64,
    q: &ListQuery,
) -> Markup {
    let pages = ((total + per_page - 1) / per_page).max(1);
    html! {
        (breadcrumb(p, &[(p.t("Accounts"), None)]))
        div.actions {
            h1 { (p.t("Accounts")) }
            a.button href="/admin/accounts/create" { (p.t("Create")) }
        }
        form.filters method="GET" action="/admin/accounts" {
            div.field {
                label for="f-search" { (p.t("Search")) }
                input id="f-search" type="search" name="search" value=[q.search.as_deref()] placeholder="+1234, foo_bar";
            }
            (flag_select("activated", p.t("Activated"), q.activated))
            (flag_select("admin", p.t("Admin"), q.admin))
            input type="hidden" name="sort" value=(q.sort);
            input type="hidden" name="order" value=(if q.descending { "desc" } else { "asc" });
            button type="submit" { (p.t("Search")) }
        }
        p { (total) " accounts" }
        div.table-wrap { table {
            thead { tr {
                th { (sort_link(q, "username", "Identifier")) }
                th { "" }
                th { (sort_link(q, "created_at", p.t("Created"))) }
            } }
            tbody {
                @for d in rows {
                    @let a = &d.account;
                    tr {
                        td.id { a href=(format!("/admin/accounts/{}/show", a.id)) { (a.sip()) } }
                        td {
                            (badge(with_external.contains(&a.id), "EA", "External account attached"))
                            (badge(a.email.is_some(), "Email", "Has an email"))
                            (badge(a.activated, "Act.", "Activated"))
                            (badge(a.admin, "Adm.", "Admin"))
                            (badge(d.passwords.iter().any(|p| p.algorithm == "SHA-256"), "SHA256", "SHA-256 password"))
                            (badge(a.phone.is_some(), "Phone", "Has a phone number"))
                        }
                        td { (a.created_at) }
                    }
                }
            }
        } }
        nav.pager aria-label="pagination" {
            @if q.page > 1 { a.button.secondary href=(q.href(q.page - 1, None)) { (p.t("Previous")) } }
            span { (q.page) " / " (pages) }
            @if q.page < pages { a.button.secondary href=(q.href(q.page + 1, None)) { (p.t("Next")) } }
        }
    }
}

pub struct FormOptions {
    pub multi_domain: bool,
    pub domain: String,
}

pub fn account_form(p: &Page, account: Option<&Account>, o: &FormOptions, state: &State) -> Markup {
    let title = if account.is_some() { p.t("Edit an account") } else { p.t("Create an account") };
    let action = match account {
        Some(a) => format!("/admin/accounts/{}", a.id),
        None => "/admin/accounts".to_string(),
    };
    let suffix = format!("@{}", account.map(|a| a.domain.as_str()).unwrap_or(&o.domain));
    let dtmf = [("", "None"), ("sipinfo", "SIPInfo"), ("rfc2833", "RFC2833"), ("sipmessage", "SIP Message")];
    html! {
        (breadcrumb(p, &[accounts_crumb(p), (title, None)]))
        h1 { (title) }
        (form::errors_box(p, state))
        form.stack method="POST" action=(action) {
            (form::csrf(p))
            @if account.is_some() { (form::method("PUT")) }
            @if o.multi_domain {
                (Field::new("username", p.t("Username")).required().default(account.map(|a| a.username.clone())).render(state))
                (Field::new("domain", p.t("Domain")).default(Some(account.map(|a| a.domain.clone()).unwrap_or_else(|| o.domain.clone()))).render(state))
            } @else {
                (Field::new("username", p.t("Username")).required().suffix(&suffix).default(account.map(|a| a.username.clone())).render(state))
            }
            @if account.is_some() {
                (Field::new("password", p.t("Password")).kind("password").autocomplete("new-password")
                    .hint(p.t("Fill to change. Required when the username changes: the stored hash depends on it.")).render(state))
            } @else {
                (Field::new("password", p.t("Password")).kind("password").required().autocomplete("new-password")
                    .hint(p.t("At least 6 characters.")).render(state))
            }
            (form::checkbox(state, "password_sha256", html! { (p.t("Use a SHA-256 password (some old SIP clients do not support it)")) }, false))
            (Field::new("email", p.t("Email address")).kind("email").default(account.and_then(|a| a.email.clone())).render(state))
            (Field::new("display_name", p.t("Display name")).default(account.and_then(|a| a.display_name.clone())).render(state))
            (Field::new("phone", p.t("Phone number")).kind("tel").placeholder("+12123123").default(account.and_then(|a| a.phone.clone())).render(state))
            (form::select(state, "dtmf_protocol", "DTMF protocol", &dtmf, account.and_then(|a| a.dtmf_protocol.as_deref())))
            div.actions { button type="submit" { (p.t("Save")) } }
        }
    }
}

pub struct Show<'a> {
    pub details: &'a Details,
    pub contacts: &'a [Details],
    pub external: Option<&'a ExternalAccount>,
    /// Unused accounts of the imported pool, when
    /// `ACCOUNT_CONSUME_EXTERNAL_ACCOUNT_ON_CREATE` is on.
    pub external_pool: Option<i64>,
    pub provisioning_url: Option<String>,
}

/// A one-button form (POST + CSRF) for a state change.
fn post_button(p: &Page, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form method="POST" action=(action) {
            (form::csrf(p))
            button class=(class) type="submit" { (label) }
        }
    }
}

pub fn show(p: &Page, s: &Show) -> Markup {
    let a = &s.details.account;
    let base = format!("/admin/accounts/{}", a.id);
    let dtmf = match a.dtmf_protocol.as_deref() {
        Some("sipinfo") => "SIPInfo",
        Some("rfc2833") => "RFC2833",
        Some("sipmessage") => "SIP Message",
        _ => "None",
    };
    html! {
        (breadcrumb(p, &[accounts_crumb(p), (&a.sip(), None)]))
        h1 { (a.sip()) }
        div.actions {
            a.button href=(format!("{base}/edit")) { (p.t("Edit")) }
            a.button.danger href=(format!("{base}/delete")) { (p.t("Delete")) }
        }
        dl.facts {
            dt { "Id" } dd { (a.id) }
            dt { "Identifier" } dd { (a.sip()) }
            dt { (p.t("Email address")) } dd { @if let Some(e) = &a.email { a href=(format!("mailto:{e}")) { (e) } } @else { "-" } }
            dt { "DTMF protocol" } dd { (dtmf) }
            @if let Some(phone) = &a.phone { dt { (p.t("Phone number")) } dd { (phone) } }
            @if let Some(g) = &a.group { dt { "Group" } dd { (g) } }
            @if let Some(n) = &a.display_name { dt { (p.t("Display name")) } dd { (n) } }
            dt { "Password" } dd { @for pw in &s.details.passwords { span.badge { (pw.algorithm) } } }
        }
        div.actions {
            @if a.activated {
                span.badge.on { (p.t("Activated")) }
                (post_button(p, &format!("{base}/deactivate"), p.t("Deactivate"), "secondary"))
            } @else {
                span.badge { (p.t("Unactivated")) }
                (post_button(p, &format!("{base}/activate"), p.t("Activate"), "secondary"))
            }
        }
        div.actions {
            @if a.admin {
                span.badge.on { (p.t("Admin")) }
                (post_button(p, &format!("{base}/unadmin"), p.t("Remove admin role"), "secondary"))
            } @else {
                span.badge { (p.t("Not Admin")) }
                (post_button(p, &format!("{base}/admin"), p.t("Add admin role"), "secondary"))
            }
        }

        h2 id="external-account" { (p.t("External Account")) }
        @if let Some(e) = s.external {
            dl.facts {
                dt { "Identifier" } dd { (e.username) "@" (e.domain) }
                dt { (p.t("Realm")) } dd { (e.effective_realm()) }
                dt { (p.t("Registrar")) } dd { (e.registrar.as_deref().unwrap_or(&e.domain)) }
                @if let Some(o) = &e.outbound_proxy { dt { (p.t("Outbound proxy")) } dd { (o) } }
                @if let Some(t) = &e.protocol { dt { (p.t("Protocol")) } dd { (t) } }
                dt { (p.t("Password")) } dd { span.badge { (e.algorithm) } }
            }
            div.actions {
                a.button.secondary href=(format!("{base}/external_account")) { (p.t("Edit")) }
                (form::delete(p, &format!("{base}/external_account"), &[], None))
            }
        } @else {
            p { (p.t("No External Account attached.")) }
            div.actions {
                a.button.secondary href=(format!("{base}/external_account")) { (p.t("Attach an External Account")) }
                @match s.external_pool {
                    Some(left) => {
                        form method="POST" action=(format!("{base}/external_account/attach")) {
                            (form::csrf(p))
                            button.secondary type="submit" disabled[left == 0] { (p.t("Attach an imported External Account")) " (" (left) " " (p.t("left")) ")" }
                        }
                    }
                    None => {}
                }
            }
            @if s.external_pool.is_none() {
                p.hint { (p.t("Imported External Accounts:")) " " span.disabled-feature { (p.t("The feature is not enabled on this instance.")) } }
            }
        }

        h2 { (p.t("Contacts")) }
        @if s.contacts.is_empty() { p { (p.t("No contact.")) } }
        ul.menu { @for c in s.contacts {
            li.actions {
                span { (c.account.sip()) }
                (form::delete(p, &format!("{base}/contacts"), &[("contact_id", c.account.id.to_string())], None))
            }
        } }
        a.button.secondary href=(format!("{base}/contacts/create")) { (p.t("Add a contact")) }

        h2 { (p.t("Actions")) }
        @if a.dtmf_protocol.is_none() {
            p { (p.t("Configure a DTMF protocol on the account to manage its actions.")) }
        } @else {
            @if s.details.actions.is_empty() { p { (p.t("No action.")) } }
            ul.menu { @for act in &s.details.actions {
                li.actions {
                    span { strong { (act.key) } " → " code { (act.code) } }
                    a.button.secondary href=(format!("{base}/actions/{}/edit", act.id)) { (p.t("Edit")) }
                    (form::delete(p, &format!("{base}/actions/{}", act.id), &[], None))
                }
            } }
            a.button.secondary href=(format!("{base}/actions/create")) { (p.t("Add an action")) }
        }

        h2 { (p.t("Types")) }
        @if s.details.types.is_empty() { p { (p.t("No type.")) } }
        ul.menu { @for t in &s.details.types {
            li.actions {
                span { (t.key) }
                (form::delete(p, &format!("{base}/types/{}", t.id), &[], None))
            }
        } }
        a.button.secondary href=(format!("{base}/types/create")) { (p.t("Add a type")) }

        h2 { (p.t("Provisioning")) }
        @if let (Some(token), Some(url)) = (&a.provisioning_token, &s.provisioning_url) {
            div.qr { img src=(format!("/provisioning/qrcode/{token}")) alt="Provisioning QR code" width="300" height="300"; }
            div.field {
                label for="provisioning-link" { "Provisioning link (works once)" }
                input.copy id="provisioning-link" type="text" readonly value=(url);
            }
            (post_button(p, &format!("{base}/provision"), p.t("Renew the provision link"), "secondary"))
            p.hint { "Renewing the link makes the previous one stop working." }
        } @else {
            (post_button(p, &format!("{base}/provision"), p.t("Generate a provision link"), ""))
        }
    }
}

pub fn delete(p: &Page, a: &Account) -> Markup {
    html! {
        (breadcrumb(p, &[accounts_crumb(p), (&a.sip(), Some(format!("/admin/accounts/{}/show", a.id))), (p.t("Delete"), None)]))
        h1 { "Delete an account" }
        div.alert.error { "The deletion is definitive: " strong { (a.sip()) } " and all its data will be destroyed." }
        (form::delete(p, "/admin/accounts", &[("account_id", a.id.to_string())], Some(&format!("/admin/accounts/{}/show", a.id))))
    }
}

/// The page behind an action's GET URL (web.md §8 Rec.): what will happen,
/// and the form that does it (`method` "POST" or "DELETE").
pub fn confirm(p: &Page, a: &Account, question: &str, action: &str, method: &str, hidden: &[(&str, String)]) -> Markup {
    let back = format!("/admin/accounts/{}/show", a.id);
    html! {
        (breadcrumb(p, &[accounts_crumb(p), (&a.sip(), Some(back.clone())), (question, None)]))
        h1 { (question) }
        p { strong { (a.sip()) } }
        @if method == "DELETE" {
            (form::delete(p, action, hidden, Some(&back)))
        } @else {
            form method="POST" action=(action) {
                (form::csrf(p))
                @for (name, value) in hidden { input type="hidden" name=(name) value=(value); }
                div.actions {
                    button type="submit" { (p.t("Confirm")) }
                    a.button.secondary href=(back) { (p.t("Cancel")) }
                }
            }
        }
    }
}

pub fn contact_form(p: &Page, a: &Account, state: &State) -> Markup {
    html! {
        (breadcrumb(p, &[accounts_crumb(p), (&a.sip(), Some(format!("/admin/accounts/{}/show", a.id))), ("Add a contact", None)]))
        h1 { "Add a contact" }
        (form::errors_box(p, state))
        form.stack method="POST" action=(format!("/admin/accounts/{}/contacts", a.id)) {
            (form::csrf(p))
            (Field::new("sip", "SIP address").placeholder("username@domain").required().render(state))
            div.actions { button type="submit" { (p.t("Save")) } }
        }
    }
}

pub fn account_type_form(p: &Page, a: &Account, available: &[AccountType]) -> Markup {
    html! {
        (breadcrumb(p, &[accounts_crumb(p), (&a.sip(), Some(format!("/admin/accounts/{}/show", a.id))), ("Add a type", None)]))
        h1 { "Add a type" }
        @if available.is_empty() {
            p { "No account type to add." }
        } @else {
            form.stack method="POST" action=(format!("/admin/accounts/{}/types", a.id)) {
                (form::csrf(p))
                div.field {
                    label for="f-type" { "Type" }
                    select id="f-type" name="account_type_id" {
                        @for t in available { option value=(t.id) { (t.key) } }
                    }
                }
                div.actions { button type="submit" { (p.t("Save")) } }
            }
        }
    }
}

pub fn action_form(p: &Page, a: &Account, action: Option<&Action>, state: &State) -> Markup {
    let (title, target) = match action {
        Some(act) => ("Edit an action", format!("/admin/accounts/{}/actions/{}", a.id, act.id)),
        None => ("Add an action", format!("/admin/accounts/{}/actions", a.id)),
    };
    html! {
        (breadcrumb(p, &[accounts_crumb(p), (&a.sip(), Some(format!("/admin/accounts/{}/show", a.id))), (title, None)]))
        h1 { (title) }
        (form::errors_box(p, state))
        form.stack method="POST" action=(target) {
            (form::csrf(p))
            @if action.is_some() { (form::method("PUT")) }
            (Field::new("key", "Key").placeholder("action_key").required().default(action.map(|x| x.key.clone())).render(state))
            (Field::new("code", "Code").placeholder("12ab45").required().default(action.map(|x| x.code.clone())).render(state))
            div.actions { button type="submit" { (p.t("Save")) } }
        }
    }
}

pub fn types(p: &Page, list: &[AccountType]) -> Markup {
    html! {
        (breadcrumb(p, &[(p.t("Account types"), None)]))
        div.actions {
            h1 { (p.t("Account types")) }
            a.button href="/admin/accounts/types/create" { (p.t("Create")) }
        }
        @if list.is_empty() { p { "No account type yet." } }
        div.table-wrap { table {
            thead { tr { th { "Key" } th {} } }
            tbody { @for t in list {
                tr {
                    td { (t.key) }
                    td.actions {
                        a.button.secondary href=(format!("/admin/accounts/types/{}/edit", t.id)) { (p.t("Edit")) }
                        a.button.danger href=(format!("/admin/accounts/types/{}/delete", t.id)) { (p.t("Delete")) }
                    }
                }
            } }
        } }
    }
}

pub fn type_form(p: &Page, t: Option<&AccountType>, state: &State) -> Markup {
    let (title, action) = match t {
        Some(t) => ("Edit an account type", format!("/admin/accounts/types/{}", t.id)),
        None => ("Create an account type", "/admin/accounts/types".to_string()),
    };
    html! {
        (breadcrumb(p, &[(p.t("Account types"), Some("/admin/accounts/types".into())), (title, None)]))
        h1 { (title) }
        (form::errors_box(p, state))
        form.stack method="POST" action=(action) {
            (form::csrf(p))
            @if t.is_some() { (form::method("PUT")) }
            (Field::new("key", "Key").placeholder("type_key").required().default(t.map(|t| t.key.clone())).render(state))
            div.actions { button type="submit" { (p.t("Save")) } }
        }
    }
}

pub fn type_delete(p: &Page, t: &AccountType) -> Markup {
    html! {
        (breadcrumb(p, &[(p.t("Account types"), Some("/admin/accounts/types".into())), (p.t("Delete"), None)]))
        h1 { "Delete the type " (t.key) "?" }
        p { "It will be removed from every account." }
        (form::delete(p, &format!("/admin/accounts/types/{}", t.id), &[], Some("/admin/accounts/types")))
    }
}

/// Create or edit the external account of `a`.
pub fn external_form(p: &Page, a: &Account, existing: Option<&ExternalAccount>, state: &State) -> Markup {
    let title = if existing.is_some() { p.t("Edit the External Account") } else { p.t("Attach an External Account") };
    let protocols: Vec<(&str, &str)> = crate::services::external_accounts::PROTOCOLS.iter().map(|t| (*t, *t)).collect();
    let current = |f: fn(&ExternalAccount) -> Option<String>| existing.and_then(f);
    html! {
        (breadcrumb(p, &[accounts_crumb(p), (&a.sip(), Some(format!("/admin/accounts/{}/show", a.id))), (title, None)]))
        h1 { (title) }
        (form::errors_box(p, state))
        form.stack method="POST" action=(format!("/admin/accounts/{}/external_account", a.id)) {
            (form::csrf(p))
            @if existing.is_some() { (form::method("PUT")) }
            (Field::new("username", p.t("Username")).required().default(current(|e| Some(e.username.clone()))).render(state))
            (Field::new("domain", p.t("Domain")).required().placeholder("sip.example.net").default(current(|e| Some(e.domain.clone()))).render(state))
            (Field::new("realm", p.t("Realm")).placeholder(p.t("the domain")).default(current(|e| e.realm.clone())).render(state))
            (Field::new("registrar", p.t("Registrar")).placeholder("registrar.example.net:5060").hint(p.t("Host name, optionally followed by :port; the domain when empty.")).default(current(|e| e.registrar.clone())).render(state))
            (Field::new("outbound_proxy", p.t("Outbound proxy")).placeholder("proxy.example.net:5060").default(current(|e| e.outbound_proxy.clone())).render(state))
            (form::select(state, "protocol", p.t("Protocol"), &protocols, Some(existing.and_then(|e| e.protocol.as_deref()).unwrap_or("UDP"))))
            @if existing.is_some() {
                (Field::new("password", p.t("Password")).kind("password").autocomplete("new-password")
                    .hint(p.t("Fill to change. Required when the username, domain or realm changes.")).render(state))
            } @else {
                (Field::new("password", p.t("Password")).kind("password").required().autocomplete("new-password").render(state))
            }
            (form::checkbox(state, "password_sha256", html! { (p.t("Use a SHA-256 password (some old SIP clients do not support it)")) }, existing.is_some_and(|e| e.algorithm == "SHA-256")))
            div.actions {
                button type="submit" { (p.t("Save")) }
                a.button.secondary href=(format!("/admin/accounts/{}/show", a.id)) { (p.t("Cancel")) }
            }
        }
    }
}
