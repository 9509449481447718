//! SMS through the OVH API (operations.md section 3) and the SMS texts of
//! seed 002 (web.md section 11).
//!
//! One [`send_sms`] call makes, with a bounded timeout each:
//! 1. `GET {base}/auth/time` (unsigned) to compute the clock delta;
//! 2. signed `GET {base}/sms`, the first service name is used;
//! 3. signed `POST {base}/sms/{service}/jobs` with the job JSON;
//! 4. signed `GET {base}/sms/{service}/jobs` (result ignored, as the reference).
//!
//! Signature: `"$1$" + hex(sha1(secret+consumer+METHOD+url+body+timestamp))`,
//! fields joined with `+`, `url` being the full URL sent and `body` the
//! exact bytes sent (empty for GET).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use sha1::{Digest, Sha1};

use super::{truncate, NotifyError};

/// What the caller fills from the `OVH_APP_*` keys.
#[derive(Debug, Clone)]
pub struct OvhSettings {
    /// `OVH_APP_KEY`; empty = SMS disabled.
    pub app_key: String,
    pub app_secret: String,
    pub consumer_key: String,
    /// `OVH_APP_SENDER`.
    pub sender: String,
    /// `OVH_APP_ENDPOINT`: a name (`ovh-eu`, `ovh-ca`, ...) or a base URL
    /// starting with `http://` or `https://` (e.g. `http://127.0.0.1:9000/1.0`).
    pub endpoint: String,
    /// Limit of each HTTP exchange (connect + request + response).
    pub timeout: Duration,
}

