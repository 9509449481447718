//! Public sign-up, activation and recovery: accounts created by their
//! owner (API with a creation token, or the portal after its own check),
//! activated with a code sent by mail or SMS, recovered by phone or email.
//!
//! Codes come from the OS CSPRNG, work once (conditional UPDATE) and
//! expire: PINs after [`PIN_MINUTES`], mailed keys after
//! [`MAIL_CODE_MINUTES`], counted from the account's last update (the
//! schema keeps no separate issue time; later updates can only lengthen
//! the window). A wrong code changes nothing.

use super::accounts::{self, check_email, check_new_phone, hash_password, unique_race_to_422};
use super::hooks::{self, AccountEvent};
use super::notifications::{self, Channel, MAIL_CODE_MINUTES, PIN_MINUTES};
use super::tokens::INVALID_CREATION_TOKEN;
use super::{Client, Scope};
use crate::app::App;
use crate::db::accounts::{self as rows, Account, NewAccount};
use crate::db::{self, tokens};
use crate::domain::hash::Algorithm;
use crate::domain::random;
use crate::domain::rules::{self, Input};
use crate::domain::time;
use crate::error::{invalid, AppError, AppResult, FieldErrors};
use crate::notify::mail::MailKind;
use crate::notify::sms::SmsKind;
use rusqlite::Connection;

/// Where a public registration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `POST /api/accounts/public`: `account_creation_token` and `algorithm`
    /// are required.
    Api,
    /// The portal's sign-up forms: the caller already checked its captcha;
    /// `algorithm` defaults to SHA-256, and `password_confirmation`, when
    /// sent, must match.
    Web,
}

/// The 404 of a path switched off by the configuration.
fn disabled() -> AppError {
    AppError::NotFound(String::new())
}

/// Validated sign-up fields.
struct SignUp {
    username: String,
    /// None on the portal's forms: the password is set after activation
    /// (seed 000 "Password completion").
    password: Option<String>,
    algorithm: Algorithm,
    domain: String,
    email: Option<String>,
    phone: Option<String>,
    token: Option<String>,
}

/// A client-chosen `domain` is accepted only when this server serves it
/// (the default domain or a Space), so nobody creates accounts elsewhere.
fn served_domain(app: &App, conn: &Connection, domain: &str) -> rusqlite::Result<bool> {
    Ok(domain == app.config.sip_domain || db::web::space_by_domain(conn, domain)?.is_some())
}

fn check_token(conn: &Connection, token: Option<&str>, errors: &mut FieldErrors) -> rusqlite::Result<()> {
    if let Some(token) = token {
        if token.len() != random::TOKEN_LEN || !tokens::creation_token_usable(conn, token)? {
            errors.add("account_creation_token", INVALID_CREATION_TOKEN);
        }
    }
    Ok(())
}

