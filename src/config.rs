//! Configuration: FlexiAPI's `.env` key names, read from built-in defaults,
//! then a dotenv file, then the process environment (the later wins).
//!
//! Every value is validated once, at start-up: a bad value stops the program
//! with one line naming the key, so the server never runs half-configured.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/flexiapi/flexiapi.env";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailDriver {
    Disabled,
    Smtp,
    Sendmail,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database: PathBuf,
    /// Public base URL without a trailing slash.
    pub app_url: String,
    pub app_name: String,
    /// Secret used to derive the DIGEST opaque and other instance constants.
    pub app_key: String,
    pub sip_domain: String,
    pub admins_manage_multi_domains: bool,
    /// 0 means API keys never expire.
    pub api_key_expiration_minutes: i64,
    pub account_creation_token_retry_minutes: i64,
    pub dangerous_endpoints: bool,
    pub linphone_daemon_unix_path: Option<PathBuf>,
    pub flexisip_pusher_path: Option<PathBuf>,
    pub flexisip_pusher_firebase_key: Option<String>,
    pub web_panel: bool,
    pub public_registration: bool,
    pub phone_authentication: bool,
    pub devices_management: bool,
    pub account_email_unique: bool,
    pub account_username_regex: String,
    pub account_blacklisted_usernames: Vec<String>,
    pub account_realm: Option<String>,
    pub account_proxy_registrar_address: String,
    pub account_transport_protocol_text: String,
    pub account_consume_external_account_on_create: bool,
    pub account_provisioning_rc_file: Option<PathBuf>,
    pub account_provisioning_overwrite_all: bool,
    /// `ACCOUNT_PROVISIONING_USE_X_LINPHONE_PROVISIONING_HEADER` (FlexiAPI
    /// 1.6): the XML is only served to requests carrying
    /// `X-Linphone-Provisioning`. Off by default, so a link opened in a
    /// browser still works (1.3 behaviour).
    pub account_provisioning_require_linphone_header: bool,
    pub account_provisioning_hook: Option<PathBuf>,
    pub account_service_hook: Option<PathBuf>,
    pub hook_timeout_ms: u64,
    pub clear_unconfirmed_days: Option<i64>,
    pub clear_tombstones_days: Option<i64>,
    pub mail: MailConfig,
    pub ovh: OvhConfig,
    pub redis: RedisConfig,
    pub captcha: CaptchaConfig,
    pub instance_copyright: String,
    pub instance_intro_registration: String,
    pub instance_confirmed_registration_text: String,
    pub terms_of_use_url: String,
    pub privacy_policy_url: String,
    pub newsletter_registration_address: String,
    /// Web session lifetime, minutes.
    pub session_lifetime_minutes: i64,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// Worker threads answering requests.
    pub http_workers: usize,
    /// Socket read/write timeout, seconds.
    pub http_timeout_secs: u64,
    /// Open connections at once (one thread each); new ones get 503 beyond.
    pub http_max_connections: usize,
    /// Requests per minute and client IP on `/api` (0 = unlimited).
    pub api_rate_limit_per_minute: i64,
    /// `APP_METRICS_REQUIRE_KEY`: `/metrics` needs an admin API key even
    /// from a loopback client.
    pub metrics_require_key: bool,
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    pub driver: MailDriver,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    /// Laravel's values: `tls` = STARTTLS, `ssl` = implicit TLS, empty = plain.
    pub encryption: String,
    pub from_address: String,
    pub from_name: String,
    pub signature: String,
    pub templates_dir: Option<PathBuf>,
    pub sendmail_path: Option<PathBuf>,
    /// `MAIL_VERIFY_PEER` (true): verify the server certificate.
    pub verify_peer: bool,
    /// `MAIL_VERIFY_PEER_NAME` (true): the certificate must name `MAIL_HOST`.
    pub verify_peer_name: bool,
    /// `MAIL_ALLOW_SELF_SIGNED` (false): accept a certificate no known CA signed.
    pub allow_self_signed: bool,
}

#[derive(Debug, Clone)]
pub struct OvhConfig {
    pub app_key: String,
    pub app_secret: String,
    pub consumer_key: String,
    pub sender: String,
    pub endpoint: String,
}

