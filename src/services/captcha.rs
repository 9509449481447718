//! The portal's human check (web.md 4.6): reCAPTCHA v2. The rule lives
//! here once; the forms that ask for it (email and phone registration,
//! email and phone recovery, request-token validation) call [`check`]
//! before anything else, so a failed check changes nothing.
//!
//! Off unless both `NOCAPTCHA_SITEKEY` and `NOCAPTCHA_SECRET` are real
//! values: then nothing is checked and no widget is shown (tests,
//! air-gapped installs). When on, a network failure fails closed.

use crate::app::App;
use crate::domain::rules::Input;
use crate::error::{invalid, AppResult};
use std::time::Duration;

/// The form field the widget fills.
pub const FIELD: &str = "g-recaptcha-response";
/// No answer posted (the box was not ticked).
pub const MISSING: &str = "Please verify that you are not a robot.";
/// The verification said no, or could not be asked.
pub const FAILED: &str = "Captcha error! Try again later or contact the site admin.";
/// The longest a verification may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest verification reply read.
const MAX_REPLY: u64 = 64 * 1024;
/// Longest answer forwarded (Google's are about 2 KB).
const MAX_RESPONSE_LEN: usize = 8 * 1024;

/// The site key to show in the widget, when the captcha is on.
pub fn site_key(app: &App) -> Option<&str> {
    let c = &app.config.captcha;
    c.enabled().then_some(c.site_key.as_str())
}

/// The form's answer, checked (nothing to do when the captcha is off).
pub fn check(app: &App, input: &Input, client_ip: &str) -> AppResult<()> {
    if !app.config.captcha.enabled() {
        return Ok(());
    }
    verify(app, &input.text(FIELD).unwrap_or_default(), client_ip)
}

/// Asks the verification endpoint about `response`; a validation error on
/// [`FIELD`] when it is empty, refused, or the endpoint cannot be reached.
pub fn verify(app: &App, response: &str, client_ip: &str) -> AppResult<()> {
    let config = &app.config.captcha;
    if !config.enabled() {
        return Ok(());
    }
    let response = response.trim();
    if response.is_empty() {
        return Err(invalid(FIELD, MISSING));
    }
    if response.len() > MAX_RESPONSE_LEN {
        return Err(invalid(FIELD, FAILED));
    }
    match ask(&config.verify_url, &config.secret, response, client_ip) {
        Ok(Verdict { success: true, .. }) => Ok(()),
        Ok(Verdict { success: false, codes }) => {
            // The operator's mistakes deserve a log line; a visitor's do not.
            if codes.iter().any(|c| c.contains("secret")) {
                crate::log_line!(
                    "error: captcha: {} refused NOCAPTCHA_SECRET: {}",
                    config.verify_url,
                    codes.join(", ")
                );
            }
            Err(invalid(FIELD, FAILED))
        }
        Err(reason) => {
            crate::log_line!("error: captcha: {}: {reason}", config.verify_url);
            Err(invalid(FIELD, FAILED))
        }
    }
}

/// For `doctor`: asks the verifier about a dummy answer. Reachable and the
/// secret accepted (the answer itself is refused, as it should be) → Ok.
pub fn probe(config: &crate::config::CaptchaConfig) -> Result<(), String> {
    let verdict = ask(&config.verify_url, &config.secret, "flexiapi-doctor-probe", "")?;
    match verdict.codes.iter().find(|c| c.contains("secret")) {
        Some(code) => Err(format!("NOCAPTCHA_SECRET refused ({code})")),
        None => Ok(()),
    }
}

struct Verdict {
    success: bool,
    codes: Vec<String>,
}

/// One POST, bounded by [`TIMEOUT`] as a whole.
fn ask(url: &str, secret: &str, response: &str, client_ip: &str) -> Result<Verdict, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .max_redirects(0)
        .user_agent("flexiapi")
        .build()
        .into();
    let mut form = vec![("secret", secret), ("response", response)];
    if !client_ip.is_empty() {
        form.push(("remoteip", client_ip));
    }
    let mut reply = agent.post(url).send_form(form).map_err(|e| e.to_string())?;
    let status = reply.status().as_u16();
    let body =
        reply.body_mut().with_config().limit(MAX_REPLY).lossy_utf8(true).read_to_string().map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("HTTP {status}"));
    }
    let json: serde_json::Value = serde_json::from_str(&body).map_err(|_| "the reply is not JSON".to_string())?;
    let codes = json
        .get("error-codes")
        .and_then(|c| c.as_array())
        .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    Ok(Verdict { success: json.get("success").and_then(|s| s.as_bool()) == Some(true), codes })
}