fn validate_sign_up(app: &App, conn: &Connection, domain: &str, input: &Input, origin: Origin) -> AppResult<SignUp> {
    let mut errors = FieldErrors::default();
    let username = input.optional("username", &mut errors);
    let phone = input.optional("phone", &mut errors);
    let email = input.optional("email", &mut errors);
    let password = match origin {
        Origin::Api => input.required("password", &mut errors),
        Origin::Web => input.optional("password", &mut errors),
    };
    let algorithm_text = match origin {
        Origin::Api => input.required("algorithm", &mut errors),
        Origin::Web => input.optional("algorithm", &mut errors).or_else(|| Some("SHA-256".into())),
    };
    let token = match origin {
        Origin::Api => input.required("account_creation_token", &mut errors),
        Origin::Web => None,
    };
    let chosen_domain = input.optional("domain", &mut errors);

    if username.is_none() && phone.is_none() {
        errors.add("username", "The username field is required when phone is not present.");
    }
    if email.is_none() && phone.is_none() {
        errors.add("email", "The email field is required when phone is not present.");
    }
    let domain = match chosen_domain {
        Some(d) if d != domain => {
            if !served_domain(app, conn, &d)? {
                errors.add("domain", rules::invalid_choice_message("domain"));
            }
            d
        }
        _ => domain.to_string(),
    };
    if let Some(u) = &username {
        app.username_policy().check("username", u, true, &mut errors);
        if rows::username_taken(conn, u, &domain, None)? || rows::tombstoned(conn, u, &domain)? {
            errors.add("username", rules::taken_message("username"));
        }
    }
    if let Some(p) = &phone {
        check_new_phone(conn, "phone", p, None, &mut errors)?;
        // The phone becomes the username when none is given.
        if username.is_none() && !errors.has("phone") && rows::tombstoned(conn, p, &domain)? {
            errors.add("phone", rules::taken_message("phone"));
        }
    }
    if let Some(e) = &email {
        check_email(app, conn, "email", e, None, &mut errors)?;
    }
    if let Some(p) = &password {
        rules::check_password("password", p, &mut errors);
        if origin == Origin::Web
            && input.has_key("password_confirmation")
            && input.text("password_confirmation").as_deref() != Some(p)
        {
            errors.add("password_confirmation", "The password confirmation does not match.");
        }
    }
    let algorithm = rules::check_algorithm("algorithm", algorithm_text.as_deref(), &mut errors);
    check_token(conn, token.as_deref(), &mut errors)?;
    errors.into_result()?;
    let Some(algorithm) = algorithm else { return Err(AppError::unvalidated()) };
    let Some(username) = username.clone().or_else(|| phone.clone()) else {
        return Err(AppError::unvalidated());
    };
    Ok(SignUp { username, password, algorithm, domain, email, phone, token })
}

/// Public sign-up (`POST /api/accounts/public`, the portal's email and
/// phone forms). `domain` is the Space's domain. With `phone` the account
/// gets a 4-digit PIN sent by SMS (username = phone when none is given);
/// otherwise a 13-char key mailed as `<APP_URL>/authenticate/email/<key>`.
/// The account is not activated. A failed mail/SMS is logged (the account
/// exists; the owner asks again through recovery). 404 when a phone is
/// given and `PHONE_AUTHENTICATION` is off; 429 past the sending limits.
pub fn register(app: &App, domain: &str, input: &Input, origin: Origin, client: &Client) -> AppResult<Account> {
    if input.filled("phone") && !app.config.phone_authentication {
        return Err(disabled());
    }
    // A first pass outside the write lock, so a refused request does not
    // queue writers.
    let first = app.db.read(|c| Ok(validate_sign_up(app, c, domain, input, origin)))?;
    let first = first?;

    let id = app
        .db
        .write(|tx| {
            let f = validate_sign_up(app, tx, domain, input, origin)?;
            // Counted in the creation's transaction, after validation: a
            // collision is a 422, never a 429, and only a created account
            // spends the sending allowance.
            match (&f.phone, &f.email) {
                (Some(phone), _) => notifications::throttle_in(tx, Channel::Sms, phone, &client.ip)?,
                (None, Some(email)) => notifications::throttle_in(tx, Channel::Mail, email, &client.ip)?,
                (None, None) => {}
            }
            let confirmation_key =
                if f.phone.is_some() { random::pin() } else { random::alphanumeric(random::TOKEN_LEN) };
            let id = rows::insert(
                tx,
                &NewAccount {
                    username: f.username.clone(),
                    domain: f.domain.clone(),
                    email: f.email.clone(),
                    phone: f.phone.clone(),
                    activated: false,
                    admin: false,
                    confirmation_key: Some(confirmation_key),
                    provisioning_token: Some(random::alphanumeric(random::TOKEN_LEN)),
                    ip_address: client.ip.clone(),
                    user_agent: client.user_agent.clone().unwrap_or_else(|| app.config.app_name.clone()),
                    display_name: None,
                    dtmf_protocol: None,
                    created_at: None,
                },
            )?;
            if let Some(password) = &f.password {
                let hash = hash_password(app, &f.username, &f.domain, f.algorithm, password);
                rows::replace_password(tx, id, &hash, f.algorithm.as_str())?;
            }
            if let Some(token) = &f.token {
                if !tokens::use_creation_token(tx, token, id)? {
                    return Err(invalid("account_creation_token", INVALID_CREATION_TOKEN));
                }
            }
            accounts::consume_external_account_if_required(app, tx, id)?;
            Ok(id)
        })
        .map_err(unique_race_to_422(if first.phone.is_some() && input.text("username").is_none() {
            "phone"
        } else {
            "username"
        }))?;
    let account = accounts::reload(app, id)?;
    hooks::account_event(app, AccountEvent::Created, &account);
    send_activation_code(app, &account);
    Ok(account)
}

