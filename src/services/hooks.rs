//! Site hooks (seed 002's provisioning and account service hooks), the
//! single-binary way: executables named in the configuration.
//!
//! FlexiAPI loads optional PHP files; a Rust binary cannot, so an operator
//! names an executable instead:
//!
//! * `ACCOUNT_PROVISIONING_HOOK`: run for every provisioning document with
//!   one JSON object on stdin (`account` or null, the request `query`, the
//!   names of the account's sections); it prints `<section>` elements that
//!   are merged into the document.
//! * `ACCOUNT_SERVICE_HOOK`: run after an account is created, edited,
//!   activated or deleted, with the event name as `argv[1]` and the account
//!   JSON on stdin; fire-and-forget, run in order by one background thread.
//!
//! Both are bounded by `HOOK_TIMEOUT_MS` (the whole process group is killed
//! then), and a hook that fails, times out or prints something unusable is
//! logged and ignored: site code must never break provisioning or the API.

use crate::app::App;
use crate::db::accounts::Account;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Account events a hook is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEvent {
    Created,
    Edited,
    Activated,
    Deleted,
}

impl AccountEvent {
    /// `argv[1]` of the service hook. `destroyed` mirrors FlexiAPI's
    /// `accountServiceAccountDestroyedHook`, the name operators know.
    pub fn name(self) -> &'static str {
        match self {
            AccountEvent::Created => "created",
            AccountEvent::Edited => "edited",
            AccountEvent::Activated => "activated",
            AccountEvent::Deleted => "destroyed",
        }
    }
}

/// Largest hook output read; more is a broken hook, not a configuration.
const MAX_OUTPUT: u64 = 1024 * 1024;

/// The account as hooks see it. Secrets (password hashes, tokens, keys)
/// are left out: a hook has no use for them and they would end up in its logs.
pub fn account_json(account: &Account) -> serde_json::Value {
    serde_json::json!({
        "id": account.id,
        "username": account.username,
        "domain": account.domain,
        "sip": account.sip(),
        "email": account.email,
        "phone": account.phone,
        "display_name": account.display_name,
        "activated": account.activated,
        "admin": account.admin,
        "dtmf_protocol": account.dtmf_protocol,
        "created_at": account.created_at,
        "updated_at": account.updated_at,
    })
}

/// One queued run of the service hook.
struct ServiceJob {
    program: std::path::PathBuf,
    event: AccountEvent,
    input: String,
    env: Vec<(String, String)>,
    timeout: Duration,
}

/// Events waiting for the hook; beyond this many a burst is dropped (and
/// logged) rather than piling up memory behind a slow hook.
const SERVICE_QUEUE: usize = 1000;

/// The one worker thread running service hooks, started on first use. One
/// worker keeps the events of an account in order (created before
/// destroyed) and bounds the processes a burst of API calls can start.
fn service_queue() -> Option<&'static mpsc::SyncSender<ServiceJob>> {
    static QUEUE: std::sync::OnceLock<Option<mpsc::SyncSender<ServiceJob>>> = std::sync::OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (sender, receiver) = mpsc::sync_channel::<ServiceJob>(SERVICE_QUEUE);
            let spawned = std::thread::Builder::new().name("service-hook".into()).spawn(move || {
                for job in receiver {
                    if let Err(e) = run(&job.program, &[job.event.name()], &job.env, job.input.as_bytes(), job.timeout)
                    {
                        crate::log_line!("hook: ACCOUNT_SERVICE_HOOK {}: {e}", job.event.name());
                    }
                }
            });
            match spawned {
                Ok(_) => Some(sender),
                Err(e) => {
                    crate::log_line!("hook: ACCOUNT_SERVICE_HOOK: cannot start its thread: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// Notifies `ACCOUNT_SERVICE_HOOK` (if configured) of an account event.
/// Never fails the caller: the hook runs later, in the background, and a
/// failing hook is logged.
pub fn account_event(app: &App, event: AccountEvent, account: &Account) {
    let Some(program) = app.config.account_service_hook.clone() else { return };
    let job = ServiceJob {
        program,
        event,
        input: account_json(account).to_string(),
        env: hook_env(app),
        timeout: Duration::from_millis(app.config.hook_timeout_ms),
    };
    let Some(queue) = service_queue() else { return };
    if let Err(e) = queue.try_send(job) {
        let reason = match e {
            mpsc::TrySendError::Full(_) => "queue full",
            mpsc::TrySendError::Disconnected(_) => "worker gone",
        };
        crate::log_line!("hook: ACCOUNT_SERVICE_HOOK {}: event dropped ({reason})", event.name());
    }
}

/// Runs `ACCOUNT_PROVISIONING_HOOK` (if configured) with `input` on stdin
/// and returns the sections it printed; `None` when there is no hook or it
/// failed (already logged).
pub fn provisioning_sections(app: &App, input: &serde_json::Value) -> Option<Vec<crate::provisioning::Section>> {
    let program = app.config.account_provisioning_hook.as_ref()?;
    let timeout = Duration::from_millis(app.config.hook_timeout_ms);
    let output = match run(program, &[], &hook_env(app), input.to_string().as_bytes(), timeout) {
        Ok(output) => output,
        Err(e) => {
            crate::log_line!("hook: ACCOUNT_PROVISIONING_HOOK: {e}");
            return None;
        }
    };
    let text = match String::from_utf8(output) {
        Ok(text) => text,
        Err(_) => {
            crate::log_line!("hook: ACCOUNT_PROVISIONING_HOOK: output is not UTF-8, ignored");
            return None;
        }
    };
    match crate::provisioning::parse_hook_fragment(&text) {
        Ok(sections) => Some(sections),
        Err(e) => {
            // The parser's message names the construct, never the values.
            crate::log_line!("hook: ACCOUNT_PROVISIONING_HOOK: invalid XML, ignored: {e}");
            None
        }
    }
}

/// A clean environment: the server's own may hold secrets (APP_KEY, mail
/// and SMS credentials) that site scripts have no business seeing.
fn hook_env(app: &App) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_string(), std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())),
        ("FLEXIAPI_APP_URL".to_string(), app.config.app_url.clone()),
        ("FLEXIAPI_SIP_DOMAIN".to_string(), app.config.sip_domain.clone()),
    ];
    for key in ["LANG", "TZ"] {
        if let Ok(value) = std::env::var(key) {
            env.push((key.to_string(), value));
        }
    }
    env
}

