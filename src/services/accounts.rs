//! Accounts: creation, update, deletion, activation, passwords, API keys,
//! and the details the API and the portal show.

use super::{Client, Scope};
use crate::app::App;
use crate::db::accounts::{self as rows, Account, NewAccount, Profile};
use crate::db::{self, dictionary, tokens};
use crate::domain::hash::{self, Algorithm};
use crate::domain::random;
use crate::domain::rules::{self, Input};
use crate::domain::time;
use crate::error::{AppError, AppResult, FieldErrors};
use rusqlite::Connection;

/// An account with everything the API shows about it.
#[derive(Debug, Clone)]
pub struct Details {
    pub account: Account,
    pub passwords: Vec<rows::Password>,
    pub types: Vec<dictionary::AccountType>,
    pub actions: Vec<dictionary::Action>,
    pub email_change: Option<tokens::EmailChange>,
    pub activation_expiration: Option<rows::ActivationExpiration>,
}

pub fn details(conn: &Connection, account: Account) -> rusqlite::Result<Details> {
    let mut many = details_many(conn, vec![account])?;
    Ok(many.remove(0))
}

/// The details of several accounts, in their order: one query per table
/// for the whole list, not per account.
pub fn details_many(conn: &Connection, accounts: Vec<Account>) -> rusqlite::Result<Vec<Details>> {
    if accounts.is_empty() {
        return Ok(vec![]);
    }
    let ids: Vec<i64> = accounts.iter().map(|a| a.id).collect();
    // Actions only exist for accounts with a DTMF protocol.
    let dtmf_ids: Vec<i64> = accounts.iter().filter(|a| a.dtmf_protocol.is_some()).map(|a| a.id).collect();
    let mut passwords = rows::passwords_of_many(conn, &ids)?;
    let mut types = dictionary::types_of_many(conn, &ids)?;
    let mut actions =
        if dtmf_ids.is_empty() { Default::default() } else { dictionary::actions_of_many(conn, &dtmf_ids)? };
    let mut email_changes = tokens::email_changes_of_many(conn, &ids)?;
    let mut expirations = rows::activation_expirations_of_many(conn, &ids)?;
    // Each account's rows are moved out of the maps; an account listed
    // twice gets a copy of its first entry's rows.
    let mut first: std::collections::HashMap<i64, usize> = std::collections::HashMap::with_capacity(accounts.len());
    let mut out: Vec<Details> = Vec::with_capacity(accounts.len());
    for account in accounts {
        let id = account.id;
        let d = match first.get(&id) {
            Some(&i) => Details { account, ..out[i].clone() },
            None => {
                first.insert(id, out.len());
                Details {
                    passwords: passwords.remove(&id).unwrap_or_default(),
                    types: types.remove(&id).unwrap_or_default(),
                    actions: if account.dtmf_protocol.is_some() {
                        actions.remove(&id).unwrap_or_default()
                    } else {
                        vec![]
                    },
                    email_change: email_changes.remove(&id),
                    activation_expiration: expirations.remove(&id),
                    account,
                }
            }
        };
        out.push(d);
    }
    Ok(out)
}

pub fn load_details(app: &App, account: Account) -> AppResult<Details> {
    Ok(app.db.read(|c| details(c, account))?)
}

pub fn load_details_many(app: &App, accounts: Vec<Account>) -> AppResult<Vec<Details>> {
    Ok(app.db.read(|c| details_many(c, accounts))?)
}

/// Reloads an account by id, as a 404 when it is gone.
pub fn reload(app: &App, id: i64) -> AppResult<Account> {
    app.db.read(|c| rows::by_id(c, id))?.ok_or_else(AppError::not_found)
}

// --- lookups within a scope ---

pub fn find(app: &App, scope: &Scope, id: i64) -> AppResult<Account> {
    let account = app.db.read(|c| rows::by_id(c, id))?;
    account.filter(|a| scope.allows(&a.domain)).ok_or_else(AppError::not_found)
}

/// `user@domain`; a value without `@` matches nothing.
pub fn find_by_sip(app: &App, scope: &Scope, sip: &str) -> AppResult<Account> {
    let Some(address) = crate::domain::sip::SipAddress::parse_plain(sip) else {
        return Err(AppError::not_found());
    };
    if !scope.allows(&address.domain) {
        return Err(AppError::not_found());
    }
    app.db.read(|c| rows::by_sip(c, &address.username, &address.domain))?.ok_or_else(AppError::not_found)
}

pub fn find_by_email(app: &App, scope: &Scope, email: &str) -> AppResult<Account> {
    app.db.read(|c| rows::by_email(c, email, scope.domain_filter()))?.ok_or_else(AppError::not_found)
}

// --- validation shared by the creation and update paths ---

