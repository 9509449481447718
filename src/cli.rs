//! Command line: FlexiAPI's artisan command names, parsed with pico-args.
//! Usage errors print one line and the usage, and exit 2; other failures
//! print one line and exit 1.

use crate::app::App;
use crate::config::Config;
use crate::error::AppError;
use crate::services::{self, maintenance};
use pico_args::Arguments;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

pub const USAGE: &str = "\
flexiapi: SIP account manager for Flexisip (REST API, web portal, provisioning)

Usage: flexiapi [OPTIONS] [COMMAND] [ARGS]

Commands:
  serve [--listen ADDR:PORT]            run the HTTP server (the default)
  migrate                               create or upgrade the database schema, then exit
  spaces:create-update {sip_domain} {host} [{name}] [--super]
  accounts:create-admin-account [-u|--username U] [-p|--password P] [-d|--domain D]
  accounts:set-admin {account_id}
  accounts:clear-unconfirmed {days} [--apply] [--and-confirmed]
  accounts:clear-accounts-tombstones {days} [--apply]
  accounts:seed {file.json}
  digest:clear-api-keys [{minutes}]     (alias: accounts:clear-api-keys)
  digest:clear-nonces {minutes}
  doctor                                check the installation (config, database, Flexisip, SMTP, OVH, Redis)
  backup FILE [--force]                 online consistent copy of the database into FILE

Options:
  --config FILE     dotenv configuration (default /etc/flexiapi/flexiapi.env when present)
  --db PATH         SQLite database file (DB_DATABASE)
  -h, --help        print this help (also `flexiapi COMMAND --help`)
  -V, --version     print the version
";

/// A failure of a command: usage errors exit 2, others 1.
#[derive(Debug)]
pub enum CliError {
    Usage(String),
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }
}

impl From<AppError> for CliError {
    fn from(e: AppError) -> CliError {
        match e.exit_code() {
            2 => CliError::Usage(e.to_string()),
            _ => CliError::Failed(e.to_string()),
        }
    }
}

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

/// Help text of one command.
fn command_help(command: &str) -> Option<&'static str> {
    Some(match command {
        "serve" => "flexiapi serve [--listen ADDR:PORT]\n  Runs the web portal, the REST API under /api, provisioning under /provisioning\n  and the periodic cleanups, until SIGTERM.\n",
        "migrate" => "flexiapi migrate\n  Creates the schema in a new database or upgrades an older one, then exits.\n  Refuses a database written by a newer flexiapi.\n",
        "spaces:create-update" => "flexiapi spaces:create-update {sip_domain} {host} [{name}] [--super]\n  Creates or updates the Space serving SIP domain {sip_domain} on HTTP host {host}.\n  --super lets that Space's admins manage every domain.\n",
        "accounts:create-admin-account" => "flexiapi accounts:create-admin-account [-u|--username U] [-p|--password P] [-d|--domain D]\n  Creates an activated admin account (replacing one with the same address) and prints\n  its SIP address, its password when generated, and `API key: <key>`.\n",
        "accounts:set-admin" => "flexiapi accounts:set-admin {account_id}\n  Gives the admin role to an account.\n",
        "accounts:clear-unconfirmed" => "flexiapi accounts:clear-unconfirmed {days} [--apply] [--and-confirmed]\n  Lists accounts not activated after {days} days; deletes them with --apply.\n  --and-confirmed includes activated accounts.\n",
        "accounts:clear-accounts-tombstones" => "flexiapi accounts:clear-accounts-tombstones {days} [--apply]\n  Lists tombstones of deleted accounts older than {days} days; deletes them with --apply.\n",
        "accounts:seed" => "flexiapi accounts:seed {file.json}\n  Seeds liblinphone tester accounts from a JSON file.\n",
        "digest:clear-api-keys" | "accounts:clear-api-keys" => "flexiapi digest:clear-api-keys [{minutes}]\n  Deletes API keys unused for {minutes} (default APP_API_KEY_EXPIRATION_MINUTES).\n",
        "digest:clear-nonces" => "flexiapi digest:clear-nonces {minutes}\n  Deletes DIGEST nonces older than {minutes}.\n",
        "doctor" => "flexiapi doctor\n  Checks the configuration, the database (opens, schema version, WAL, permissions for\n  the Flexisip user), runs Flexisip's SOCI requests against it, and tries SMTP, OVH,\n  Redis and linphone-daemon when configured. One line per check (OK, WARN, FAIL);\n  exits 1 when a check fails. Never creates nor changes the database.\n",
        "backup" => "flexiapi backup FILE [--force]\n  Copies the database into FILE through SQLite's online backup API: consistent while\n  the server runs and writes. Refuses an existing FILE unless --force. Prints the path\n  and the size.\n",
        _ => return None,
    })
}