impl Default for OvhSettings {
    fn default() -> Self {
        OvhSettings {
            app_key: String::new(),
            app_secret: String::new(),
            consumer_key: String::new(),
            sender: String::new(),
            endpoint: "ovh-eu".into(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl OvhSettings {
    /// Key, secret and consumer key are all set.
    pub fn is_configured(&self) -> bool {
        !self.app_key.is_empty() && !self.app_secret.is_empty() && !self.consumer_key.is_empty()
    }
}

/// The endpoint names of the OVH PHP client and their base URLs.
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("ovh-eu", "https://eu.api.ovh.com/1.0"),
    ("ovh-ca", "https://ca.api.ovh.com/1.0"),
    ("ovh-us", "https://api.us.ovhcloud.com/1.0"),
    ("kimsufi-eu", "https://eu.api.kimsufi.com/1.0"),
    ("kimsufi-ca", "https://ca.api.kimsufi.com/1.0"),
    ("soyoustart-eu", "https://eu.api.soyoustart.com/1.0"),
    ("soyoustart-ca", "https://ca.api.soyoustart.com/1.0"),
    ("runabove-ca", "https://api.runabove.com/1.0"),
];

/// Base URL (no trailing slash) for an endpoint name or URL.
pub fn base_url(endpoint: &str) -> Result<String, NotifyError> {
    let e = endpoint.trim();
    if e.starts_with("http://") || e.starts_with("https://") {
        return Ok(e.trim_end_matches('/').to_string());
    }
    ENDPOINTS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(e))
        .map(|(_, url)| url.to_string())
        .ok_or_else(|| NotifyError::Invalid(format!("unknown OVH endpoint {e:?}")))
}

/// `X-Ovh-Signature` value for one request.
pub fn signature(secret: &str, consumer_key: &str, method: &str, url: &str, body: &str, timestamp: i64) -> String {
    let mut h = Sha1::new();
    h.update(format!("{secret}+{consumer_key}+{method}+{url}+{body}+{timestamp}").as_bytes());
    let digest = h.finalize();
    let mut hex = String::with_capacity(43);
    hex.push_str("$1$");
    for b in digest.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// The job body of operations.md section 3.1 step 4, serialised once (the
/// signed bytes are the sent bytes).
pub fn job_body(sender: &str, phone: &str, text: &str) -> String {
    json!({
        "charset": "UTF-8",
        "class": "phoneDisplay",
        "coding": "7bit",
        "message": text,
        "noStopClause": true,
        "priority": "high",
        "receivers": [phone],
        "sender": sender,
        "senderForResponse": false,
        "validityPeriod": 2880,
    })
    .to_string()
}

/// A phone number as OVH wants it: `+` then 6 to 15 digits.
fn valid_phone(phone: &str) -> bool {
    let digits = match phone.strip_prefix('+') {
        Some(d) => d,
        None => return false,
    };
    (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Largest response body read from OVH.
const MAX_RESPONSE: u64 = 1024 * 1024;

struct Client {
    agent: ureq::Agent,
    base: String,
    settings: OvhSettings,
    delta: i64,
}

struct Reply {
    status: u16,
    body: String,
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn transport_error(url: &str, e: ureq::Error) -> NotifyError {
    NotifyError::Unavailable(format!("OVH API {url}: {}", truncate(&e.to_string(), 200)))
}

/// The `message` of an OVH error body, or the body itself.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| truncate(body.trim(), 200))
}

impl Client {
    fn new(settings: &OvhSettings) -> Result<Client, NotifyError> {
        let base = base_url(&settings.endpoint)?;
        let timeout = if settings.timeout.is_zero() { Duration::from_secs(10) } else { settings.timeout };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .user_agent("flexiapi")
            .build()
            .into();
        Ok(Client { agent, base, settings: settings.clone(), delta: 0 })
    }

    fn read(url: &str, response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Reply, NotifyError> {
        let mut response = response.map_err(|e| transport_error(url, e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| transport_error(url, e))?;
        Ok(Reply { status, body })
    }

    fn fetch_time_delta(&mut self) -> Result<(), NotifyError> {
        let url = format!("{}/auth/time", self.base);
        let reply = Self::read(&url, self.agent.get(&url).call())?;
        if reply.status != 200 {
            return Err(NotifyError::Unavailable(format!(
                "OVH API {url}: HTTP {}: {}",
                reply.status,
                error_message(&reply.body)
            )));
        }
        let server: i64 = reply.body.trim().parse().map_err(|_| {
            NotifyError::Unavailable(format!("OVH API {url}: not a time: {}", truncate(&reply.body, 60)))
        })?;
        self.delta = server - now_unix();
        Ok(())
    }

    /// A signed call; `Ok` only for 2xx, 4xx -> `Rejected`, others -> `Unavailable`.
    fn signed(&self, method: &str, path: &str, body: Option<&str>) -> Result<String, NotifyError> {
        let url = format!("{}{}", self.base, path);
        let timestamp = now_unix() + self.delta;
        let payload = body.unwrap_or("");
        let sig = signature(&self.settings.app_secret, &self.settings.consumer_key, method, &url, payload, timestamp);
        let headers = [
            ("Content-Type", "application/json; charset=utf-8".to_string()),
            ("X-Ovh-Application", self.settings.app_key.clone()),
            ("X-Ovh-Consumer", self.settings.consumer_key.clone()),
            ("X-Ovh-Timestamp", timestamp.to_string()),
            ("X-Ovh-Signature", sig),
        ];
        let response = match (method, body) {
            ("GET", _) => {
                let mut req = self.agent.get(&url);
                for (k, v) in &headers {
                    req = req.header(*k, v.as_str());
                }
                req.call()
            }
            (_, body) => {
                let mut req = self.agent.post(&url);
                for (k, v) in &headers {
                    req = req.header(*k, v.as_str());
                }
                req.send(body.unwrap_or("").as_bytes())
            }
        };
        let reply = Self::read(&url, response)?;
        match reply.status {
            200..=299 => Ok(reply.body),
            400..=499 => Err(NotifyError::Rejected(format!(
                "OVH API {method} {path}: HTTP {}: {}",
                reply.status,
                error_message(&reply.body)
            ))),
            s => Err(NotifyError::Unavailable(format!(
                "OVH API {method} {path}: HTTP {s}: {}",
                error_message(&reply.body)
            ))),
        }
    }
}

/// Sends `text` to `phone` (E.164 with `+`). `Disabled` when `app_key` is
/// empty; `Invalid` for a bad phone, empty text or unknown endpoint;
/// `Rejected` when OVH answers 4xx (bad signature, bad credentials, unknown
/// service...); `Unavailable` when OVH cannot be reached, times out, answers
/// 5xx, or has no SMS service ("OVH SMS API not configured/reachable").
pub fn send_sms(settings: &OvhSettings, phone: &str, text: &str) -> Result<(), NotifyError> {
    if settings.app_key.trim().is_empty() {
        return Err(NotifyError::Disabled);
    }
    let phone = phone.trim();
    if !valid_phone(phone) {
        return Err(NotifyError::Invalid(format!("invalid phone number {:?}", truncate(phone, 40))));
    }
    if text.trim().is_empty() {
        return Err(NotifyError::Invalid("empty SMS text".into()));
    }
    let mut client = Client::new(settings)?;
    client.fetch_time_delta()?;

    let services = client.signed("GET", "/sms", None)?;
    let service = serde_json::from_str::<Vec<String>>(&services)
        .ok()
        .and_then(|list| list.into_iter().find(|s| !s.trim().is_empty()))
        .ok_or_else(|| NotifyError::Unavailable("OVH SMS API not configured/reachable (no SMS service)".into()))?;
    let service_path = percent_encoding::utf8_percent_encode(&service, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        // keep the usual characters of service names readable (sms-ab12345-1)
        .replace("%2D", "-")
        .replace("%5F", "_")
        .replace("%2E", ".");

    let body = job_body(&settings.sender, phone, text);
    client.signed("POST", &format!("/sms/{service_path}/jobs"), Some(&body))?;
    // The reference lists the jobs afterwards and ignores the answer.
    let _ = client.signed("GET", &format!("/sms/{service_path}/jobs"), None);
    Ok(())
}

/// The SMS templates of seed 002.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsKind {
    /// `Your #APP_NAME# creation code is #CODE#`: account created by phone.
    Creation,
    /// `Your #APP_NAME# recovery code is #CODE#`: recovery by phone.
    Recovery,
    /// `Your #APP_NAME# validation code is #CODE#`: phone change validation.
    Validation,
    /// `... validation code is #CODE#. The code is available for #CODE_MINUTES# minutes`.
    ValidationWithExpiry,
}

impl SmsKind {
    /// The template, with `#APP_NAME#`, `#CODE#`, `#CODE_MINUTES#` placeholders.
    pub fn template(self) -> &'static str {
        match self {
            SmsKind::Creation => "Your #APP_NAME# creation code is #CODE#",
            SmsKind::Recovery => "Your #APP_NAME# recovery code is #CODE#",
            SmsKind::Validation => "Your #APP_NAME# validation code is #CODE#",
            SmsKind::ValidationWithExpiry => {
                "Your #APP_NAME# validation code is #CODE#. The code is available for #CODE_MINUTES# minutes"
            }
        }
    }
}

/// Fills the template of `kind` (`minutes` is used only by
/// [`SmsKind::ValidationWithExpiry`]).
pub fn sms_text(kind: SmsKind, app_name: &str, code: &str, minutes: u32) -> String {
    // one pass, so that an app name holding "#CODE#" is not expanded again
    let template = kind.template();
    let mut out = String::with_capacity(template.len() + app_name.len() + code.len());
    let mut rest = template;
    while let Some(start) = rest.find('#') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(tail) = after.strip_prefix("#APP_NAME#") {
            out.push_str(app_name);
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("#CODE_MINUTES#") {
            out.push_str(&minutes.to_string());
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("#CODE#") {
            out.push_str(code);
            rest = tail;
        } else {
            out.push('#');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[path = "../../tests/support/ovh_server.rs"]
mod ovh_server;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const AK: &str = "appkey123";
    const AS: &str = "appsecret456";
    const CK: &str = "consumer789";

    fn settings(server: &ovh_server::OvhServer) -> OvhSettings {
        OvhSettings {
            app_key: AK.into(),
            app_secret: AS.into(),
            consumer_key: CK.into(),
            sender: "Acme".into(),
            endpoint: server.base_url(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn texts() {
        assert_eq!(sms_text(SmsKind::Creation, "Acme", "1234", 0), "Your Acme creation code is 1234");
        assert_eq!(sms_text(SmsKind::Recovery, "Acme", "1234", 0), "Your Acme recovery code is 1234");
        assert_eq!(sms_text(SmsKind::Validation, "Acme", "1234", 0), "Your Acme validation code is 1234");
        assert_eq!(
            sms_text(SmsKind::ValidationWithExpiry, "Acme", "1234", 15),
            "Your Acme validation code is 1234. The code is available for 15 minutes"
        );
        assert_eq!(sms_text(SmsKind::Creation, "#CODE# #1", "42", 0), "Your #CODE# #1 creation code is 42");
    }

    #[test]
    fn endpoints_and_signature() {
        assert_eq!(base_url("ovh-eu").unwrap(), "https://eu.api.ovh.com/1.0");
        assert_eq!(base_url("runabove-ca").unwrap(), "https://api.runabove.com/1.0");
        assert_eq!(base_url("http://127.0.0.1:9000/1.0/").unwrap(), "http://127.0.0.1:9000/1.0");
        assert!(matches!(base_url("ovh-mars"), Err(NotifyError::Invalid(_))));
        // sha1("a+b+GET+http://x/1.0/sms++1") computed independently (sha1sum)
        let sig = signature("a", "b", "GET", "http://x/1.0/sms", "", 1);
        assert!(sig.starts_with("$1$"));
        assert_eq!(sig.len(), 43);
        assert_eq!(sig, format!("$1${}", ovh_server::sha1_hex(b"a+b+GET+http://x/1.0/sms++1")));
        let body: serde_json::Value = serde_json::from_str(&job_body("S", "+33612345678", "hi / é")).unwrap();
        assert_eq!(body["receivers"][0], "+33612345678");
        assert_eq!(body["validityPeriod"], 2880);
        assert_eq!(body["noStopClause"], true);
        assert_eq!(body["senderForResponse"], false);
        assert_eq!(body["message"], "hi / é");
    }

    #[test]
    fn rejects_bad_input_and_disabled() {
        let s = OvhSettings::default();
        assert_eq!(send_sms(&s, "+33612345678", "x"), Err(NotifyError::Disabled));
        let s = OvhSettings { app_key: "k".into(), ..OvhSettings::default() };
        assert!(matches!(send_sms(&s, "0612345678", "x"), Err(NotifyError::Invalid(_))));
        assert!(matches!(send_sms(&s, "+33 6 12", "x"), Err(NotifyError::Invalid(_))));
        assert!(matches!(send_sms(&s, "+33612345678", " "), Err(NotifyError::Invalid(_))));
        let s = OvhSettings { app_key: "k".into(), endpoint: "nowhere".into(), ..OvhSettings::default() };
        assert!(matches!(send_sms(&s, "+33612345678", "x"), Err(NotifyError::Invalid(_))));
    }

    #[test]
    fn sends_through_the_stand_in() {
        let server = ovh_server::OvhServer::start(AK, AS, CK);
        // a server clock far from ours: the delta must be applied
        server.set_time_offset(-3600);
        let text = sms_text(SmsKind::Creation, "Acme", "4321", 0);
        send_sms(&settings(&server), "+33612345678", &text).unwrap();
        let jobs = server.wait_for(1, Duration::from_secs(2));
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].receivers, vec!["+33612345678".to_string()]);
        assert_eq!(jobs[0].message, "Your Acme creation code is 4321");
        assert_eq!(jobs[0].sender, "Acme");
        assert_eq!(jobs[0].service, "sms-ab12345-1");
        let paths: Vec<String> = server.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        assert_eq!(
            paths,
            vec![
                "GET /1.0/auth/time",
                "GET /1.0/sms",
                "POST /1.0/sms/sms-ab12345-1/jobs",
                "GET /1.0/sms/sms-ab12345-1/jobs"
            ]
        );
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let server = ovh_server::OvhServer::start(AK, AS, CK);
        let mut s = settings(&server);
        s.app_secret = "not-the-secret".into();
        match send_sms(&s, "+33612345678", "x") {
            Err(NotifyError::Rejected(m)) => assert!(m.contains("Invalid signature"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(server.jobs().is_empty());
    }

    #[test]
    fn no_service_and_faults() {
        let server = ovh_server::OvhServer::start(AK, AS, CK);
        server.set_services(vec![]);
        assert!(matches!(send_sms(&settings(&server), "+33612345678", "x"), Err(NotifyError::Unavailable(_))));
        server.set_services(vec!["sms-zz1-1".into()]);
        server.set_mode(ovh_server::OvhMode::Fail500);
        assert!(matches!(send_sms(&settings(&server), "+33612345678", "x"), Err(NotifyError::Unavailable(_))));
        server.set_mode(ovh_server::OvhMode::Slow(Duration::from_secs(3)));
        let mut s = settings(&server);
        s.timeout = Duration::from_millis(300);
        let started = Instant::now();
        assert!(matches!(send_sms(&s, "+33612345678", "x"), Err(NotifyError::Unavailable(_))));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(server.jobs().is_empty());
        // nobody listening
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        s.endpoint = format!("http://127.0.0.1:{port}/1.0");
        assert!(matches!(send_sms(&s, "+33612345678", "x"), Err(NotifyError::Unavailable(_))));
    }
}