/// Validated fields of the admin form / API.
#[derive(Debug, Clone)]
struct AdminFields {
    username: String,
    /// `None` only when the update keeps the stored password.
    password: Option<String>,
    algorithm: Algorithm,
    domain: String,
    activated: bool,
    admin: bool,
    display_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    dtmf_protocol: Option<String>,
    confirmation_key_expires: Option<String>,
}

/// How an admin update treats an empty `password`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordOnUpdate {
    /// `PUT /api/accounts/{id}`: a full replacement, the password included.
    Required,
    /// The portal's edit form: empty keeps the stored password, unless the
    /// username or domain changes (the stored HA1 depends on them).
    KeepWhenEmpty,
}

/// Checks the admin fields; `existing` is the account being updated.
fn validate_admin_fields(
    app: &App,
    conn: &Connection,
    scope: &Scope,
    input: &Input,
    existing: Option<&Account>,
    password_policy: PasswordOnUpdate,
) -> AppResult<AdminFields> {
    let mut errors = FieldErrors::default();
    let username = input.required("username", &mut errors);
    let password = match (existing, password_policy) {
        (Some(_), PasswordOnUpdate::KeepWhenEmpty) => input.optional("password", &mut errors),
        _ => input.required("password", &mut errors),
    };
    let algorithm_text = input.required("algorithm", &mut errors);
    let display_name = input.optional("display_name", &mut errors);
    let email = input.optional("email", &mut errors);
    let phone = input.optional("phone", &mut errors);
    let dtmf_protocol = input.optional("dtmf_protocol", &mut errors);
    let expires = input.optional("confirmation_key_expires", &mut errors);
    let activated = input.boolean("activated", &mut errors).unwrap_or(false);
    let admin = input.boolean("admin", &mut errors).unwrap_or(false);

    // The domain: chosen by the caller only where several domains are managed.
    let domain = match (scope.all_domains, input.optional("domain", &mut errors)) {
        (true, Some(d)) => {
            if d.len() < 3 || d.len() > 64 || d.contains(|c: char| c.is_whitespace() || "@:;<>\"".contains(c)) {
                errors.add("domain", "The domain format is invalid.");
            }
            d
        }
        _ => existing.map(|a| a.domain.clone()).unwrap_or_else(|| scope.domain.clone()),
    };
    let except = existing.map(|a| a.id);

    if let Some(username) = &username {
        app.username_policy().check("username", username, true, &mut errors);
        if rows::username_taken(conn, username, &domain, except)? {
            errors.add("username", rules::taken_message("username"));
        }
    }
    match (&password, existing, &username) {
        (Some(password), _, _) => rules::check_password("password", password, &mut errors),
        (None, Some(a), Some(u)) if *u != a.username || domain != a.domain => errors.add(
            "password",
            "A new password is required when the username or domain changes (the stored hash depends on them).",
        ),
        _ => {}
    }
    let algorithm = rules::check_algorithm("algorithm", algorithm_text.as_deref(), &mut errors);
    if let Some(email) = &email {
        check_email(app, conn, "email", email, except, &mut errors)?;
    }
    if let Some(phone) = &phone {
        check_new_phone(conn, "phone", phone, except, &mut errors)?;
    }
    rules::check_dtmf_protocol("dtmf_protocol", dtmf_protocol.as_deref(), &mut errors);
    if let Some(e) = &expires {
        if time::parse_sql(e).is_none() {
            errors
                .add("confirmation_key_expires", "The confirmation key expires does not match the format Y-m-d H:i:s.");
        }
    }
    if let Some(name) = &display_name {
        if name.chars().count() > 255 || name.contains(['\r', '\n']) {
            errors.add("display_name", "The display name must be a single line of at most 255 characters.");
        }
    }
    errors.into_result()?;
    // Every `None` above added an error, so these are present.
    let (Some(username), Some(algorithm)) = (username, algorithm) else {
        return Err(AppError::unvalidated());
    };
    Ok(AdminFields {
        username,
        password,
        algorithm,
        domain,
        activated,
        admin,
        display_name,
        email,
        phone,
        dtmf_protocol,
        confirmation_key_expires: expires,
    })
}

/// Email format, and uniqueness when `ACCOUNT_EMAIL_UNIQUE` is on.
pub fn check_email(
    app: &App,
    conn: &Connection,
    field: &str,
    email: &str,
    except: Option<i64>,
    errors: &mut FieldErrors,
) -> rusqlite::Result<()> {
    if !rules::is_valid_email(email) {
        errors.add(field, format!("The {} must be a valid email address.", rules::label(field)));
    } else if app.config.account_email_unique && rows::email_taken(conn, email, except)? {
        errors.add(field, rules::taken_message(field));
    }
    Ok(())
}

