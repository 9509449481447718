//! Account-creation tokens pushed to a device with `flexisip_pusher`
//! (api.md section 5.1, operations.md section 6).
//!
//! The pusher runs without a shell, with the argv of the reference command:
//! `--pn-provider P --pn-param Q --pn-prid R --customPayload {"token":"T"}`
//! then `--apple-push-type Background` for `apns` / `apns.dev`, otherwise
//! `--key K` when a Firebase key is configured. Success = exit status 0; the
//! child is killed after [`DEFAULT_TIMEOUT`].

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{last_line, run_bounded, truncate, NotifyError};

/// How long the pusher may run before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest accepted length of each push parameter.
const MAX_PARAM: usize = 4096;

/// The `--customPayload` value for `token`: `{"token":"<token>"}`.
pub fn token_payload(token: &str) -> String {
    serde_json::json!({ "token": token }).to_string()
}

/// The pusher's arguments (without the program). Values are passed as they
/// are: there is no shell, so quotes or spaces in them cannot inject anything.
pub fn pusher_args(
    firebase_key: Option<&str>,
    pn_provider: &str,
    pn_param: &str,
    pn_prid: &str,
    token: &str,
) -> Vec<String> {
    let mut args = vec![
        "--pn-provider".to_string(),
        pn_provider.to_string(),
        "--pn-param".to_string(),
        pn_param.to_string(),
        "--pn-prid".to_string(),
        pn_prid.to_string(),
        "--customPayload".to_string(),
        token_payload(token),
    ];
    if matches!(pn_provider, "apns" | "apns.dev") {
        args.push("--apple-push-type".to_string());
        args.push("Background".to_string());
    } else if let Some(key) = firebase_key.map(str::trim).filter(|k| !k.is_empty()) {
        args.push("--key".to_string());
        args.push(key.to_string());
    }
    args
}

fn check_param(name: &str, value: &str) -> Result<(), NotifyError> {
    if value.is_empty() {
        return Err(NotifyError::Invalid(format!("{name} is empty")));
    }
    if value.len() > MAX_PARAM {
        return Err(NotifyError::Invalid(format!("{name} is too long")));
    }
    if value.chars().any(char::is_control) {
        return Err(NotifyError::Invalid(format!("{name} holds control characters")));
    }
    Ok(())
}

/// Sends `token` to the device with [`DEFAULT_TIMEOUT`]. See [`push_token_with_timeout`].
pub fn push_token(
    pusher_path: Option<&Path>,
    firebase_key: Option<&str>,
    pn_provider: &str,
    pn_param: &str,
    pn_prid: &str,
    token: &str,
) -> Result<(), NotifyError> {
    push_token_with_timeout(pusher_path, firebase_key, pn_provider, pn_param, pn_prid, token, DEFAULT_TIMEOUT)
}

