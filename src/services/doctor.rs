//! `flexiapi doctor`: checks an installation the way an operator would, one
//! line per check. It never creates nor migrates the database and never
//! sends mail or SMS: it only opens connections and reads.

use crate::config::{Config, MailDriver};
use crate::db::{self, health};
use crate::notify;
use rusqlite::{Connection, OpenFlags};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long each network check may take.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub level: Level,
    pub name: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<4} {}: {}", self.level.as_str(), self.name, self.detail)
    }
}

fn check(level: Level, name: &'static str, detail: impl Into<String>) -> Check {
    Check { level, name, detail: detail.into() }
}

/// Runs every check. `config` is the outcome of loading the configuration
/// from `source` (a file name, or a description of where values came from).
pub fn diagnose(config: Result<Config, String>, source: &str) -> Vec<Check> {
    let mut out = Vec::new();
    let config = match config {
        Ok(c) => {
            out.push(check(Level::Ok, "configuration", format!("{source} is valid")));
            c
        }
        Err(e) => {
            out.push(check(Level::Fail, "configuration", format!("{source}: {e}")));
            return out;
        }
    };
    database_checks(&config, &mut out);
    out.push(smtp(&config));
    if let Some(c) = captcha(&config) {
        out.push(c);
    }
    if let Some(c) = ovh(&config) {
        out.push(c);
    }
    if config.devices_management {
        out.push(redis(&config));
    }
    if let Some(path) = &config.linphone_daemon_unix_path {
        out.push(linphone_daemon(path));
    }
    if let Some(path) = &config.flexisip_pusher_path {
        out.push(executable("flexisip pusher", path));
    }
    out
}

/// True when no check failed.
pub fn passed(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.level != Level::Fail)
}

fn database_checks(config: &Config, out: &mut Vec<Check>) {
    let path = &config.database;
    if !path.exists() {
        out.push(check(Level::Fail, "database", format!("{} does not exist (run `flexiapi migrate`)", path.display())));
        return;
    }
    let conn =
        match Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .and_then(|c| {
                c.busy_timeout(Duration::from_secs(5))?;
                health::ping(&c)?;
                Ok(c)
            }) {
            Ok(c) => c,
            Err(e) => {
                out.push(check(Level::Fail, "database", format!("cannot open {}: {e}", path.display())));
                return;
            }
        };
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    match health::quick_check(&conn) {
        Ok(result) if result == "ok" => {
            out.push(check(Level::Ok, "database", format!("{} opens ({size} bytes, quick_check ok)", path.display())))
        }
        Ok(result) => out.push(check(Level::Fail, "database", format!("{}: quick_check: {result}", path.display()))),
        Err(e) => out.push(check(Level::Fail, "database", format!("{}: {e}", path.display()))),
    }
    let schema_ok = match health::user_version(&conn) {
        Ok(v) if v == db::SCHEMA_VERSION => {
            out.push(check(Level::Ok, "schema", format!("version {v} (current)")));
            true
        }
        Ok(v) if v > db::SCHEMA_VERSION => {
            out.push(check(
                Level::Fail,
                "schema",
                format!("version {v} is newer than this flexiapi ({}): upgrade flexiapi", db::SCHEMA_VERSION),
            ));
            false
        }
        Ok(0) => {
            out.push(check(Level::Fail, "schema", "no flexiapi schema (run `flexiapi migrate`)"));
            false
        }
        Ok(v) => {
            out.push(check(
                Level::Fail,
                "schema",
                format!("version {v}, this flexiapi needs {} (run `flexiapi migrate`)", db::SCHEMA_VERSION),
            ));
            false
        }
        Err(e) => {
            out.push(check(Level::Fail, "schema", e.to_string()));
            false
        }
    };
    match health::journal_mode(&conn) {
        Ok(mode) if mode.eq_ignore_ascii_case("wal") => out.push(check(Level::Ok, "journal mode", "wal")),
        Ok(mode) => out.push(check(
            Level::Fail,
            "journal mode",
            format!("{mode}: Flexisip's reads would block flexiapi's writes (run `flexiapi migrate` to switch to WAL)"),
        )),
        Err(e) => out.push(check(Level::Fail, "journal mode", e.to_string())),
    }
    out.push(permissions(path));
    if schema_ok {
        flexisip_requests(&conn, out);
    }
}

/// Group name of a gid, from /etc/group.
fn group_name(gid: u32) -> String {
    std::fs::read_to_string("/etc/group")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let _ = fields.next();
                (fields.next()?.parse::<u32>().ok()? == gid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| gid.to_string())
}