/// A phone number being given to an account: format, and not already an
/// account's phone or username (any domain).
pub fn check_new_phone(
    conn: &Connection,
    field: &str,
    phone: &str,
    except: Option<i64>,
    errors: &mut FieldErrors,
) -> rusqlite::Result<()> {
    if !rules::is_valid_phone(phone) {
        errors.add(
            field,
            format!("The {} must be a phone number starting with + followed by digits.", rules::label(field)),
        );
    } else if rows::phone_taken(conn, phone, except)? {
        errors.add(field, rules::taken_message(field));
    }
    Ok(())
}

/// HA1 for an account's password, with the configured realm.
pub fn hash_password(app: &App, username: &str, domain: &str, algorithm: Algorithm, password: &str) -> String {
    hash::ha1(algorithm, username, &app.config.realm_for(domain), password)
}

/// Does `password` match one of the account's stored passwords?
pub fn password_matches(app: &App, account: &Account, passwords: &[rows::Password], password: &str) -> bool {
    let realm = app.config.realm_for(&account.domain);
    passwords.iter().any(|row| match Algorithm::parse(&row.algorithm) {
        Some(algorithm) => hash::password_matches(algorithm, &row.password, &account.username, &realm, password),
        None => false,
    })
}

/// Inside a write transaction: attaches an external account when the
/// configuration demands one per new account.
pub fn consume_external_account_if_required(app: &App, conn: &Connection, account_id: i64) -> AppResult<()> {
    if app.config.account_consume_external_account_on_create && !dictionary::consume_external_account(conn, account_id)?
    {
        return Err(AppError::Forbidden("Accounts cannot be created on the server".into()));
    }
    Ok(())
}

/// Maps a UNIQUE violation lost to a concurrent writer to the 422 a
/// sequential request would have received.
pub fn unique_race_to_422(field: &str) -> impl Fn(AppError) -> AppError + '_ {
    move |e| {
        if db::is_unique_violation(&e) {
            crate::error::invalid(field, rules::taken_message(field))
        } else {
            e
        }
    }
}

/// `POST /api/accounts` and the admin form.
pub fn create_by_admin(app: &App, scope: &Scope, input: &Input, client: &Client) -> AppResult<Account> {
    let id = app
        .db
        .write(|tx| {
            let f = validate_admin_fields(app, tx, scope, input, None, PasswordOnUpdate::Required)?;
            let Some(password) = &f.password else {
                return Err(AppError::unvalidated());
            };
            let (confirmation_key, provisioning_token) = if f.activated {
                (None, None)
            } else {
                (Some(random::alphanumeric(random::TOKEN_LEN)), Some(random::alphanumeric(random::TOKEN_LEN)))
            };
            let id = rows::insert(
                tx,
                &NewAccount {
                    username: f.username.clone(),
                    domain: f.domain.clone(),
                    email: f.email,
                    phone: f.phone,
                    activated: f.activated,
                    admin: f.admin,
                    confirmation_key,
                    provisioning_token,
                    ip_address: client.ip.clone(),
                    user_agent: client.user_agent.clone().unwrap_or_else(|| app.config.app_name.clone()),
                    display_name: f.display_name,
                    dtmf_protocol: f.dtmf_protocol,
                    created_at: None,
                },
            )?;
            let hash = hash_password(app, &f.username, &f.domain, f.algorithm, password);
            rows::replace_password(tx, id, &hash, f.algorithm.as_str())?;
            if !f.activated {
                rows::set_activation_expiration(tx, id, f.confirmation_key_expires.as_deref())?;
            }
            consume_external_account_if_required(app, tx, id)?;
            Ok(id)
        })
        .map_err(unique_race_to_422("username"))?;
    let account = reload(app, id)?;
    super::hooks::account_event(app, super::hooks::AccountEvent::Created, &account);
    Ok(account)
}

/// `PUT /api/accounts/{id}` and the admin edit form: a full replacement;
/// absent optional fields are cleared; the password per `password_policy`.
/// Validation comes before the lookup, as in FlexiAPI.
pub fn update_by_admin(
    app: &App,
    scope: &Scope,
    id: i64,
    input: &Input,
    password_policy: PasswordOnUpdate,
) -> AppResult<Account> {
    app.db
        .write(|tx| {
            let existing = rows::by_id(tx, id)?.filter(|a| scope.allows(&a.domain));
            let f = validate_admin_fields(app, tx, scope, input, existing.as_ref(), password_policy)?;
            let Some(existing) = existing else { return Err(AppError::not_found()) };
            rows::update_profile(
                tx,
                existing.id,
                &Profile {
                    username: f.username.clone(),
                    domain: f.domain.clone(),
                    email: f.email,
                    phone: f.phone,
                    admin: f.admin,
                    display_name: f.display_name,
                    dtmf_protocol: f.dtmf_protocol,
                },
            )?;
            if let Some(password) = &f.password {
                let hash = hash_password(app, &f.username, &f.domain, f.algorithm, password);
                rows::replace_password(tx, existing.id, &hash, f.algorithm.as_str())?;
            }
            Ok(())
        })
        .map_err(unique_race_to_422("username"))?;
    let account = reload(app, id)?;
    super::hooks::account_event(app, super::hooks::AccountEvent::Edited, &account);
    Ok(account)
}