impl OvhConfig {
    pub fn is_configured(&self) -> bool {
        !self.app_key.is_empty() && !self.app_secret.is_empty() && !self.consumer_key.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub host: String,
    pub port: u16,
    pub password: String,
    pub db: i64,
}

/// reCAPTCHA v2 (web.md 4.6): on only when both keys are real values.
#[derive(Debug, Clone)]
pub struct CaptchaConfig {
    /// `NOCAPTCHA_SITEKEY`, shown in the widget.
    pub site_key: String,
    /// `NOCAPTCHA_SECRET`, posted to the verification endpoint.
    pub secret: String,
    /// `NOCAPTCHA_VERIFY_URL`: Google's siteverify, or a stand-in (tests).
    pub verify_url: String,
}

/// Google's verification endpoint.
pub const NOCAPTCHA_VERIFY_URL: &str = "https://www.google.com/recaptcha/api/siteverify";

impl CaptchaConfig {
    /// Both keys are set to real values (FlexiAPI's `.env.example`
    /// placeholders `site-key` and `secret-key` count as unset).
    pub fn enabled(&self) -> bool {
        !self.site_key.is_empty() && !self.secret.is_empty()
    }
}

/// A captcha key's value, empty when unset or a placeholder.
fn captcha_key(v: &Values, key: &str, placeholder: &str) -> String {
    let value = v.string(key, "").trim().to_string();
    if value.eq_ignore_ascii_case(placeholder) {
        String::new()
    } else {
        value
    }
}

/// A configuration problem, always naming the key at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration error: {}: {}", self.key, self.reason)
    }
}

impl std::error::Error for ConfigError {}

fn bad(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError { key: key.to_string(), reason: reason.into() }
}

/// Raw key/value pairs, before validation.
#[derive(Debug, Default, Clone)]
pub struct Values(HashMap<String, String>);

impl Values {
    pub fn set(&mut self, key: &str, value: &str) {
        self.0.insert(key.to_string(), value.to_string());
    }

    /// The value, or `None` when the key is absent or set to `null`.
    fn get(&self, key: &str) -> Option<&str> {
        match self.0.get(key).map(String::as_str) {
            Some(v) if v.eq_ignore_ascii_case("null") || v.eq_ignore_ascii_case("(null)") => None,
            Some(v) if v.eq_ignore_ascii_case("empty") || v.eq_ignore_ascii_case("(empty)") => Some(""),
            other => other,
        }
    }

    fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }

    /// A non-empty value, `None` when absent or empty.
    fn optional(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.is_empty()).map(str::to_string)
    }

    fn boolean(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "" => Ok(default),
                "true" | "(true)" | "1" | "yes" | "on" => Ok(true),
                "false" | "(false)" | "0" | "no" | "off" => Ok(false),
                _ => Err(bad(key, format!("expected true or false, got {v:?}"))),
            },
        }
    }

    fn integer(&self, key: &str, default: i64, min: i64, max: i64) -> Result<i64, ConfigError> {
        match self.get(key).map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                Ok(n) => Err(bad(key, format!("{n} is out of range {min}..{max}"))),
                Err(_) => Err(bad(key, format!("expected a whole number, got {v:?}"))),
            },
        }
    }

    fn optional_integer(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, ConfigError> {
        match self.get(key).map(str::trim) {
            None | Some("") => Ok(None),
            Some(_) => self.integer(key, 0, min, max).map(Some),
        }
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.optional(key).map(PathBuf::from)
    }
}

