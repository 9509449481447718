//! The bridge between the configuration and `crate::notify`: settings for
//! each peer, the rate limits every sending path goes through, and the
//! mapping of delivery failures to `AppError`.
//!
//! Policy: a mail or SMS that is a side effect (the registration mail) is
//! logged when it fails; a request whose purpose is to send answers 503.

use super::ratelimit::{self, Limit};
use crate::app::App;
use crate::config::{Config, MailDriver as ConfigDriver};
use crate::error::{AppError, AppResult};
use crate::notify::mail::{self, Encryption, MailDriver, MailKind, MailSettings};
use crate::notify::redis::RedisSettings;
use crate::notify::sms::{self, OvhSettings, SmsKind};
use crate::notify::NotifyError;
use std::time::Duration;

/// Minutes an SMS code (PIN) stays valid, as told in the SMS texts.
pub const PIN_MINUTES: i64 = 30;
/// Minutes a code sent by mail (activation key, email change link) stays valid.
pub const MAIL_CODE_MINUTES: i64 = 24 * 60;

/// Timeout of every exchange with a peer, so a dead peer cannot hold a worker.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// Redis answers in microseconds; a longer wait means it is gone.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// What is being sent, for the rate-limit buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sms,
    Mail,
    Push,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Mail => "mail",
            Channel::Push => "push",
        }
    }

    /// Per target (a phone, an address, a device): enough for a user who
    /// mistyped or lost a code, too few to flood anyone.
    pub fn target_limit(self) -> Limit {
        match self {
            Channel::Sms => Limit { max: 3, window_seconds: 3600 },
            Channel::Mail => Limit { max: 5, window_seconds: 3600 },
            Channel::Push => Limit { max: 3, window_seconds: 3600 },
        }
    }

    /// Per client IP: a few users behind one NAT still get through.
    pub fn ip_limit(self) -> Limit {
        match self {
            Channel::Sms => Limit { max: 10, window_seconds: 3600 },
            Channel::Mail => Limit { max: 20, window_seconds: 3600 },
            Channel::Push => Limit { max: 20, window_seconds: 3600 },
        }
    }
}

/// Counts one sending attempt to `target` from `client_ip`; 429 once either
/// the target's or the client's window is full. Call it before sending,
/// outside any database transaction (it writes its own).
pub fn throttle(app: &App, channel: Channel, target: &str, client_ip: &str) -> AppResult<()> {
    ratelimit::hit_all(app, &sending_buckets(channel, target, client_ip))
}

/// `throttle` inside the write transaction that decides the sending (an
/// account creation): only a committed creation counts.
pub fn throttle_in(tx: &rusqlite::Connection, channel: Channel, target: &str, client_ip: &str) -> AppResult<()> {
    ratelimit::hit_all_in(tx, &sending_buckets(channel, target, client_ip))
}

fn sending_buckets(channel: Channel, target: &str, client_ip: &str) -> Vec<(String, Limit)> {
    let target = target.trim().to_lowercase();
    let mut buckets = vec![(format!("{}:target:{target}", channel.name()), channel.target_limit())];
    // A request from this machine itself, not relayed by a local proxy (that
    // would name the client in X-Forwarded-For), is the operator's tooling:
    // it has no client address to count. The target's limit still applies.
    let from_this_machine = client_ip.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !from_this_machine {
        buckets.push((format!("{}:ip:{client_ip}", channel.name()), channel.ip_limit()));
    }
    buckets
}

/// Attempts at guessing a code for one account (activation, recovery):
/// bounds brute force on 4-digit PINs.
pub fn throttle_code_attempts(app: &App, what: &str, account_key: &str) -> AppResult<()> {
    ratelimit::hit(app, &format!("code:{what}:{account_key}"), Limit { max: 10, window_seconds: 900 })
}

pub fn mail_settings(config: &Config) -> MailSettings {
    let m = &config.mail;
    MailSettings {
        driver: match m.driver {
            ConfigDriver::Disabled => MailDriver::None,
            ConfigDriver::Smtp => MailDriver::Smtp,
            ConfigDriver::Sendmail => MailDriver::Sendmail,
        },
        host: m.host.clone(),
        port: m.port,
        username: m.username.clone(),
        password: m.password.clone(),
        // Validated at start-up; a value that parses no more is plain SMTP.
        encryption: Encryption::from_laravel(&m.encryption, m.port).unwrap_or(Encryption::None),
        from_address: m.from_address.clone(),
        from_name: m.from_name.clone(),
        signature: m.signature.clone(),
        app_name: config.app_name.clone(),
        templates_dir: m.templates_dir.clone(),
        timeout: PEER_TIMEOUT,
        sendmail_path: m.sendmail_path.clone(),
        accept_invalid_certs: !m.verify_peer || m.allow_self_signed,
        accept_invalid_hostnames: !m.verify_peer || !m.verify_peer_name,
    }
}

pub fn ovh_settings(config: &Config) -> OvhSettings {
    let o = &config.ovh;
    OvhSettings {
        app_key: o.app_key.clone(),
        app_secret: o.app_secret.clone(),
        consumer_key: o.consumer_key.clone(),
        sender: o.sender.clone(),
        endpoint: o.endpoint.clone(),
        timeout: PEER_TIMEOUT,
    }
}

pub fn redis_settings(config: &Config) -> RedisSettings {
    let r = &config.redis;
    RedisSettings { host: r.host.clone(), port: r.port, password: r.password.clone(), db: r.db, timeout: REDIS_TIMEOUT }
}

/// Sends `kind` to `to`. With no mail driver the mail is only logged (its
/// subject, never its body: it carries codes) and this succeeds, as
/// FlexiAPI's `log` driver does. Delivery failures answer 503.
pub fn send_mail(app: &App, to: &str, kind: MailKind) -> AppResult<()> {
    let settings = mail_settings(&app.config);
    let mut message = mail::render(&settings, &kind, "en");
    message.to = to.to_string();
    match mail::send(&settings, &message) {
        Ok(()) => Ok(()),
        Err(NotifyError::Disabled) => {
            crate::log_line!("mail: MAIL_DRIVER is empty, not sent: {:?} ({})", message.subject, kind.name());
            Ok(())
        }
        Err(e) => {
            crate::log_line!("mail: {} not sent: {e}", kind.name());
            Err(AppError::Unavailable("The email could not be sent, please retry later.".into()))
        }
    }
}

/// `send_mail` for mails that are a side effect: failures are logged only.
pub fn send_mail_logged(app: &App, to: &str, kind: MailKind) {
    let _ = send_mail(app, to, kind);
}

/// Sends the SMS `kind` carrying `code` to `phone`; 503 when OVH is not
/// configured or the message cannot be delivered.
pub fn send_sms(app: &App, phone: &str, kind: SmsKind, code: &str) -> AppResult<()> {
    let text = sms::sms_text(kind, &app.config.app_name, code, PIN_MINUTES as u32);
    match sms::send_sms(&ovh_settings(&app.config), phone, &text) {
        Ok(()) => Ok(()),
        Err(NotifyError::Disabled) => {
            crate::log_line!("sms: OVH_APP_KEY is empty, SMS not sent");
            Err(AppError::Unavailable("The SMS could not be sent, please retry later.".into()))
        }
        Err(e) => {
            crate::log_line!("sms: not sent: {e}");
            Err(AppError::Unavailable("The SMS could not be sent, please retry later.".into()))
        }
    }
}

/// `send_sms` for SMS that are a side effect: failures are logged only.
pub fn send_sms_logged(app: &App, phone: &str, kind: SmsKind, code: &str) {
    let _ = send_sms(app, phone, kind, code);
}
