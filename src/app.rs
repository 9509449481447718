//! The application state every layer receives: configuration, database and
//! what is compiled once from the configuration.

use crate::config::Config;
use crate::db::Db;
use crate::metrics::Metrics;
use regex::Regex;

pub struct App {
    pub config: Config,
    pub db: Db,
    pub username_regex: Regex,
    pub username_blacklist: Vec<Regex>,
    pub metrics: Metrics,
    /// `ACCOUNT_PROVISIONING_RC_FILE`, parsed once at start: a broken file
    /// stops start-up instead of failing every provisioning request.
    pub rc: Option<crate::provisioning::RcFile>,
    /// The part of every provisioning document that comes from the
    /// configuration (RC file, contacts list), built and rendered once;
    /// each document starts as a copy-on-write clone of it.
    pub provisioning_base: std::sync::OnceLock<crate::provisioning::Config>,
}

impl App {
    /// Opens the database (migrating it) and compiles the rules.
    pub fn new(config: Config) -> Result<App, String> {
        // One connection per worker (and one for the janitor): a worker
        // never waits for a connection, and an idle SQLite connection costs
        // little (a 512 KiB page cache at most).
        let pool_size = (config.http_workers as u32 + 1).clamp(2, 65);
        let (db, _migration) = Db::open(&config.database, pool_size)?;
        let app = App::with_db(config, db)?;
        if let Err(e) = crate::services::spaces::ensure_default(&app) {
            crate::log_line!("warning: cannot record the default Space: {e}");
        }
        Ok(app)
    }

    pub fn with_db(config: Config, db: Db) -> Result<App, String> {
        // Both were validated by `Config::from_values`.
        let username_regex =
            Regex::new(&config.account_username_regex).map_err(|e| format!("ACCOUNT_USERNAME_REGEX: {e}"))?;
        let username_blacklist = config
            .account_blacklisted_usernames
            .iter()
            .map(|p| Regex::new(p).map_err(|e| format!("ACCOUNT_BLACKLISTED_USERNAMES: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let rc = match &config.account_provisioning_rc_file {
            Some(path) => Some(crate::provisioning::rc::load(path).map_err(|e| match e {
                // One line naming the key, the file and the line at fault.
                crate::provisioning::RcError::Syntax { .. } => {
                    format!("ACCOUNT_PROVISIONING_RC_FILE: {}: {e}", path.display())
                }
                crate::provisioning::RcError::Io { .. } => format!("ACCOUNT_PROVISIONING_RC_FILE: {e}"),
            })?),
            None => None,
        };
        Ok(App {
            config,
            db,
            username_regex,
            username_blacklist,
            metrics: Metrics::default(),
            rc,
            provisioning_base: Default::default(),
        })
    }

    pub fn username_policy(&self) -> crate::domain::rules::UsernamePolicy<'_> {
        crate::domain::rules::UsernamePolicy { regex: &self.username_regex, blacklist: &self.username_blacklist }
    }
}