/// Runs the pusher. `Disabled` without a pusher path (the reference logs
/// "pusher path not configured"); `Invalid` for an empty, huge or
/// control-character parameter; `Unavailable` when the pusher cannot be
/// started or is killed after `timeout`; `Rejected` when it exits non-zero
/// (the message holds the exit status and the last stderr/stdout line).
/// The caller answers 503 "Token not sent" on any error.
pub fn push_token_with_timeout(
    pusher_path: Option<&Path>,
    firebase_key: Option<&str>,
    pn_provider: &str,
    pn_param: &str,
    pn_prid: &str,
    token: &str,
    timeout: Duration,
) -> Result<(), NotifyError> {
    let program = match pusher_path {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => return Err(NotifyError::Disabled),
    };
    check_param("pn_provider", pn_provider)?;
    check_param("pn_param", pn_param)?;
    check_param("pn_prid", pn_prid)?;
    check_param("token", token)?;
    let mut cmd = Command::new(program);
    cmd.args(pusher_args(firebase_key, pn_provider, pn_param, pn_prid, token));
    let out = run_bounded(&mut cmd, None, timeout)
        .map_err(|e| NotifyError::Unavailable(format!("cannot run {}: {e}", program.display())))?;
    match out.status {
        None => Err(NotifyError::Unavailable(format!("{} killed after {} ms", program.display(), timeout.as_millis()))),
        Some(status) if status.success() => Ok(()),
        Some(status) => {
            let mut detail = last_line(&out.stderr);
            if detail.is_empty() {
                detail = last_line(&out.stdout);
            }
            Err(NotifyError::Rejected(truncate(&format!("{} exited with {status}: {detail}", program.display()), 400)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;
    use std::time::Instant;

    /// Removes the test's scratch directory when dropped.
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("flexiapi-pusher-{}-{name}", std::process::id()))
    }

    fn script(name: &str, body: &str) -> PathBuf {
        let dir = dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("flexisip_pusher");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn args_apns_and_fcm() {
        assert_eq!(
            pusher_args(Some("KEY"), "apns", "ABCD.org.linphone.phone.voip", "a1b2", "tok123"),
            vec![
                "--pn-provider",
                "apns",
                "--pn-param",
                "ABCD.org.linphone.phone.voip",
                "--pn-prid",
                "a1b2",
                "--customPayload",
                "{\"token\":\"tok123\"}",
                "--apple-push-type",
                "Background"
            ]
        );
        let fcm = pusher_args(Some("firebase-key"), "fcm", "123456", "fcm:token-", "t");
        assert_eq!(&fcm[8..], ["--key", "firebase-key"]);
        let dev = pusher_args(None, "apns.dev", "p", "r", "t");
        assert_eq!(&dev[8..], ["--apple-push-type", "Background"]);
        assert_eq!(pusher_args(None, "fcm", "p", "r", "t").len(), 8);
        assert_eq!(pusher_args(Some(" "), "fcm", "p", "r", "t").len(), 8);
        // hostile values stay single arguments
        let evil = pusher_args(None, "fcm", "'; rm -rf / #", "$(reboot)", "a\"b");
        assert_eq!(evil[3], "'; rm -rf / #");
        assert_eq!(evil[5], "$(reboot)");
        assert_eq!(evil[7], "{\"token\":\"a\\\"b\"}");
    }

    #[test]
    fn runs_the_pusher_without_shell() {
        let _cleanup = Cleanup(dir("argv"));
        let out = dir("argv").join("argv.txt");
        let path = script("argv", &format!("for a in \"$@\"; do printf '%s\\n' \"$a\" >> '{}'; done", out.display()));
        let _ = std::fs::remove_file(&out);
        push_token(Some(&path), Some("K"), "fcm", "p a r am", "$(id)", "tok").unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            got.lines().collect::<Vec<_>>(),
            vec![
                "--pn-provider",
                "fcm",
                "--pn-param",
                "p a r am",
                "--pn-prid",
                "$(id)",
                "--customPayload",
                "{\"token\":\"tok\"}",
                "--key",
                "K"
            ]
        );
    }

    #[test]
    fn failures() {
        let _cleanup = ["ok", "fail", "slow"].map(|n| Cleanup(dir(n)));
        assert_eq!(push_token(None, None, "fcm", "p", "r", "t"), Err(NotifyError::Disabled));
        let ok = script("ok", "exit 0");
        assert!(matches!(push_token(Some(&ok), None, "", "p", "r", "t"), Err(NotifyError::Invalid(_))));
        assert!(matches!(push_token(Some(&ok), None, "fcm", "p\n", "r", "t"), Err(NotifyError::Invalid(_))));
        let fail = script("fail", "echo 'bad token' >&2\nexit 3");
        match push_token(Some(&fail), None, "fcm", "p", "r", "t") {
            Err(NotifyError::Rejected(m)) => assert!(m.contains("bad token"), "{m}"),
            other => panic!("{other:?}"),
        }
        let missing = PathBuf::from("/nonexistent/flexisip_pusher");
        assert!(matches!(push_token(Some(&missing), None, "fcm", "p", "r", "t"), Err(NotifyError::Unavailable(_))));
        let slow = script("slow", "exec sleep 30");
        let started = Instant::now();
        let r = push_token_with_timeout(Some(&slow), None, "fcm", "p", "r", "t", Duration::from_millis(300));
        assert!(matches!(r, Err(NotifyError::Unavailable(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