/// Sends the account's activation code: SMS when it has a phone and a PIN,
/// else the registration mail. Failures are logged only.
fn send_activation_code(app: &App, account: &Account) {
    let Some(key) = &account.confirmation_key else { return };
    match (&account.phone, &account.email) {
        (Some(phone), _) if key.len() == 4 => notifications::send_sms_logged(app, phone, SmsKind::Creation, key),
        (_, Some(email)) => notifications::send_mail_logged(
            app,
            email,
            MailKind::RegisterConfirmation { link: app.config.url(&format!("/authenticate/email/{key}")) },
        ),
        _ => {}
    }
}

/// Validated fields of a sign-up with a creation token.
struct TokenSignUp {
    username: String,
    password: String,
    algorithm: Algorithm,
    dtmf: Option<String>,
    email: Option<String>,
    token: String,
}

/// `POST /api/accounts/with-account-creation-token`: an account in the
/// Space's domain, not activated, without confirmation key (it is
/// activated by provisioning), paid for with a creation token.
pub fn register_with_token(app: &App, domain: &str, input: &Input) -> AppResult<Account> {
    let validate = |conn: &Connection| -> AppResult<TokenSignUp> {
        let mut errors = FieldErrors::default();
        let username = input.required("username", &mut errors);
        let password = input.required("password", &mut errors);
        let algorithm_text = input.required("algorithm", &mut errors);
        let token = input.required("account_creation_token", &mut errors);
        let dtmf = input.optional("dtmf_protocol", &mut errors);
        let email = input.optional("email", &mut errors);
        if let Some(u) = &username {
            app.username_policy().check("username", u, true, &mut errors);
            if rows::username_taken(conn, u, domain, None)? || rows::tombstoned(conn, u, domain)? {
                errors.add("username", rules::taken_message("username"));
            }
        }
        if let Some(p) = &password {
            rules::check_password("password", p, &mut errors);
        }
        let algorithm = rules::check_algorithm("algorithm", algorithm_text.as_deref(), &mut errors);
        rules::check_dtmf_protocol("dtmf_protocol", dtmf.as_deref(), &mut errors);
        if let Some(e) = &email {
            check_email(app, conn, "email", e, None, &mut errors)?;
        }
        check_token(conn, token.as_deref(), &mut errors)?;
        errors.into_result()?;
        match (username, password, algorithm, token) {
            (Some(username), Some(password), Some(algorithm), Some(token)) => {
                Ok(TokenSignUp { username, password, algorithm, dtmf, email, token })
            }
            _ => Err(AppError::unvalidated()),
        }
    };
    let id = app
        .db
        .write(|tx| {
            let TokenSignUp { username, password, algorithm, dtmf, email, token } = validate(tx)?;
            let id = rows::insert(
                tx,
                &NewAccount {
                    username: username.clone(),
                    domain: domain.to_string(),
                    email,
                    activated: false,
                    provisioning_token: Some(random::alphanumeric(random::TOKEN_LEN)),
                    ip_address: String::new(),
                    user_agent: app.config.app_name.clone(),
                    dtmf_protocol: dtmf,
                    ..NewAccount::default()
                },
            )?;
            let hash = hash_password(app, &username, domain, algorithm, &password);
            rows::replace_password(tx, id, &hash, algorithm.as_str())?;
            if !tokens::use_creation_token(tx, &token, id)? {
                return Err(invalid("account_creation_token", INVALID_CREATION_TOKEN));
            }
            accounts::consume_external_account_if_required(app, tx, id)?;
            Ok(id)
        })
        .map_err(unique_race_to_422("username"))?;
    let account = accounts::reload(app, id)?;
    hooks::account_event(app, AccountEvent::Created, &account);
    Ok(account)
}

