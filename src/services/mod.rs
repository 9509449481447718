//! Use cases shared by the REST API, the portal and the CLI. Rules live
//! here once; nothing in this layer knows about HTTP.

pub mod accounts;
pub mod auth;
pub mod captcha;
pub mod doctor;
pub mod external_accounts;
pub mod hooks;
pub mod maintenance;
pub mod provisioning;
pub mod ratelimit;
pub mod seed;
pub mod spaces;

/// Who is asking, for the rows that record it.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: String,
    pub user_agent: Option<String>,
}

/// Which accounts a request may see: the SIP domain of its Space, or every
/// domain (admins with `APP_ADMINS_MANAGE_MULTI_DOMAINS`, super Spaces, CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub domain: String,
    pub all_domains: bool,
}

impl Scope {
    pub fn domain_filter(&self) -> Option<&str> {
        if self.all_domains {
            None
        } else {
            Some(&self.domain)
        }
    }

    pub fn allows(&self, domain: &str) -> bool {
        self.all_domains || self.domain == domain
    }
}
pub mod devices;
pub mod dictionary;
pub mod messages;
pub mod notifications;
pub mod profile;
pub mod registration;
pub mod statistics;
pub mod tokens;
pub mod vcard;
pub mod web_login;