struct Global {
    config: Option<PathBuf>,
    overrides: Vec<(&'static str, String)>,
}

fn load_config(global: &Global) -> Result<Config, CliError> {
    let overrides: Vec<(&str, String)> = global.overrides.iter().map(|(k, v)| (*k, v.clone())).collect();
    Config::load(global.config.as_deref(), &overrides).map_err(|e| CliError::Failed(e.to_string()))
}

fn open_app(global: &Global) -> Result<App, CliError> {
    let config = load_config(global)?;
    App::new(config).map_err(CliError::Failed)
}

fn number(args: &mut Arguments, what: &str) -> Result<i64, CliError> {
    let value: Option<String> = args.opt_free_from_str().map_err(|e| usage(e.to_string()))?;
    let value = value.ok_or_else(|| usage(format!("missing argument {{{what}}}")))?;
    value
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| usage(format!("{{{what}}} must be a whole number, got {value:?}")))
}

fn free(args: &mut Arguments, what: &str) -> Result<String, CliError> {
    let value: Option<String> = args.opt_free_from_str().map_err(|e| usage(e.to_string()))?;
    value.ok_or_else(|| usage(format!("missing argument {{{what}}}")))
}

fn finish(args: Arguments) -> Result<(), CliError> {
    let rest = args.finish();
    if let Some(first) = rest.first() {
        return Err(usage(format!("unexpected argument {:?}", first.to_string_lossy())));
    }
    Ok(())
}

/// Runs the command line; returns the process exit code.
pub fn run(raw: Vec<OsString>) -> i32 {
    match execute(raw) {
        Ok(()) => 0,
        Err(e) => {
            match &e {
                CliError::Usage(m) => eprintln!("flexiapi: {m}\n\n{USAGE}"),
                CliError::Failed(m) => eprintln!("flexiapi: {m}"),
            }
            e.exit_code()
        }
    }
}