// --- public information ---

/// `GET /api/accounts/{sip}/info`: (activated, realm) of an account of the
/// Space's domain; 404 otherwise.
pub fn info(app: &App, scope: &Scope, sip: &str) -> AppResult<Account> {
    accounts::find_by_sip(app, scope, sip)
}

/// `GET /api/accounts/{phone}/info-by-phone`: the account holding that
/// phone (any domain), else the account named by it in the Space's domain.
/// Returns the account and whether it was found through its phone.
/// 422 when `phone` is not a phone number; 404 when unknown or when
/// `PHONE_AUTHENTICATION` is off.
pub fn info_by_phone(app: &App, scope: &Scope, phone: &str) -> AppResult<(Account, bool)> {
    if !app.config.phone_authentication {
        return Err(disabled());
    }
    if !rules::is_valid_phone(phone) {
        return Err(invalid("phone", "The phone must be a phone number starting with + followed by digits."));
    }
    app.db
        .read(|c| {
            if let Some(a) = rows::by_phone(c, phone)? {
                return Ok(Some((a, true)));
            }
            Ok(rows::by_sip(c, phone, &scope.domain)?.map(|a| (a, false)))
        })?
        .ok_or_else(AppError::not_found)
}

/// The account a phone number designates: its phone (any domain), else
/// its username in `domain`.
fn by_phone_or_username(app: &App, phone: &str, domain: &str) -> AppResult<Option<Account>> {
    app.db.read(|c| match rows::by_phone(c, phone)? {
        Some(a) => Ok(Some(a)),
        None => rows::by_sip(c, phone, domain),
    })
}

// --- activation ---

/// Which code an activation expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// 13 characters, from the registration or recovery mail.
    Email,
    /// 4 digits, from an SMS.
    Phone,
}

/// Has the code set on `account` outlived its validity?
fn code_expired(account: &Account, key: &str) -> bool {
    let minutes = if key.len() == 4 { PIN_MINUTES } else { MAIL_CODE_MINUTES };
    time::parse_sql(&account.updated_at).is_some_and(|t| t < time::now_unix() - minutes * 60)
}

/// `POST /api/accounts/{sip}/activate/email|phone`: `confirmation_key`
/// (or `code`) of the right shape (else 422); the account of the Space
/// with that key (else 404, nothing changed); activation window or code
/// expired → 403 `Activation expired`; else activated, key cleared.
/// Guesses are limited per account (429).
pub fn activate(app: &App, scope: &Scope, sip: &str, input: &Input, kind: CodeKind) -> AppResult<Account> {
    if kind == CodeKind::Phone && !app.config.phone_authentication {
        return Err(disabled());
    }
    let field = "confirmation_key";
    let mut errors = FieldErrors::default();
    let key = input.optional(field, &mut errors).or_else(|| input.optional("code", &mut errors));
    let Some(key) = key else {
        return Err(invalid(field, rules::required_message(field)));
    };
    let well_formed = match kind {
        CodeKind::Email => key.chars().count() == random::TOKEN_LEN,
        CodeKind::Phone => key.len() == 4 && key.bytes().all(|b| b.is_ascii_digit()),
    };
    if !well_formed {
        let size = if kind == CodeKind::Email { random::TOKEN_LEN } else { 4 };
        return Err(invalid(field, format!("The confirmation key must be {size} characters.")));
    }
    notifications::throttle_code_attempts(app, "activate", &sip.to_lowercase())?;
    let account = accounts::find_by_sip(app, scope, sip)?;
    activate_account_with_key(app, &account, &key)
}

