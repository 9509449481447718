//! JSON shapes of the API objects (api.md §3).

use crate::config::Config;
use crate::domain::time;
use crate::services::accounts::Details;
use serde_json::{json, Map, Value};

/// Which optional parts an account's JSON carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Show {
    /// `passwords: [{algorithm}]`
    pub passwords: bool,
    /// `passwords: [{password, algorithm}]` (recovery by key only)
    pub password_hashes: bool,
    /// `confirmation_key` and `provisioning_token`
    pub keys: bool,
}

impl Show {
    pub const PLAIN: Show = Show { passwords: false, password_hashes: false, keys: false };
    pub const ME: Show = Show { passwords: true, password_hashes: false, keys: false };
    pub const ADMIN: Show = Show { passwords: true, password_hashes: false, keys: true };
    pub const KEYS: Show = Show { passwords: false, password_hashes: false, keys: true };
}

pub fn account(config: &Config, d: &Details, show: Show) -> Value {
    let a = &d.account;
    let mut m = Map::new();
    m.insert("id".into(), json!(a.id));
    m.insert("username".into(), json!(a.username));
    m.insert("domain".into(), json!(a.domain));
    m.insert("email".into(), json!(a.email));
    m.insert("activated".into(), json!(a.activated));
    m.insert("ip_address".into(), json!(a.ip_address));
    m.insert("user_agent".into(), json!(a.user_agent));
    m.insert("creation_time".into(), json!(a.created_at));
    m.insert("created_at".into(), json!(time::sql_to_iso(&a.created_at)));
    m.insert("updated_at".into(), json!(time::sql_to_iso(&a.updated_at)));
    m.insert("display_name".into(), json!(a.display_name));
    m.insert("dtmf_protocol".into(), json!(a.dtmf_protocol));
    m.insert("group".into(), json!(a.group));
    m.insert("realm".into(), json!(config.account_realm));
    m.insert("phone".into(), json!(a.phone));
    m.insert("admin".into(), json!(a.admin));
    m.insert(
        "confirmation_key_expires".into(),
        json!(d.activation_expiration.as_ref().map(|e| e.expires.clone())),
    );
    if show.keys {
        m.insert("confirmation_key".into(), json!(a.confirmation_key));
        m.insert("provisioning_token".into(), json!(a.provisioning_token));
    }
    if show.passwords || show.password_hashes {
        let passwords: Vec<Value> = d
            .passwords
            .iter()
            .map(|p| {
                if show.password_hashes {
                    json!({"password": p.password, "algorithm": p.algorithm})
                } else {
                    json!({"algorithm": p.algorithm})
                }
            })
            .collect();
        m.insert("passwords".into(), Value::Array(passwords));
    }
    m.insert(
        "email_changed".into(),
        match &d.email_change {
            Some(c) => json!({"new_email": c.new_email, "created_at": time::sql_to_iso(&c.created_at)}),
            None => Value::Null,
        },
    );
    m.insert(
        "activation_expiration".into(),
        match &d.activation_expiration {
            Some(e) => json!({
                "id": e.id, "account_id": e.account_id, "expires": e.expires,
                "created_at": time::sql_to_iso(&e.created_at), "updated_at": time::sql_to_iso(&e.updated_at)
            }),
            None => Value::Null,
        },
    );
    m.insert("types".into(), Value::Array(d.types.iter().map(|t| json!({"id": t.id, "key": t.key})).collect()));
    m.insert(
        "actions".into(),
        Value::Array(d.actions.iter().map(|x| json!({"id": x.id, "key": x.key, "code": x.code})).collect()),
    );
    Value::Object(m)
}

/// Laravel's paginator body.
pub fn page(base_url: &str, data: Vec<Value>, current: i64, per_page: i64, total: i64) -> Value {
    let last = ((total + per_page - 1) / per_page).max(1);
    let url = |n: i64| format!("{base_url}?page={n}");
    let from = if data.is_empty() { Value::Null } else { json!((current - 1) * per_page + 1) };
    let to = if data.is_empty() { Value::Null } else { json!((current - 1) * per_page + data.len() as i64) };
    let mut links = vec![json!({
        "url": if current > 1 { json!(url(current - 1)) } else { Value::Null },
        "label": "&laquo; Previous", "active": false
    })];
    for n in page_window(current, last) {
        links.push(match n {
            Some(n) => json!({"url": url(n), "label": n.to_string(), "active": n == current}),
            None => json!({"url": null, "label": "...", "active": false}),
        });
    }
    links.push(json!({
        "url": if current < last { json!(url(current + 1)) } else { Value::Null },
        "label": "Next &raquo;", "active": false
    }));
    json!({
        "current_page": current,
        "data": data,
        "first_page_url": url(1),
        "from": from,
        "last_page": last,
        "last_page_url": url(last),
        "links": links,
        "next_page_url": if current < last { json!(url(current + 1)) } else { Value::Null },
        "path": base_url,
        "per_page": per_page,
        "prev_page_url": if current > 1 { json!(url(current - 1)) } else { Value::Null },
        "to": to,
        "total": total,
    })
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
        assert_eq!(w, vec![Some(1), Some(2), None, Some(97), Some(98), Some(99), Some(100), Some(101), Some(102), Some(103), None, Some(4999), Some(5000)]);
        assert_eq!(page_window(5000, 5000).len(), 2 + 1 + 8);
    }
}
