//! What a handler receives: the app, the request, helpers to read it, and
//! headers to add to whatever response the handler returns.

use crate::app::App;
use crate::domain::rules::Input;
use crate::error::AppError;
use crate::services::{Client, Scope};
use rouille::{Request, Response};
use std::cell::RefCell;
use std::io::Read;

pub type HttpResult = Result<Response, AppError>;

pub struct Ctx<'a> {
    pub app: &'a App,
    pub req: &'a Request,
    body: RefCell<Option<Vec<u8>>>,
    extra_headers: RefCell<Vec<(String, String)>>,
    /// The Space this request's host belongs to: (SIP domain, is super).
    space: std::cell::OnceCell<(String, bool)>,
}

impl<'a> Ctx<'a> {
    pub fn new(app: &'a App, req: &'a Request) -> Ctx<'a> {
        Ctx { app, req, body: RefCell::new(None), extra_headers: RefCell::new(Vec::new()), space: Default::default() }
    }

    /// The SIP domain of the Space serving this request's host (looked up
    /// once per request, only when needed).
    pub fn space_domain(&self) -> &str {
        &self.space().0
    }

    fn space(&self) -> &(String, bool) {
        self.space.get_or_init(|| {
            crate::services::spaces::for_host(
                self.app,
                crate::domain::rules::host_without_port(self.req.header("Host").unwrap_or("")),
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.req.header(name)
    }

    /// A cookie's value, by name.
    pub fn cookie(&self, name: &str) -> Option<String> {
        rouille::input::cookies(self.req).find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    /// The raw body (read once, cached).
    pub fn body(&self) -> Vec<u8> {
        let mut slot = self.body.borrow_mut();
        if slot.is_none() {
            let mut data = Vec::new();
            if let Some(mut reader) = self.req.data() {
                let _ = reader.read_to_end(&mut data);
            }
            *slot = Some(data);
        }
        slot.clone().unwrap_or_default()
    }

    /// The JSON body as normalised input. Bodies that are not declared as
    /// JSON, or do not parse, give empty input (so required fields fail).
    pub fn json_input(&self) -> Input {
        let is_json = self.header("Content-Type").is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
        if !is_json {
            return Input::default();
        }
        match serde_json::from_slice::<StrictJson>(&self.body()) {
            Ok(StrictJson(value)) => Input::from_json(value),
            Err(_) => Input::default(),
        }
    }

    /// Form fields of an `application/x-www-form-urlencoded` body.
    pub fn form_input(&self) -> Input {
        let body = self.body();
        let pairs = url_decode_pairs(&String::from_utf8_lossy(&body));
        Input::from_pairs(pairs)
    }

    /// Does the client prefer JSON (Laravel's `expectsJson`)?
    /// The `Referer` when it names a page of this site (by the request's
    /// `Host` or `APP_URL`): as sent, and its path (and query). For "back"
    /// redirects, so never one that would leave the site: `//host`, a
    /// backslash (`/\\host` is `//host` to a browser), control characters.
    pub fn referer_on_this_site(&self) -> Option<(&'a str, String)> {
        let referer = self.header("Referer")?;
        let path = match referer.strip_prefix("https://").or_else(|| referer.strip_prefix("http://")) {
            Some(rest) => {
                let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
                let app_authority = self.app.config.app_url.split_once("://").and_then(|(_, r)| r.split('/').next());
                if Some(authority) != self.header("Host") && Some(authority) != app_authority {
                    return None;
                }
                format!("/{path}")
            }
            None => referer.to_string(),
        };
        let safe = path.starts_with('/')
            && !path[1..].starts_with('/')
            && !path.contains(|c: char| c == '\\' || c.is_control());
        safe.then_some((referer, path))
    }

    pub fn wants_json(&self) -> bool {
        self.header("Accept").is_some_and(|a| a.contains("/json") || a.contains("+json"))
            || self.header("X-Requested-With").is_some_and(|x| x.eq_ignore_ascii_case("XMLHttpRequest"))
    }

    /// The client, as recorded on rows it creates. `X-Forwarded-For` is
    /// believed only from a reverse proxy on this machine.
    pub fn client(&self) -> Client {
        Client { ip: self.client_ip(), user_agent: self.header("User-Agent").map(|s| s.chars().take(255).collect()) }
    }

    pub fn client_ip(&self) -> String {
        let remote = self.req.remote_addr().ip();
        if remote.is_loopback() {
            if let Some(forwarded) = self.header("X-Forwarded-For") {
                if let Some(first) = forwarded.split(',').next().map(str::trim).filter(|s| !s.is_empty()) {
                    if first.parse::<std::net::IpAddr>().is_ok() {
                        return first.to_string();
                    }
                }
            }
        }
        remote.to_string()
    }

    /// The accounts this request may see, for an (optional) admin caller.
    pub fn scope(&self, admin_caller: bool) -> Scope {
        let (domain, is_super) = self.space();
        let all = admin_caller && (self.app.config.admins_manage_multi_domains || *is_super);
        Scope { domain: domain.clone(), all_domains: all }
    }

    /// May `account` act in this request's Space? Its domain must be within
    /// the scope it would get here: an admin of another Space is no admin
    /// here (unless this Space's admins manage every domain), and the
    /// portal does not log in an account of another Space.
    pub fn space_admits(&self, account: &crate::db::accounts::Account) -> bool {
        self.scope(account.admin).allows(&account.domain)
    }

    /// The scope of public and user endpoints: this Space's domain only.
    pub fn public_scope(&self) -> Scope {
        Scope { domain: self.space_domain().to_string(), all_domains: false }
    }

    /// Query-string parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        self.req.get_param(name)
    }

    pub fn has_query(&self, name: &str) -> bool {
        self.req.raw_query_string().split('&').any(|p| p.split('=').next() == Some(name))
    }

    /// Adds a header to the eventual response (success or error).
    pub fn add_header(&self, name: &str, value: String) {
        self.extra_headers.borrow_mut().push((name.to_string(), value));
    }

    pub fn finish(&self, mut response: Response) -> Response {
        for (k, v) in self.extra_headers.borrow_mut().drain(..) {
            response = response.with_additional_header(k, v);
        }
        response
    }
}

/// A JSON document whose objects repeat no key. serde_json keeps the last
/// of duplicate keys silently; a proxy or a WAF reading the first would see
/// another request than we do. A body with duplicates is treated as one
/// that does not parse. (Depth and number range are serde_json's limits:
/// 128 levels, finite numbers.)
struct StrictJson(serde_json::Value);

impl<'de> serde::Deserialize<'de> for StrictJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictJson)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value without duplicate keys")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictJson(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(serde_json::Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
            let StrictJson(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(serde_json::Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::StrictJson;

    #[test]
    fn strict_json() {
        let parse = |s: &str| serde_json::from_str::<StrictJson>(s).map(|j| j.0);
        assert_eq!(
            parse(r#"{"a":[1,{"b":"c"}],"d":null,"e":1.5,"f":-2}"#).unwrap(),
            serde_json::json!({"a":[1,{"b":"c"}],"d":null,"e":1.5,"f":-2})
        );
        assert!(parse(r#"{"a":1,"a":2}"#).is_err());
        assert!(parse(r#"{"x":{"a":1,"a":1}}"#).is_err());
        assert!(parse("1e400").is_err());
        assert!(parse(&format!("{}{}", "[".repeat(200), "]".repeat(200))).is_err());
    }
}

/// `a=1&b=x%20y` → pairs, `+` as space.
pub fn url_decode_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode =
                |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

// --- response helpers ---

pub fn json(value: &impl serde::Serialize) -> Response {
    Response::json(value)
}

pub fn json_status(status: u16, value: &serde_json::Value) -> Response {
    Response::json(value).with_status_code(status)
}

/// 200 with no body, as FlexiAPI's "empty" answers.
pub fn empty() -> Response {
    Response::text("").with_status_code(200)
}

pub fn plain(text: impl Into<String>) -> Response {
    Response::text(text.into())
}
