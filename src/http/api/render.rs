//! JSON shapes of the API objects (api.md §3).

use crate::config::Config;
use crate::db::dictionary::{AccountType, Action};
use crate::domain::time;
use crate::services::accounts::Details;
use serde::Serialize;

/// Which optional parts an account's JSON carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Show {
    /// `passwords: [{algorithm}]`
    pub passwords: bool,
    /// `passwords: [{password, algorithm}]` (recovery by key only)
    pub password_hashes: bool,
    /// `confirmation_key` (it activates the account: never shown to its
    /// owner, who must prove the email address or phone instead)
    pub confirmation_key: bool,
    /// `provisioning_token`
    pub provisioning_token: bool,
}

impl Show {
    pub const PLAIN: Show =
        Show { passwords: false, password_hashes: false, confirmation_key: false, provisioning_token: false };
    /// FlexiAPI's default serialisation: password algorithms, no keys.
    pub const ME: Show = Show { passwords: true, ..Show::PLAIN };
    pub const ADMIN: Show = Show { passwords: true, confirmation_key: true, provisioning_token: true, ..Show::PLAIN };
    pub const KEYS: Show = Show { confirmation_key: true, provisioning_token: true, ..Show::PLAIN };
}

// The JSON objects are serialized straight from these structs, with their
// fields in alphabetical order: the order serde_json's `Value` maps (sorted
// keys) gave the same objects, so the bodies stay byte-for-byte the same.

/// An account's JSON (`account`).
#[derive(Serialize)]
pub struct AccountJson<'a> {
    actions: Vec<ActionJson<'a>>,
    activated: bool,
    activation_expiration: Option<ExpirationJson<'a>>,
    admin: bool,
    /// Outer `None`: absent; `Some(None)`: `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmation_key: Option<Option<&'a str>>,
    confirmation_key_expires: Option<&'a str>,
    created_at: String,
    creation_time: &'a str,
    display_name: Option<&'a str>,
    domain: &'a str,
    dtmf_protocol: Option<&'a str>,
    email: Option<&'a str>,
    email_changed: Option<EmailChangedJson<'a>>,
    group: Option<&'a str>,
    id: i64,
    ip_address: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    passwords: Option<Vec<PasswordJson<'a>>>,
    phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provisioning_token: Option<Option<&'a str>>,
    realm: Option<&'a str>,
    types: Vec<TypeJson<'a>>,
    updated_at: String,
    user_agent: &'a str,
    username: &'a str,
}

/// `{id, key, code}` of a DTMF action.
#[derive(Serialize)]
pub struct ActionJson<'a> {
    code: &'a str,
    id: i64,
    key: &'a str,
}

impl<'a> ActionJson<'a> {
    pub fn of(x: &'a Action) -> Self {
        ActionJson { code: &x.code, id: x.id, key: &x.key }
    }
}

/// `{id, key}` of an account type.
#[derive(Serialize)]
pub struct TypeJson<'a> {
    id: i64,
    key: &'a str,
}

impl<'a> TypeJson<'a> {
    pub fn of(t: &'a AccountType) -> Self {
        TypeJson { id: t.id, key: &t.key }
    }
}

#[derive(Serialize)]
struct ExpirationJson<'a> {
    account_id: i64,
    created_at: String,
    expires: &'a str,
    id: i64,
    updated_at: String,
}

#[derive(Serialize)]
struct EmailChangedJson<'a> {
    created_at: String,
    new_email: &'a str,
}

#[derive(Serialize)]
struct PasswordJson<'a> {
    algorithm: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
}

pub fn account<'a>(config: &'a Config, d: &'a Details, show: Show) -> AccountJson<'a> {
    let a = &d.account;
    AccountJson {
        actions: d.actions.iter().map(ActionJson::of).collect(),
        activated: a.activated,
        activation_expiration: d.activation_expiration.as_ref().map(|e| ExpirationJson {
            account_id: e.account_id,
            created_at: time::sql_to_iso(&e.created_at),
            expires: &e.expires,
            id: e.id,
            updated_at: time::sql_to_iso(&e.updated_at),
        }),
        admin: a.admin,
        confirmation_key: show.confirmation_key.then_some(a.confirmation_key.as_deref()),
        confirmation_key_expires: d.activation_expiration.as_ref().map(|e| e.expires.as_str()),
        created_at: time::sql_to_iso(&a.created_at),
        creation_time: &a.created_at,
        display_name: a.display_name.as_deref(),
        domain: &a.domain,
        dtmf_protocol: a.dtmf_protocol.as_deref(),
        email: a.email.as_deref(),
        email_changed: d
            .email_change
            .as_ref()
            .map(|c| EmailChangedJson { created_at: time::sql_to_iso(&c.created_at), new_email: &c.new_email }),
        group: a.group.as_deref(),
        id: a.id,
        ip_address: &a.ip_address,
        passwords: (show.passwords || show.password_hashes).then(|| {
            d.passwords
                .iter()
                .map(|p| PasswordJson {
                    algorithm: &p.algorithm,
                    password: show.password_hashes.then_some(p.password.as_str()),
                })
                .collect()
        }),
        phone: a.phone.as_deref(),
        provisioning_token: show.provisioning_token.then_some(a.provisioning_token.as_deref()),
        realm: config.account_realm.as_deref(),
        types: d.types.iter().map(TypeJson::of).collect(),
        updated_at: time::sql_to_iso(&a.updated_at),
        user_agent: &a.user_agent,
        username: &a.username,
    }
}

