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
        self.space.get_or_init(|| crate::services::spaces::for_host(self.app, host_without_port(self.req)))
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
        match serde_json::from_slice::<serde_json::Value>(&self.body()) {
            Ok(value) => Input::from_json(value),
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

fn host_without_port(req: &Request) -> &str {
    let host = req.header("Host").unwrap_or("");
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// `a=1&b=x%20y` → pairs, `+` as space.
pub fn url_decode_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

// --- response helpers ---

pub fn json(value: &serde_json::Value) -> Response {
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