/// Parses dotenv text as FlexiAPI's files use it (operations.md §11):
/// `KEY=VALUE`, `#` comments, optional `export `, quotes, `${VAR}` expansion.
pub fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let Some((key, rest)) = line.split_once('=') else {
            return Err(format!("line {line_no}: expected KEY=VALUE"));
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return Err(format!("line {line_no}: invalid key {key:?}"));
        }
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = body.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some(other) => value.push(other),
                        None => break,
                    },
                    other => value.push(other),
                }
            }
            if !closed {
                return Err(format!("line {line_no}: unterminated double quote"));
            }
            expand(&value, &out)
        } else if let Some(body) = rest.strip_prefix('\'') {
            match body.find('\'') {
                Some(end) => body[..end].to_string(),
                None => return Err(format!("line {line_no}: unterminated single quote")),
            }
        } else {
            let value = match rest.find(" #").or_else(|| rest.find("\t#")) {
                Some(pos) => &rest[..pos],
                None => rest,
            };
            expand(value.trim(), &out)
        };
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// `${VAR}` expansion from earlier lines of the file, then the environment.
fn expand(value: &str, earlier: &[(String, String)]) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find('}') {
            Some(end) => {
                let name = &rest[start + 2..start + 2 + end];
                let found = earlier
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .or_else(|| std::env::var(name).ok())
                    .unwrap_or_default();
                out.push_str(&found);
                rest = &rest[start + 2 + end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Collects the raw values: the dotenv file (explicit, or the default one
/// when it exists), then the process environment on top.
pub fn gather(config_file: Option<&Path>) -> Result<Values, ConfigError> {
    let mut values = Values::default();
    let file = match config_file {
        Some(path) => Some(path.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
    };
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| bad("--config", format!("cannot read {}: {e}", path.display())))?;
        let pairs = parse_dotenv(&text).map_err(|e| bad("--config", format!("{}: {e}", path.display())))?;
        for (k, v) in pairs {
            values.set(&k, &v);
        }
    }
    for (k, v) in std::env::vars() {
        values.set(&k, &v);
    }
    Ok(values)
}

impl Config {
    /// Validates raw values into a configuration.
    pub fn from_values(v: &Values) -> Result<Config, ConfigError> {
        let listen_text = v.string("APP_LISTEN", "127.0.0.1:8080");
        let listen: SocketAddr = listen_text
            .trim()
            .parse()
            .map_err(|_| bad("APP_LISTEN", format!("expected ADDRESS:PORT, got {listen_text:?}")))?;
        let app_url = match v.optional("APP_URL") {
            Some(url) => {
                let url = url.trim_end_matches('/').to_string();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(bad("APP_URL", "must start with http:// or https://"));
                }
                url
            }
            None => format!("http://{listen}"),
        };
        let sip_domain = v.string("APP_SIP_DOMAIN", "sip.example.org").trim().to_string();
        if sip_domain.is_empty() || sip_domain.contains(|c: char| c.is_whitespace() || c == '@') {
            return Err(bad("APP_SIP_DOMAIN", "must be a domain name"));
        }
        let username_regex = v.string("ACCOUNT_USERNAME_REGEX", "^[a-z0-9+_.-]*$");
        if let Err(e) = regex::Regex::new(&username_regex) {
            return Err(bad("ACCOUNT_USERNAME_REGEX", format!("invalid regular expression: {e}")));
        }
        let blacklist: Vec<String> = v
            .string("ACCOUNT_BLACKLISTED_USERNAMES", "")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        for entry in &blacklist {
            if regex::Regex::new(entry).is_err() {
                return Err(bad("ACCOUNT_BLACKLISTED_USERNAMES", format!("{entry:?} is not a valid pattern")));
            }
        }
        let driver = match v.string("MAIL_DRIVER", "").trim().to_ascii_lowercase().as_str() {
            "" | "log" | "array" => MailDriver::Disabled,
            "smtp" => MailDriver::Smtp,
            "sendmail" => MailDriver::Sendmail,
            other => return Err(bad("MAIL_DRIVER", format!("expected smtp, sendmail or empty, got {other:?}"))),
        };
        let encryption = v.string("MAIL_ENCRYPTION", "").trim().to_ascii_lowercase();
        if !["", "tls", "ssl", "starttls", "null"].contains(&encryption.as_str()) {
            return Err(bad("MAIL_ENCRYPTION", format!("expected tls, ssl or empty, got {encryption:?}")));
        }
        let mail_port = v.integer("MAIL_PORT", 25, 1, 65535)? as u16;
        let rc_file = v.path("ACCOUNT_PROVISIONING_RC_FILE");
        if let Some(path) = &rc_file {
            if let Err(e) = std::fs::metadata(path).and_then(|m| {
                if m.is_file() {
                    Ok(())
                } else {
                    Err(std::io::Error::other("not a regular file"))
                }
            }) {
                return Err(bad("ACCOUNT_PROVISIONING_RC_FILE", format!("cannot read {}: {e}", path.display())));
            }
        }
        for key in ["ACCOUNT_PROVISIONING_HOOK", "ACCOUNT_SERVICE_HOOK", "APP_FLEXISIP_PUSHER_PATH"] {
            if let Some(path) = v.path(key) {
                if !path.exists() {
                    return Err(bad(key, format!("{} does not exist", path.display())));
                }
            }
        }
        let ovh_endpoint = v.string("OVH_APP_ENDPOINT", "ovh-eu");
        let known_endpoints =
            ["ovh-eu", "ovh-ca", "ovh-us", "kimsufi-eu", "kimsufi-ca", "soyoustart-eu", "soyoustart-ca", "runabove-ca"];
        if !(known_endpoints.contains(&ovh_endpoint.as_str())
            || ovh_endpoint.starts_with("http://")
            || ovh_endpoint.starts_with("https://"))
        {
            return Err(bad("OVH_APP_ENDPOINT", format!("unknown endpoint {ovh_endpoint:?}")));
        }
        let captcha = CaptchaConfig {
            site_key: captcha_key(v, "NOCAPTCHA_SITEKEY", "site-key"),
            secret: captcha_key(v, "NOCAPTCHA_SECRET", "secret-key"),
            verify_url: v.optional("NOCAPTCHA_VERIFY_URL").unwrap_or_else(|| NOCAPTCHA_VERIFY_URL.to_string()),
        };
        if !(captcha.verify_url.starts_with("http://") || captcha.verify_url.starts_with("https://")) {
            return Err(bad("NOCAPTCHA_VERIFY_URL", "must start with http:// or https://"));
        }
        // One key without the other: the widget could not render, or its
        // answers could not be checked. Say so rather than run half-on.
        if captcha.secret.is_empty() != captcha.site_key.is_empty() {
            let missing = if captcha.secret.is_empty() { "NOCAPTCHA_SECRET" } else { "NOCAPTCHA_SITEKEY" };
            return Err(bad(missing, "the captcha needs both NOCAPTCHA_SITEKEY and NOCAPTCHA_SECRET (or neither)"));
        }
        let app_name = v.string("APP_NAME", "FlexiAPI");
        let app_key = v.optional("APP_KEY").unwrap_or_else(|| format!("flexiapi:{sip_domain}:{}", app_name));
        let workers = v.integer("APP_HTTP_WORKERS", 16, 1, 1024)? as usize;
        Ok(Config {
            listen,
            database: PathBuf::from(v.string("DB_DATABASE", "flexiapi.sqlite")),
            app_url,
            app_name,
            app_key,
            admins_manage_multi_domains: v.boolean("APP_ADMINS_MANAGE_MULTI_DOMAINS", false)?,
            api_key_expiration_minutes: v.integer("APP_API_KEY_EXPIRATION_MINUTES", 60, 0, 10_000_000)?,
            account_creation_token_retry_minutes: v.integer(
                "APP_API_ACCOUNT_CREATION_TOKEN_RETRY_MINUTES",
                60,
                0,
                10_000_000,
            )?,
            dangerous_endpoints: v.boolean("APP_DANGEROUS_ENDPOINTS", false)?,
            linphone_daemon_unix_path: v.path("APP_LINPHONE_DAEMON_UNIX_PATH"),
            flexisip_pusher_path: v.path("APP_FLEXISIP_PUSHER_PATH"),
            flexisip_pusher_firebase_key: v.optional("APP_FLEXISIP_PUSHER_FIREBASE_KEY"),
            web_panel: v.boolean("WEB_PANEL", true)?,
            public_registration: v.boolean("PUBLIC_REGISTRATION", true)?,
            phone_authentication: v.boolean("PHONE_AUTHENTICATION", false)?,
            devices_management: v.boolean("DEVICES_MANAGEMENT", false)?,
            account_email_unique: v.boolean("ACCOUNT_EMAIL_UNIQUE", false)?,
            account_username_regex: username_regex,
            account_blacklisted_usernames: blacklist,
            account_realm: v.optional("ACCOUNT_REALM"),
            account_proxy_registrar_address: v
                .optional("ACCOUNT_PROXY_REGISTRAR_ADDRESS")
                .unwrap_or_else(|| sip_domain.clone()),
            account_transport_protocol_text: v
                .optional("ACCOUNT_TRANSPORT_PROTOCOL_TEXT")
                .unwrap_or_else(|| "TLS (recommended), TCP or UDP".to_string()),
            account_consume_external_account_on_create: v
                .boolean("ACCOUNT_CONSUME_EXTERNAL_ACCOUNT_ON_CREATE", false)?,
            account_provisioning_rc_file: rc_file,
            account_provisioning_overwrite_all: v.boolean("ACCOUNT_PROVISIONING_OVERWRITE_ALL", false)?,
            account_provisioning_require_linphone_header: v
                .boolean("ACCOUNT_PROVISIONING_USE_X_LINPHONE_PROVISIONING_HEADER", false)?,
            account_provisioning_hook: v.path("ACCOUNT_PROVISIONING_HOOK"),
            account_service_hook: v.path("ACCOUNT_SERVICE_HOOK"),
            hook_timeout_ms: v.integer("HOOK_TIMEOUT_MS", 2000, 10, 60_000)? as u64,
            clear_unconfirmed_days: v.optional_integer("ACCOUNT_CLEAR_UNCONFIRMED_DAYS", 1, 100_000)?,
            clear_tombstones_days: v.optional_integer("ACCOUNT_CLEAR_TOMBSTONES_DAYS", 0, 100_000)?,
            mail: MailConfig {
                driver,
                host: v.string("MAIL_HOST", "127.0.0.1"),
                port: mail_port,
                username: v.string("MAIL_USERNAME", ""),
                password: v.string("MAIL_PASSWORD", ""),
                encryption: if encryption == "null" { String::new() } else { encryption },
                from_address: v.string("MAIL_FROM_ADDRESS", &format!("no-reply@{sip_domain}")),
                from_name: v.string("MAIL_FROM_NAME", &v.string("APP_NAME", "FlexiAPI")),
                signature: v.string("MAIL_SIGNATURE", "The Linphone Team"),
                templates_dir: v.path("MAIL_TEMPLATES_DIR"),
                sendmail_path: v.path("MAIL_SENDMAIL_PATH"),
                verify_peer: v.boolean("MAIL_VERIFY_PEER", true)?,
                verify_peer_name: v.boolean("MAIL_VERIFY_PEER_NAME", true)?,
                allow_self_signed: v.boolean("MAIL_ALLOW_SELF_SIGNED", false)?,
            },
            ovh: OvhConfig {
                app_key: v.string("OVH_APP_KEY", ""),
                app_secret: v.string("OVH_APP_SECRET", ""),
                consumer_key: v.string("OVH_APP_CONSUMER_KEY", ""),
                sender: v.string("OVH_APP_SENDER", ""),
                endpoint: ovh_endpoint,
            },
            redis: RedisConfig {
                host: v.string("REDIS_HOST", "127.0.0.1"),
                port: v.integer("REDIS_PORT", 6379, 1, 65535)? as u16,
                password: v.string("REDIS_PASSWORD", ""),
                db: v.integer("REDIS_DB", 0, 0, 1_000_000)?,
            },
            captcha,
            instance_copyright: v.string("INSTANCE_COPYRIGHT", ""),
            instance_intro_registration: v.string("INSTANCE_INTRO_REGISTRATION", ""),
            instance_confirmed_registration_text: v.string("INSTANCE_CONFIRMED_REGISTRATION_TEXT", ""),
            terms_of_use_url: v.string("TERMS_OF_USE_URL", ""),
            privacy_policy_url: v.string("PRIVACY_POLICY_URL", ""),
            newsletter_registration_address: v.string("NEWSLETTER_REGISTRATION_ADDRESS", ""),
            session_lifetime_minutes: v.integer("SESSION_LIFETIME", 120, 1, 10_000_000)?,
            max_body_bytes: v.integer("APP_MAX_BODY_BYTES", 1024 * 1024, 1024, 1024 * 1024 * 1024)? as usize,
            http_workers: workers,
            http_timeout_secs: v.integer("APP_HTTP_TIMEOUT_SECONDS", 15, 1, 3600)? as u64,
            http_max_connections: v.integer("APP_HTTP_MAX_CONNECTIONS", 512, 1, 100_000)? as usize,
            api_rate_limit_per_minute: v.integer("APP_API_RATE_LIMIT_PER_MINUTE", 0, 0, 1_000_000_000)?,
            metrics_require_key: v.boolean("APP_METRICS_REQUIRE_KEY", false)?,
            sip_domain,
        })
    }

    /// Loads and validates: file, environment, then command-line overrides.
    pub fn load(config_file: Option<&Path>, overrides: &[(&str, String)]) -> Result<Config, ConfigError> {
        let mut values = gather(config_file)?;
        for (k, v) in overrides {
            values.set(k, v);
        }
        Config::from_values(&values)
    }

    /// The realm stored passwords are hashed with for an account of `domain`.
    pub fn realm_for(&self, domain: &str) -> String {
        self.account_realm.clone().unwrap_or_else(|| domain.to_string())
    }

    pub fn is_https(&self) -> bool {
        self.app_url.starts_with("https://")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.app_url, path)
    }

    /// The host of `APP_URL`, lowercase, without port or credentials.
    pub fn app_host(&self) -> Option<String> {
        url_host(&self.app_url)
    }
}

/// The host of an http(s) URL, lowercase, without port or credentials.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map(|(_, r)| r)?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let host = crate::domain::rules::host_without_port(authority);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_urls() {
        assert_eq!(url_host("http://127.0.0.1:8080").as_deref(), Some("127.0.0.1"));
        assert_eq!(url_host("https://Flexi.Example.org/api?x").as_deref(), Some("flexi.example.org"));
        assert_eq!(url_host("https://u:p@host.org:443/").as_deref(), Some("host.org"));
        assert_eq!(url_host("http://[::1]:8080/").as_deref(), Some("[::1]"));
        assert_eq!(url_host("not a url"), None);
    }

    fn values(pairs: &[(&str, &str)]) -> Values {
        let mut v = Values::default();
        for (k, val) in pairs {
            v.set(k, val);
        }
        v
    }

    #[test]
    fn defaults_work_on_a_laptop() {
        let c = Config::from_values(&Values::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.app_url, "http://127.0.0.1:8080");
        assert_eq!(c.sip_domain, "sip.example.org");
        assert_eq!(c.database, PathBuf::from("flexiapi.sqlite"));
        assert_eq!(c.mail.driver, MailDriver::Disabled);
        assert!(c.public_registration && !c.phone_authentication);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value) in [
            ("APP_LISTEN", "nope"),
            ("MAIL_DRIVER", "pigeon"),
            ("MAIL_PORT", "abc"),
            ("WEB_PANEL", "maybe"),
            ("ACCOUNT_USERNAME_REGEX", "(["),
            ("ACCOUNT_PROVISIONING_RC_FILE", "/nonexistent/rc"),
            ("APP_URL", "ftp://x"),
            ("NOCAPTCHA_VERIFY_URL", "ftp://x"),
        ] {
            let err = Config::from_values(&values(&[(key, value)])).unwrap_err();
            assert_eq!(err.key, key, "{err}");
        }
    }

    #[test]
    fn dotenv_syntax() {
        let parsed =
            parse_dotenv("# comment\nAPP_NAME=\"My App # 1\"\nexport A=1 # trailing\nB='${A} raw'\nC=${A}x\nD=\n")
                .unwrap();
        let get = |k: &str| parsed.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("APP_NAME"), Some("My App # 1"));
        assert_eq!(get("A"), Some("1"));
        assert_eq!(get("B"), Some("${A} raw"));
        assert_eq!(get("C"), Some("1x"));
        assert_eq!(get("D"), Some(""));
        assert!(parse_dotenv("NOVALUE\n").unwrap_err().contains("line 1"));
        assert!(parse_dotenv("A=\"open\n").is_err());
    }

    #[test]
    fn captcha_is_on_with_two_real_keys_only() {
        let c = Config::from_values(&Values::default()).unwrap();
        assert!(!c.captcha.enabled());
        assert_eq!(c.captcha.verify_url, NOCAPTCHA_VERIFY_URL);
        let placeholders = values(&[("NOCAPTCHA_SITEKEY", "site-key"), ("NOCAPTCHA_SECRET", "secret-key")]);
        assert!(!Config::from_values(&placeholders).unwrap().captcha.enabled());
        let real = values(&[("NOCAPTCHA_SITEKEY", "6Lc-site"), ("NOCAPTCHA_SECRET", "6Lc-secret")]);
        assert!(Config::from_values(&real).unwrap().captcha.enabled());
        // One key alone: start-up stops, naming the missing one.
        let err = Config::from_values(&values(&[("NOCAPTCHA_SECRET", "6Lc-secret")])).unwrap_err();
        assert_eq!(err.key, "NOCAPTCHA_SITEKEY");
        let err =
            Config::from_values(&values(&[("NOCAPTCHA_SITEKEY", "6Lc-site"), ("NOCAPTCHA_SECRET", "secret-key")]))
                .unwrap_err();
        assert_eq!(err.key, "NOCAPTCHA_SECRET");
    }

    #[test]
    fn null_means_unset() {
        let c = Config::from_values(&values(&[("ACCOUNT_REALM", "null")])).unwrap();
        assert_eq!(c.account_realm, None);
        let c = Config::from_values(&values(&[("ACCOUNT_REALM", "realm.org")])).unwrap();
        assert_eq!(c.realm_for("x"), "realm.org");
    }
}