/// Activates `account` with `key` if it is its current confirmation key:
/// wrong key → 404 (nothing changed); expired → 403; concurrent use → 404.
/// For the portal's code forms (`/login/phone`, ...).
pub fn activate_account_with_key(app: &App, account: &Account, key: &str) -> AppResult<Account> {
    let matches = account
        .confirmation_key
        .as_deref()
        .is_some_and(|k| crate::domain::hash::constant_time_eq(k.as_bytes(), key.as_bytes()));
    if !matches {
        return Err(AppError::not_found());
    }
    let expired = app.db.read(|c| rows::activation_expired(c, account.id))?;
    if expired || code_expired(account, key) {
        return Err(AppError::Forbidden("Activation expired".into()));
    }
    if !app.db.write(|tx| Ok(rows::consume_confirmation_key(tx, account.id, key)?))? {
        return Err(AppError::not_found());
    }
    let account = accounts::reload(app, account.id)?;
    if account.activated {
        hooks::account_event(app, AccountEvent::Activated, &account);
    }
    Ok(account)
}

/// The portal's `/authenticate/email/{key}`: the account of `domain` whose
/// mailed key this is, activated, key consumed; 404 for an unknown key,
/// 403 when expired.
pub fn activate_by_mailed_key(app: &App, domain: &str, key: &str) -> AppResult<Account> {
    if key.len() != random::TOKEN_LEN {
        return Err(AppError::not_found());
    }
    let account = app.db.read(|c| rows::by_confirmation_key(c, key, Some(domain)))?.ok_or_else(AppError::not_found)?;
    activate_account_with_key(app, &account, key)
}

// --- recovery ---

/// Gives the account a new PIN and texts it (`recovery code`). 503 when
/// the SMS cannot be sent, 429 past the limits, 404 when
/// `PHONE_AUTHENTICATION` is off. For the API and the portal's
/// `/recovery/phone`.
pub fn send_recovery_sms(app: &App, account: &Account, client_ip: &str) -> AppResult<()> {
    if !app.config.phone_authentication {
        return Err(disabled());
    }
    let Some(phone) =
        account.phone.clone().or_else(|| rules::is_valid_phone(&account.username).then(|| account.username.clone()))
    else {
        return Err(invalid("phone", "The account has no phone number."));
    };
    notifications::throttle(app, Channel::Sms, &phone, client_ip)?;
    let pin = random::pin();
    app.db.write(|tx| Ok(rows::set_confirmation_key(tx, account.id, Some(&pin))?))?;
    notifications::send_sms(app, &phone, SmsKind::Recovery, &pin)
}