/// Laravel's paginator body.
#[derive(Serialize)]
pub struct Page<'a, T> {
    current_page: i64,
    data: Vec<T>,
    first_page_url: String,
    from: Option<i64>,
    last_page: i64,
    last_page_url: String,
    links: Vec<Link>,
    next_page_url: Option<String>,
    path: &'a str,
    per_page: i64,
    prev_page_url: Option<String>,
    to: Option<i64>,
    total: i64,
}

#[derive(Serialize)]
struct Link {
    active: bool,
    label: String,
    url: Option<String>,
}

pub fn page<T: Serialize>(base_url: &str, data: Vec<T>, current: i64, per_page: i64, total: i64) -> Page<'_, T> {
    let last = ((total + per_page - 1) / per_page).max(1);
    let url = |n: i64| format!("{base_url}?page={n}");
    let from = if data.is_empty() { None } else { Some((current - 1) * per_page + 1) };
    let to = if data.is_empty() { None } else { Some((current - 1) * per_page + data.len() as i64) };
    let previous = if current > 1 { Some(url(current - 1)) } else { None };
    let next = if current < last { Some(url(current + 1)) } else { None };
    let mut links = vec![Link { url: previous.clone(), label: "&laquo; Previous".into(), active: false }];
    for n in page_window(current, last) {
        links.push(match n {
            Some(n) => Link { url: Some(url(n)), label: n.to_string(), active: n == current },
            None => Link { url: None, label: "...".into(), active: false },
        });
    }
    links.push(Link { url: next.clone(), label: "Next &raquo;".into(), active: false });
    Page {
        current_page: current,
        data,
        first_page_url: url(1),
        from,
        last_page: last,
        last_page_url: url(last),
        links,
        next_page_url: next,
        path: base_url,
        per_page,
        prev_page_url: previous,
        to,
        total,
    }
}

/// Laravel's `UrlWindow` with 3 links on each side of the current page:
/// every page when there are few, else the first two, a slider around the
/// current page and the last two, with `None` for the "..." gaps.
fn page_window(current: i64, last: i64) -> Vec<Option<i64>> {
    const EACH_SIDE: i64 = 3;
    let window = EACH_SIDE * 2;
    let range = |a: i64, b: i64| (a.max(1)..=b.min(last)).map(Some).collect::<Vec<_>>();
    if last < window + 8 {
        return range(1, last);
    }
    let mut out;
    if current <= window {
        out = range(1, window + 2);
        out.push(None);
        out.extend(range(last - 1, last));
    } else if current > last - window {
        out = range(1, 2);
        out.push(None);
        out.extend(range(last - (window + 2) + 1, last));
    } else {
        out = range(1, 2);
        out.push(None);
        out.extend(range(current - EACH_SIDE, current + EACH_SIDE));
        out.push(None);
        out.extend(range(last - 1, last));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::page_window;

    #[test]
    fn windows() {
        assert_eq!(page_window(1, 3), vec![Some(1), Some(2), Some(3)]);
        let w = page_window(1, 5000);
        assert_eq!(w.len(), 8 + 1 + 2);
        assert_eq!(w.last(), Some(&Some(5000)));
        let w = page_window(100, 5000);
        assert_eq!(
            w,
            vec![
                Some(1),
                Some(2),
                None,
                Some(97),
                Some(98),
                Some(99),
                Some(100),
                Some(101),
                Some(102),
                Some(103),
                None,
                Some(4999),
                Some(5000)
            ]
        );
        assert_eq!(page_window(5000, 5000).len(), 2 + 1 + 8);
    }
}