/// Deletes an account, leaving a tombstone that blocks public reuse.
pub fn delete(app: &App, account: &Account) -> AppResult<usize> {
    let deleted = app.db.write(|tx| Ok(rows::delete_with_tombstone(tx, account)?))?;
    if deleted > 0 {
        super::hooks::account_event(app, super::hooks::AccountEvent::Deleted, account);
    }
    Ok(deleted)
}

pub fn set_activated(app: &App, account: &Account, activated: bool) -> AppResult<Account> {
    app.db.write(|tx| Ok(rows::set_activated(tx, account.id, activated)?))?;
    let reloaded = reload(app, account.id)?;
    let event = if activated { super::hooks::AccountEvent::Activated } else { super::hooks::AccountEvent::Edited };
    super::hooks::account_event(app, event, &reloaded);
    Ok(reloaded)
}

/// A fresh provisioning token (the previous one stops working).
pub fn renew_provisioning_token(app: &App, account: &Account) -> AppResult<Account> {
    let token = random::alphanumeric(random::TOKEN_LEN);
    app.db.write(|tx| Ok(rows::set_provisioning_token(tx, account.id, Some(&token))?))?;
    reload(app, account.id)
}

/// A new API key for the account; the previous one stops working.
pub fn generate_api_key(app: &App, account_id: i64) -> AppResult<String> {
    let key = random::alphanumeric(random::API_KEY_LEN);
    app.db.write(|tx| Ok(db::auth::replace_api_key(tx, account_id, &key)?))?;
    Ok(key)
}

/// Stores a new password (one row), for the chosen algorithm.
pub fn set_password(
    app: &App,
    conn: &Connection,
    account: &Account,
    algorithm: Algorithm,
    password: &str,
) -> AppResult<()> {
    let hash = hash_password(app, &account.username, &account.domain, algorithm, password);
    rows::replace_password(conn, account.id, &hash, algorithm.as_str())?;
    Ok(())
}

/// Result of `create_admin_account` for the CLI.
pub struct CreatedAdmin {
    pub account: Account,
    pub generated_password: Option<String>,
    pub api_key: String,
}

/// `accounts:create-admin-account`: an activated admin, replacing any
/// account with the same address; random username/password when not given.
pub fn create_admin_account(
    app: &App,
    username: Option<&str>,
    password: Option<&str>,
    domain: Option<&str>,
) -> AppResult<CreatedAdmin> {
    let username =
        username.map(str::to_string).unwrap_or_else(|| format!("admin{}", random::alphanumeric(8).to_lowercase()));
    let generated_password = if password.is_none() { Some(random::alphanumeric(16)) } else { None };
    let password = password.map(str::to_string).or_else(|| generated_password.clone()).unwrap_or_default();
    let domain = domain.unwrap_or(&app.config.sip_domain).to_string();

    // The operator's own account: any non-empty name and password (the
    // reference's default is `admin`), the other username rules still apply.
    let mut errors = FieldErrors::default();
    app.username_policy().check_with_minimum("username", &username, true, 1, &mut errors);
    rules::check_password_with_minimum("password", &password, 1, &mut errors);
    if domain.is_empty() || domain.contains(|c: char| c.is_whitespace() || c == '@') {
        errors.add("domain", "The domain format is invalid.");
    }
    errors.into_result()?;

    let id = app.db.write(|tx| {
        if let Some(existing) = rows::by_sip(tx, &username, &domain)? {
            db::maintenance::delete_accounts(tx, &[existing.id])?;
        }
        let id = rows::insert(
            tx,
            &NewAccount {
                username: username.clone(),
                domain: domain.clone(),
                activated: true,
                admin: true,
                ip_address: "0.0.0.0".into(),
                user_agent: "flexiapi console".into(),
                // Three years back, so clear-unconfirmed never sees it as new.
                created_at: Some(time::format_sql(time::now_unix() - 3 * 365 * 86_400)),
                ..NewAccount::default()
            },
        )?;
        let hash = hash_password(app, &username, &domain, Algorithm::Sha256, &password);
        rows::replace_password(tx, id, &hash, Algorithm::Sha256.as_str())?;
        Ok(id)
    })?;
    let api_key = generate_api_key(app, id)?;
    let account = reload(app, id)?;
    super::hooks::account_event(app, super::hooks::AccountEvent::Created, &account);
    Ok(CreatedAdmin { account, generated_password, api_key })
}