/// `POST /api/accounts/recover-by-phone`: `phone` (+digits) and a creation
/// token (spent, linked to the account) → a recovery PIN by SMS. 422 for
/// bad fields or token, 404 for an unknown phone.
pub fn recover_by_phone(app: &App, scope: &Scope, input: &Input, client_ip: &str) -> AppResult<()> {
    if !app.config.phone_authentication {
        return Err(disabled());
    }
    let mut errors = FieldErrors::default();
    let phone = input.required("phone", &mut errors);
    let token = input.required("account_creation_token", &mut errors);
    if phone.as_deref().is_some_and(|p| !rules::is_valid_phone(p)) {
        errors.add("phone", "The phone must be a phone number starting with + followed by digits.");
    }
    app.db.read(|c| check_token(c, token.as_deref(), &mut errors))?;
    errors.into_result()?;
    let (Some(phone), Some(token)) = (phone, token) else {
        return Err(AppError::unvalidated());
    };
    let account = by_phone_or_username(app, &phone, &scope.domain)?.ok_or_else(AppError::not_found)?;
    notifications::throttle(app, Channel::Sms, &phone, client_ip)?;
    let pin = random::pin();
    app.db.write(|tx| {
        if !tokens::use_creation_token(tx, &token, account.id)? {
            return Err(invalid("account_creation_token", INVALID_CREATION_TOKEN));
        }
        rows::set_confirmation_key(tx, account.id, Some(&pin))?;
        Ok(())
    })?;
    let sent = notifications::send_sms(app, &phone, SmsKind::Recovery, &pin);
    if sent.is_err() {
        // Not sent: the account keeps its key and the token stays usable.
        let previous = account.confirmation_key.clone();
        let _ = app.db.write(|tx| {
            if rows::by_id(tx, account.id)?.is_some_and(|a| a.confirmation_key.as_deref() == Some(pin.as_str())) {
                rows::set_confirmation_key(tx, account.id, previous.as_deref())?;
                tokens::unuse_creation_token(tx, &token, account.id)?;
            }
            Ok(())
        });
    }
    sent
}

/// `GET /api/accounts/{sip}/recover/{key}`: `{sip}` is `user@domain` or
/// `phone@domain` in the Space's domain; the key must be the account's
/// current confirmation key (else 404); expired → 403; else the account is
/// activated and the key consumed (a second call → 404).
pub fn recover_by_key(app: &App, scope: &Scope, sip: &str, key: &str) -> AppResult<Account> {
    notifications::throttle_code_attempts(app, "recover", &sip.to_lowercase())?;
    let account = match accounts::find_by_sip(app, scope, sip) {
        Ok(a) => a,
        Err(AppError::NotFound(m)) => {
            let address = crate::domain::sip::SipAddress::parse_plain(sip).ok_or(AppError::NotFound(m))?;
            if address.domain != scope.domain || !rules::is_valid_phone(&address.username) {
                return Err(AppError::not_found());
            }
            app.db
                .read(|c| rows::by_phone(c, &address.username))?
                .filter(|a| a.domain == scope.domain)
                .ok_or_else(AppError::not_found)?
        }
        Err(e) => return Err(e),
    };
    activate_account_with_key(app, &account, key)
}

/// `POST /api/accounts/{id}/recover-by-email` and the portal's
/// `/recovery/email`: new confirmation key and provisioning token, and the
/// "Password Authentication" mail with the login link and the QR link.
/// 422 when the account has no email; 429 past the limits; 503 when the
/// mail cannot be sent.
pub fn send_recovery_email(app: &App, account: &Account, client_ip: &str) -> AppResult<Account> {
    let Some(email) = account.email.clone() else {
        return Err(invalid("email", "The account has no email address."));
    };
    notifications::throttle(app, Channel::Mail, &email, client_ip)?;
    let key = random::alphanumeric(random::TOKEN_LEN);
    let token = random::alphanumeric(random::TOKEN_LEN);
    app.db.write(|tx| {
        rows::set_confirmation_key(tx, account.id, Some(&key))?;
        rows::set_provisioning_token(tx, account.id, Some(&token))?;
        Ok(())
    })?;
    let kind = MailKind::PasswordAuthentication {
        link: app.config.url(&format!("/authenticate/email/{key}")),
        qr_link: app.config.url(&format!("/provisioning/qrcode/{token}?reset_password=1")),
    };
    if let Err(e) = notifications::send_mail(app, &email, kind) {
        // Not sent: the links already given out keep working.
        let _ = app.db.write(|tx| {
            if rows::by_id(tx, account.id)?.is_some_and(|a| a.provisioning_token.as_deref() == Some(token.as_str())) {
                rows::set_confirmation_key(tx, account.id, account.confirmation_key.as_deref())?;
                rows::set_provisioning_token(tx, account.id, account.provisioning_token.as_deref())?;
            }
            Ok(())
        });
        return Err(e);
    }
    accounts::reload(app, account.id)
}