/// Flexisip (another user, in the database's group) needs read and write
/// access to the file, its `-wal` and `-shm` files and the directory.
fn permissions(path: &Path) -> Check {
    use std::os::unix::fs::MetadataExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut problems = Vec::new();
    let mut described = Vec::new();
    match std::fs::metadata(&dir) {
        Ok(m) => {
            let mode = m.mode() & 0o7777;
            described.push(format!("{} {:04o} group {}", dir.display(), mode, group_name(m.gid())));
            if mode & 0o070 != 0o070 {
                problems.push(format!("directory {} is not group-writable", dir.display()));
            } else if mode & 0o2000 == 0 {
                problems.push(format!(
                    "directory {} is not setgid (new -wal/-shm files may get another group)",
                    dir.display()
                ));
            }
        }
        Err(e) => problems.push(format!("{}: {e}", dir.display())),
    }
    let mut files = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    let db_gid = std::fs::metadata(path).map(|m| m.gid()).ok();
    for (i, file) in files.iter().enumerate() {
        match std::fs::metadata(file) {
            Ok(m) => {
                let mode = m.mode() & 0o777;
                if i == 0 {
                    described.push(format!("file {:04o} group {}", mode, group_name(m.gid())));
                }
                if mode & 0o060 != 0o060 {
                    problems.push(format!("{} is not group-readable and -writable ({:04o})", file.display(), mode));
                }
                if i > 0 && db_gid.is_some_and(|g| g != m.gid()) {
                    problems.push(format!("{} has another group than the database", file.display()));
                }
            }
            Err(_) if i > 0 => {} // created on demand
            Err(e) => problems.push(format!("{}: {e}", file.display())),
        }
    }
    if problems.is_empty() {
        check(Level::Ok, "permissions", format!("{} (Flexisip's user needs to be in this group)", described.join(", ")))
    } else {
        check(
            Level::Warn,
            "permissions",
            format!(
                "{} — a Flexisip user in the group could not share the WAL: {}",
                described.join(", "),
                problems.join("; ")
            ),
        )
    }
}