fn execute(raw: Vec<OsString>) -> Result<(), CliError> {
    let mut args = Arguments::from_vec(raw);
    if args.contains(["-V", "--version"]) {
        println!("flexiapi {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let help = args.contains(["-h", "--help"]);
    let mut global = Global { config: None, overrides: Vec::new() };
    global.config = args.opt_value_from_str("--config").map_err(|e| usage(e.to_string()))?;
    if let Some(db) = args.opt_value_from_str::<_, String>("--db").map_err(|e| usage(e.to_string()))? {
        global.overrides.push(("DB_DATABASE", db));
    }
    // Taken before the command name, so `--listen ADDR serve` works as well
    // as `serve --listen ADDR` (and `--listen ADDR` alone serves).
    let listen: Option<String> = args.opt_value_from_str("--listen").map_err(|e| usage(e.to_string()))?;
    let given: Option<String> = args.subcommand().map_err(|e| usage(e.to_string()))?;
    if help {
        match given.as_deref() {
            None => print!("{USAGE}"),
            Some(c) => match command_help(c) {
                Some(text) => print!("{text}"),
                None => return Err(usage(format!("unknown command {c:?}"))),
            },
        }
        return Ok(());
    }
    let command = given.unwrap_or_else(|| "serve".to_string());
    if listen.is_some() && command != "serve" {
        return Err(usage(format!("--listen only applies to serve, not {command}")));
    }

    match command.as_str() {
        "serve" => {
            if let Some(listen) = listen {
                global.overrides.push(("APP_LISTEN", listen));
            }
            finish(args)?;
            let app = Arc::new(open_app(&global)?);
            crate::http::serve(app).map_err(CliError::Failed)
        }
        "migrate" => {
            finish(args)?;
            let config = load_config(&global)?;
            let (db, migration) = crate::db::Db::open(&config.database, 2).map_err(CliError::Failed)?;
            let path = config.database.display().to_string();
            let app = App::with_db(config, db).map_err(CliError::Failed)?;
            services::spaces::ensure_default(&app)?;
            match migration {
                crate::db::Migration::Created => {
                    println!("{path}: schema created (version {})", crate::db::SCHEMA_VERSION)
                }
                crate::db::Migration::Upgraded { from, to } => {
                    println!("{path}: schema upgraded from version {from} to {to}")
                }
                crate::db::Migration::UpToDate => {
                    println!("{path}: schema up to date (version {})", crate::db::SCHEMA_VERSION)
                }
            }
            Ok(())
        }
        "spaces:create-update" => {
            let is_super = args.contains("--super");
            let domain = free(&mut args, "sip_domain")?;
            let host = free(&mut args, "host")?;
            let name: Option<String> = args.opt_free_from_str().map_err(|e| usage(e.to_string()))?;
            finish(args)?;
            let app = open_app(&global)?;
            let change = services::spaces::create_or_update(&app, &domain, &host, name.as_deref(), is_super)?;
            let verb = match change {
                services::spaces::SpaceChange::Created => "created",
                services::spaces::SpaceChange::Updated => "updated",
            };
            println!("Space {domain} on host {host} {verb} ({} Space)", if is_super { "super" } else { "normal" });
            Ok(())
        }
        "accounts:create-admin-account" => {
            let username: Option<String> =
                args.opt_value_from_str(["-u", "--username"]).map_err(|e| usage(e.to_string()))?;
            let password: Option<String> =
                args.opt_value_from_str(["-p", "--password"]).map_err(|e| usage(e.to_string()))?;
            let domain: Option<String> =
                args.opt_value_from_str(["-d", "--domain"]).map_err(|e| usage(e.to_string()))?;
            finish(args)?;
            let app = open_app(&global)?;
            let created = services::accounts::create_admin_account(
                &app,
                username.as_deref(),
                password.as_deref(),
                domain.as_deref(),
            )?;
            println!("Admin account created: sip:{}", created.account.sip());
            if let Some(password) = created.generated_password {
                println!("Password: {password}");
            }
            println!("API key: {}", created.api_key);
            Ok(())
        }
        "accounts:set-admin" => {
            let id = number(&mut args, "account_id")?;
            finish(args)?;
            let app = open_app(&global)?;
            let account = app.db.read(|c| crate::db::accounts::by_id(c, id))?;
            let account = account.ok_or_else(|| CliError::Failed(format!("account {id} not found")))?;
            if account.admin {
                return Err(CliError::Failed(format!("account {} is already admin", account.sip())));
            }
            app.db.write(|tx| Ok(crate::db::accounts::set_admin(tx, id, true)?))?;
            println!("Account {} is now admin", account.sip());
            Ok(())
        }
        "accounts:clear-unconfirmed" => {
            let apply = args.contains("--apply");
            let and_confirmed = args.contains("--and-confirmed");
            let days = number(&mut args, "days")?;
            finish(args)?;
            let app = open_app(&global)?;
            let cleanup = maintenance::clear_unconfirmed(&app, days, and_confirmed, apply)?;
            report(&cleanup, apply, "accounts");
            Ok(())
        }
        "accounts:clear-accounts-tombstones" => {
            let apply = args.contains("--apply");
            let days = number(&mut args, "days")?;
            finish(args)?;
            let app = open_app(&global)?;
            let cleanup = maintenance::clear_tombstones(&app, days, apply)?;
            report(&cleanup, apply, "tombstones");
            Ok(())
        }
        "accounts:seed" => {
            let file = free(&mut args, "file.json")?;
            finish(args)?;
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Failed(format!("the JSON file doesn't exist or cannot be read: {file}: {e}")))?;
            let app = open_app(&global)?;
            let count = services::seed::seed(&app, &text).map_err(|e| CliError::Failed(e.to_string()))?;
            // FlexiAPI's seeder prints nothing; the count is for the operator.
            eprintln!("{count} accounts seeded");
            Ok(())
        }
        "digest:clear-api-keys" | "accounts:clear-api-keys" => {
            let _ = args.contains("--apply");
            let minutes: Option<String> = args.opt_free_from_str().map_err(|e| usage(e.to_string()))?;
            finish(args)?;
            let app = open_app(&global)?;
            let minutes = match minutes {
                Some(m) => m
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| usage(format!("{{minutes}} must be a whole number, got {m:?}")))?,
                None => app.config.api_key_expiration_minutes,
            };
            if minutes == 0 {
                println!("API keys never expire (0 minutes): nothing to clear");
                return Ok(());
            }
            println!("deleting API keys unused for {minutes} minutes");
            let count = maintenance::clear_api_keys(&app, minutes)?;
            println!("{count} api keys deleted");
            Ok(())
        }
        "digest:clear-nonces" => {
            let _ = args.contains("--apply");
            let minutes = number(&mut args, "minutes")?;
            finish(args)?;
            let app = open_app(&global)?;
            let count = maintenance::clear_nonces(&app, minutes)?;
            println!("{count} expired nonces deleted");
            Ok(())
        }
        "doctor" => {
            finish(args)?;
            let source = match &global.config {
                Some(path) => path.display().to_string(),
                None if std::path::Path::new(crate::config::DEFAULT_CONFIG_FILE).exists() => {
                    crate::config::DEFAULT_CONFIG_FILE.to_string()
                }
                None => "configuration (defaults and environment)".to_string(),
            };
            let checks = services::doctor::diagnose(
                load_config(&global).map_err(|e| match e {
                    CliError::Usage(m) | CliError::Failed(m) => m,
                }),
                &source,
            );
            for check in &checks {
                println!("{check}");
            }
            if services::doctor::passed(&checks) {
                Ok(())
            } else {
                let failed = checks.iter().filter(|c| c.level == services::doctor::Level::Fail).count();
                Err(CliError::Failed(format!("{failed} check(s) failed")))
            }
        }
        "backup" => {
            let force = args.contains("--force");
            let file = free(&mut args, "FILE")?;
            finish(args)?;
            let config = load_config(&global)?;
            let (path, size) = backup(&config, std::path::Path::new(&file), force)?;
            println!("{}: {size} bytes", path.display());
            Ok(())
        }
        other => Err(usage(format!("unknown command {other:?}"))),
    }
}