/// Runs `program args` with `input` on stdin; returns stdout when it exits
/// with status 0 within `timeout`. On timeout its whole process group is
/// killed, so a shell script's children (a `sleep`, a `curl`) die with it
/// instead of holding the pipe open.
fn run(
    program: &Path,
    args: &[&str],
    env: &[(String, String)],
    input: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    let mut child = crate::notify::spawn(&mut command).map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let pid = child.id() as i32;

    // Stdin and stdout are served by threads so that a hook which does not
    // read its input, or prints a lot before reading, cannot deadlock us.
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        std::thread::spawn(move || {
            // A hook that ignores its input closes the pipe: not an error.
            let _ = stdin.write_all(&input);
        });
    }
    let (sender, receiver) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let result = stdout.take(MAX_OUTPUT + 1).read_to_end(&mut out).map(|_| out);
            let _ = sender.send(result);
        });
    }

    let kill_group = || {
        // SAFETY: kill(2) on our own child's process group; no memory involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                kill_group();
                let _ = child.wait();
                return Err(format!("timed out after {} ms, killed", timeout.as_millis()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                kill_group();
                let _ = child.wait();
                return Err(format!("wait failed: {e}"));
            }
        }
    };
    // The hook exited; its output is complete unless a child it left behind
    // still holds the pipe, which the remaining time bounds.
    let left = timeout.saturating_sub(started.elapsed()).max(Duration::from_millis(50));
    let output = match receiver.recv_timeout(left) {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("cannot read its output: {e}")),
        Err(_) => {
            kill_group();
            return Err("its output was not closed in time, killed".into());
        }
    };
    if !status.success() {
        return Err(format!("exited with {status}"));
    }
    if output.len() as u64 > MAX_OUTPUT {
        return Err(format!("printed more than {MAX_OUTPUT} bytes, ignored"));
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn temp_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "flexiapi-hooks-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    #[test]
    fn passes_args_and_stdin_and_returns_stdout() {
        let dir = temp_dir();
        let hook = script(&dir, "echo.sh", "printf '%s:' \"$1\"; cat");
        let out = run(&hook, &["created"], &[], b"{\"a\":1}", Duration::from_secs(5)).expect("runs");
        assert_eq!(String::from_utf8_lossy(&out), "created:{\"a\":1}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn failure_and_timeout_are_errors_and_timeout_is_bounded() {
        let dir = temp_dir();
        let failing = script(&dir, "fail.sh", "echo oops; exit 3");
        assert!(run(&failing, &[], &[], b"", Duration::from_secs(5)).unwrap_err().contains("exited"));
        let slow = script(&dir, "slow.sh", "sleep 10; echo late");
        let started = Instant::now();
        let err = run(&slow, &[], &[], b"", Duration::from_millis(200)).unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        let missing = run(Path::new("/nonexistent/hook"), &[], &[], b"", Duration::from_secs(1)).unwrap_err();
        assert!(missing.contains("cannot run"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