fn flexisip_requests(conn: &Connection, out: &mut Vec<Check>) {
    // The password request, on a real account when there is one.
    let detail = match health::sample_account_with_password(conn) {
        Ok(Some((username, domain, stored))) => {
            match health::run_password_request(conn, health::FLEXISIP_PASSWORD_REQUEST, &username, &domain) {
                Ok(rows) if rows.len() as i64 == stored && !rows.is_empty() => {
                    let bad: Vec<&(String, String)> =
                        rows.iter().filter(|(_, a)| !["MD5", "SHA-256", "CLRTXT"].contains(&a.as_str())).collect();
                    if bad.is_empty() {
                        let algorithms: Vec<&str> = rows.iter().map(|(_, a)| a.as_str()).collect();
                        Ok(format!("{username}@{domain} -> {} row(s) ({})", rows.len(), algorithms.join(", ")))
                    } else {
                        Err(format!("{username}@{domain}: unknown algorithm {:?}", bad[0].1))
                    }
                }
                Ok(rows) => {
                    Err(format!("{username}@{domain} has {stored} password(s) but the request returned {}", rows.len()))
                }
                Err(e) => Err(e.to_string()),
            }
        }
        Ok(None) => health::run_password_request(conn, health::FLEXISIP_PASSWORD_REQUEST, "doctor-nobody", "invalid")
            .map(|_| "runs (no activated account with a password yet)".to_string())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    out.push(match detail {
        Ok(d) => check(Level::Ok, "flexisip password request", d),
        Err(e) => check(Level::Fail, "flexisip password request", e),
    });

    let phone = health::sample_phone(conn).ok().flatten();
    let probe = phone.clone().unwrap_or_else(|| "+10000000000".to_string());
    let one = health::run_user_with_phone_request(conn, health::FLEXISIP_USER_WITH_PHONE_REQUEST, &probe);
    out.push(match (one, &phone) {
        (Ok(rows), Some(p)) if rows.len() == 1 => {
            check(Level::Ok, "flexisip user-with-phone request", format!("{p} -> {}", rows[0]))
        }
        (Ok(rows), Some(p)) => {
            check(Level::Fail, "flexisip user-with-phone request", format!("{p} -> {} rows, expected 1", rows.len()))
        }
        (Ok(_), None) => check(Level::Ok, "flexisip user-with-phone request", "runs (no account with a phone yet)"),
        (Err(e), _) => check(Level::Fail, "flexisip user-with-phone request", e.to_string()),
    });
    let many = health::run_users_with_phones_request(
        conn,
        health::FLEXISIP_USERS_WITH_PHONES_REQUEST,
        &[&probe, "+10000000001"],
    );
    out.push(match (many, &phone) {
        (Ok(rows), Some(p)) if rows.iter().any(|r| &r.2 == p) => {
            check(Level::Ok, "flexisip users-with-phones request", format!("{p} -> {}@{}", rows[0].0, rows[0].1))
        }
        (Ok(_), Some(p)) => check(Level::Fail, "flexisip users-with-phones request", format!("{p} not found")),
        (Ok(_), None) => check(Level::Ok, "flexisip users-with-phones request", "runs (no account with a phone yet)"),
        (Err(e), _) => check(Level::Fail, "flexisip users-with-phones request", e.to_string()),
    });
}

/// Connects to `host:port` (every resolved address in turn).
fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let addrs = (host, port).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("{host} resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

fn smtp(config: &Config) -> Check {
    let mail = &config.mail;
    match mail.driver {
        MailDriver::Disabled => check(Level::Warn, "mail", "MAIL_DRIVER is empty: e-mails are only logged"),
        MailDriver::Sendmail => {
            let path = mail.sendmail_path.clone().unwrap_or_else(|| PathBuf::from(notify::mail::DEFAULT_SENDMAIL));
            executable("mail (sendmail)", &path)
        }
        MailDriver::Smtp => {
            let target = format!("{}:{}", mail.host, mail.port);
            let encryption = notify::mail::Encryption::from_laravel(&mail.encryption, mail.port)
                .unwrap_or(notify::mail::Encryption::None);
            if encryption == notify::mail::Encryption::Tls {
                // Implicit TLS: the banner comes after the handshake; let the
                // mail transport do the whole exchange.
                return match smtp_transport_test(config) {
                    Ok(()) => check(Level::Ok, "mail (smtp)", format!("{target}: TLS handshake and EHLO ok")),
                    Err(e) => check(Level::Fail, "mail (smtp)", format!("{target}: {e}")),
                };
            }
            let banner = connect(&mail.host, mail.port).and_then(|stream| {
                use std::io::BufRead;
                stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
                let mut line = String::new();
                std::io::BufReader::new(stream).read_line(&mut line).map_err(|e| format!("no banner: {e}"))?;
                Ok(line.trim_end().to_string())
            });
            match banner {
                Ok(line) if line.starts_with("220") => {
                    if encryption == notify::mail::Encryption::StartTls || !mail.username.is_empty() {
                        match smtp_transport_test(config) {
                            Ok(()) => check(Level::Ok, "mail (smtp)", format!("{target}: {line}; STARTTLS/AUTH ok")),
                            Err(e) => check(Level::Fail, "mail (smtp)", format!("{target}: {line}; then: {e}")),
                        }
                    } else {
                        check(Level::Ok, "mail (smtp)", format!("{target}: {line}"))
                    }
                }
                Ok(line) => check(Level::Fail, "mail (smtp)", format!("{target}: unexpected banner {line:?}")),
                Err(e) => check(Level::Fail, "mail (smtp)", format!("{target}: {e}")),
            }
        }
    }
}

/// Connects with the real mail transport (TLS, AUTH) and says NOOP.
fn smtp_transport_test(config: &Config) -> Result<(), String> {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::SmtpTransport;
    let mail = &config.mail;
    let encryption =
        notify::mail::Encryption::from_laravel(&mail.encryption, mail.port).unwrap_or(notify::mail::Encryption::None);
    let parameters =
        || TlsParameters::builder(mail.host.clone()).build_rustls().map_err(|e| format!("TLS set-up: {e}"));
    let tls = match encryption {
        notify::mail::Encryption::None => Tls::None,
        notify::mail::Encryption::StartTls => Tls::Required(parameters()?),
        notify::mail::Encryption::Tls => Tls::Wrapper(parameters()?),
    };
    let mut builder =
        SmtpTransport::builder_dangerous(mail.host.as_str()).port(mail.port).tls(tls).timeout(Some(TIMEOUT));
    if !mail.username.is_empty() {
        builder = builder.credentials(Credentials::new(mail.username.clone(), mail.password.clone()));
    }
    match builder.build().test_connection() {
        Ok(true) => Ok(()),
        Ok(false) => Err("the server did not answer NOOP".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// reCAPTCHA: the verifier answers and accepts the secret. `None` when the
/// captcha is off.
fn captcha(config: &Config) -> Option<Check> {
    let c = &config.captcha;
    if !c.enabled() {
        return None;
    }
    Some(match super::captcha::probe(c) {
        Ok(()) => check(Level::Ok, "captcha", format!("{} answers and accepts NOCAPTCHA_SECRET", c.verify_url)),
        Err(e) => check(Level::Fail, "captcha", format!("{}: {e}", c.verify_url)),
    })
}

/// OVH: `GET auth/time` (reachability, clock), then a signed `GET /sms`
/// (the credentials). `None` when no OVH key is set.
fn ovh(config: &Config) -> Option<Check> {
    let ovh = &config.ovh;
    if ovh.app_key.is_empty() && ovh.app_secret.is_empty() && ovh.consumer_key.is_empty() {
        return None;
    }
    if !ovh.is_configured() {
        return Some(check(Level::Fail, "ovh", "OVH_APP_KEY, OVH_APP_SECRET and OVH_APP_CONSUMER_KEY must all be set"));
    }
    let base = match notify::sms::base_url(&ovh.endpoint) {
        Ok(b) => b,
        Err(e) => return Some(check(Level::Fail, "ovh", e.to_string())),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .max_redirects(0)
        .user_agent("flexiapi-doctor")
        .build()
        .into();
    let get = |url: &str, headers: &[(&str, String)]| -> Result<(u16, String), String> {
        let mut request = agent.get(url);
        for (k, v) in headers {
            request = request.header(*k, v.as_str());
        }
        let mut response = request.call().map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body =
            response.body_mut().with_config().limit(64 * 1024).lossy_utf8(true).read_to_string().unwrap_or_default();
        Ok((status, body))
    };
    let time_url = format!("{base}/auth/time");
    let server_time: i64 = match get(&time_url, &[]) {
        Ok((200, body)) => match body.trim().parse() {
            Ok(t) => t,
            Err(_) => return Some(check(Level::Fail, "ovh", format!("{time_url}: not a time: {}", body.trim()))),
        },
        Ok((status, _)) => return Some(check(Level::Fail, "ovh", format!("{time_url}: HTTP {status}"))),
        Err(e) => return Some(check(Level::Fail, "ovh", format!("{time_url}: {e}"))),
    };
    let sms_url = format!("{base}/sms");
    let signature = notify::sms::signature(&ovh.app_secret, &ovh.consumer_key, "GET", &sms_url, "", server_time);
    let headers = [
        ("X-Ovh-Application", ovh.app_key.clone()),
        ("X-Ovh-Consumer", ovh.consumer_key.clone()),
        ("X-Ovh-Timestamp", server_time.to_string()),
        ("X-Ovh-Signature", signature),
    ];
    Some(match get(&sms_url, &headers) {
        Ok((200, body)) => {
            let services = serde_json::from_str::<Vec<String>>(&body).unwrap_or_default();
            match services.first() {
                Some(s) => check(Level::Ok, "ovh", format!("{base}: credentials accepted, SMS service {s}")),
                None => check(
                    Level::Fail,
                    "ovh",
                    format!("{base}: credentials accepted but no SMS service on this account"),
                ),
            }
        }
        Ok((status, body)) => check(
            Level::Fail,
            "ovh",
            format!("{sms_url}: HTTP {status}: {}", body.trim().chars().take(200).collect::<String>()),
        ),
        Err(e) => check(Level::Fail, "ovh", format!("{sms_url}: {e}")),
    })
}

fn redis(config: &Config) -> Check {
    let settings = notify::redis::RedisSettings {
        host: config.redis.host.clone(),
        port: config.redis.port,
        password: config.redis.password.clone(),
        db: config.redis.db,
        timeout: TIMEOUT,
    };
    let target = format!("{}:{}", settings.host, settings.port);
    match notify::redis::Connection::open(&settings).and_then(|mut c| c.command(&[b"PING"])) {
        Ok(notify::redis::Value::Simple(s)) if s == "PONG" => check(Level::Ok, "redis", format!("{target}: PONG")),
        Ok(other) => check(Level::Fail, "redis", format!("{target}: unexpected reply {other:?}")),
        Err(e) => check(Level::Fail, "redis", format!("{target}: {e}")),
    }
}

fn linphone_daemon(path: &Path) -> Check {
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(stream) => {
            drop(stream);
            check(Level::Ok, "linphone-daemon", format!("{} accepts connections", path.display()))
        }
        Err(e) => check(
            Level::Fail,
            "linphone-daemon",
            format!(
                "{}: {e} (with systemd, PrivateTmp hides another service's /tmp: see docs/operations.md)",
                path.display()
            ),
        ),
    }
}

fn executable(name: &'static str, path: &Path) -> Check {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
            check(Level::Ok, name, format!("{} is executable", path.display()))
        }
        Ok(_) => check(Level::Fail, name, format!("{} is not an executable file", path.display())),
        Err(e) => check(Level::Fail, name, format!("{}: {e}", path.display())),
    }
}