/// The lines of operations.md §1.4–1.5 on stdout (one identifier per line,
/// then the counts); the hint about `--apply` goes to stderr.
fn report(cleanup: &maintenance::Cleanup, apply: bool, what: &str) {
    for item in &cleanup.found {
        println!("{item}");
    }
    if apply {
        if what == "accounts" {
            println!("{} {what} in deletion…", cleanup.found.len());
        }
        println!("{} {what} deleted", cleanup.deleted);
    } else {
        println!("{} {what} to delete", cleanup.found.len());
        eprintln!("(nothing was deleted: run again with --apply to delete them)");
    }
}

/// `backup FILE`: copies into a temporary file beside FILE, then renames it,
/// so FILE is never a half-written database.
fn backup(config: &Config, file: &std::path::Path, force: bool) -> Result<(PathBuf, u64), CliError> {
    if !config.database.exists() {
        return Err(CliError::Failed(format!("{} does not exist", config.database.display())));
    }
    if file.exists() && !force {
        return Err(CliError::Failed(format!("{} exists (use --force to overwrite it)", file.display())));
    }
    if file.is_dir() {
        return Err(CliError::Failed(format!("{} is a directory", file.display())));
    }
    let absolute = std::path::absolute(file).map_err(|e| CliError::Failed(format!("{}: {e}", file.display())))?;
    if std::fs::canonicalize(&config.database).ok() == std::fs::canonicalize(&absolute).ok() {
        return Err(CliError::Failed("the backup file is the database itself".into()));
    }
    // A plain connection: the backup never migrates (take one before upgrading).
    let conn = crate::db::open_existing(&config.database).map_err(CliError::Failed)?;
    let name = absolute.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = absolute.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let result = crate::db::backup(&conn, &temporary)
        .map_err(|e| CliError::Failed(format!("backup failed: {e}")))
        .and_then(|()| {
            std::fs::rename(&temporary, &absolute)
                .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", absolute.display())))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result?;
    let size = std::fs::metadata(&absolute).map(|m| m.len()).unwrap_or(0);
    Ok((absolute, size))
}
