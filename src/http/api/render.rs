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
    for n in 1..=last {
        links.push(json!({"url": url(n), "label": n.to_string(), "active": n == current}));
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
