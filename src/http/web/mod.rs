//! The web portal: server-rendered pages (maud, `crate::views`), embedded
//! assets, server-side sessions, CSRF on every form. Handlers are thin:
//! they read the form, call a service, and render a page or redirect.
//!
//! Every portal route goes through [`run`], which loads the session, checks
//! the CSRF token of non-GET requests, maps errors to HTML pages (one
//! function, [`error_page`]), saves the session and adds the security headers.

pub mod admin;
pub mod assets;
pub mod docs;
pub mod login;
pub mod panel;
pub mod qr_login;
pub mod recovery;
pub mod register;
pub mod session;

use super::router::{route, Route};
use super::{Ctx, HttpResult};
use crate::db::accounts::Account;
use crate::domain::rules::Input;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::views::{self, Lang, Page};
use maud::Markup;
use rouille::Response;
use session::Session;
use std::cell::RefCell;

/// A portal request: the HTTP context, the language, the session.
pub struct Web<'a> {
    pub ctx: &'a Ctx<'a>,
    pub lang: Lang,
    session: RefCell<Option<Session>>,
    account: RefCell<Option<Account>>,
    /// The form, parsed once (POST bodies).
    form: std::cell::OnceCell<Input>,
    /// The page shows the captcha widget: its CSP admits Google's frames
    /// and scripts.
    captcha: std::cell::Cell<bool>,
}

impl<'a> Web<'a> {
    fn new(ctx: &'a Ctx<'a>) -> AppResult<Web<'a>> {
        let session = session::load(ctx)?;
        let account = match session.as_ref().and_then(|s| s.account_id) {
            Some(id) => ctx.app.db.read(|c| crate::db::accounts::by_id(c, id))?,
            None => None,
        };
        // An account moved out of this Space's domain is not logged in here.
        let account = account.filter(|a| ctx.space_admits(a));
        Ok(Web {
            ctx,
            lang: Lang::from_accept_language(ctx.header("Accept-Language")),
            session: RefCell::new(session),
            account: RefCell::new(account),
            form: Default::default(),
            captcha: Default::default(),
        })
    }

    pub fn config(&self) -> &crate::config::Config {
        &self.ctx.app.config
    }

    pub fn t(&self, text: &'static str) -> &'static str {
        self.lang.t(text)
    }

    pub fn form(&self) -> &Input {
        self.form.get_or_init(|| self.ctx.form_input())
    }

    /// The form with `algorithm` set from the `password_sha256` checkbox,
    /// as the services expect it (every portal form that takes a password).
    pub fn form_with_algorithm(&self) -> Input {
        let mut input = self.form().clone();
        let algorithm = if input.filled("password_sha256") { "SHA-256" } else { "MD5" };
        input.set("algorithm", serde_json::Value::String(algorithm.into()));
        input
    }

    /// A numeric id posted in a hidden field; 404 when absent or malformed.
    pub fn form_id(&self, field: &str) -> AppResult<i64> {
        self.form().text(field).and_then(|s| super::router::id(&s)).ok_or_else(AppError::not_found)
    }

    /// The logged-in account, if any.
    pub fn account(&self) -> Option<Account> {
        self.account.borrow().clone()
    }

    /// The logged-in account; a guest is sent home (web.md 1.1), or gets
    /// a JSON 401 when it asked for JSON.
    pub fn user(&self) -> Result<Account, Response> {
        self.account().ok_or_else(|| {
            if self.ctx.wants_json() {
                Response::json(&serde_json::json!({"message": "Unauthenticated."})).with_status_code(401)
            } else {
                Response::redirect_302("/")
            }
        })
    }

    /// The logged-in admin; a redirect to `/login` for guests, 403 otherwise.
    pub fn admin(&self) -> Result<Account, Outcome> {
        match self.account() {
            None => Err(Outcome::Page(Response::redirect_302("/login"))),
            Some(a) if a.admin => Ok(a),
            Some(_) => Err(Outcome::Error(AppError::Forbidden("Unauthorized area".into()))),
        }
    }

    /// The session, created when missing (pages with forms need one).
    fn ensure_session(&self) -> AppResult<()> {
        if self.session.borrow().is_none() {
            let created = session::create(self.ctx, None, Default::default())?;
            *self.session.borrow_mut() = Some(created);
        }
        Ok(())
    }

    pub fn csrf_token(&self) -> AppResult<String> {
        self.ensure_session()?;
        Ok(self.session.borrow().as_ref().map(|s| s.csrf.clone()).unwrap_or_default())
    }

    /// A one-shot message shown on the next page (`success` or `error`).
    pub fn flash(&self, kind: &str, message: impl Into<String>) -> AppResult<()> {
        self.set(&format!("flash_{kind}"), serde_json::Value::String(message.into()))
    }

    fn take_flash(&self, kind: &str) -> Option<String> {
        self.take(&format!("flash_{kind}")).and_then(|v| v.as_str().map(str::to_string))
    }

    /// Stores a value in the session.
    pub fn set(&self, key: &str, value: serde_json::Value) -> AppResult<()> {
        self.ensure_session()?;
        if let Some(s) = self.session.borrow_mut().as_mut() {
            s.data.insert(key.to_string(), value);
            s.dirty = true;
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<serde_json::Value> {
        self.session.borrow().as_ref().and_then(|s| s.data.get(key).cloned())
    }

    pub fn take(&self, key: &str) -> Option<serde_json::Value> {
        let mut slot = self.session.borrow_mut();
        let s = slot.as_mut()?;
        let value = s.data.remove(key);
        if value.is_some() {
            s.dirty = true;
        }
        value
    }

    /// A failed form: its errors and what was typed (no passwords) are kept
    /// for the next page, and the browser goes back to the form (web.md
    /// 1.4), so reloading the page never posts the form again. Back is the
    /// page the form was on (`Referer`, same site only), else `form_page`.
    /// A script asking for JSON gets the 422 with the errors instead, as
    /// Laravel answers it.
    pub fn back(&self, form_page: &str, input: &Input, errors: &FieldErrors) -> WebResult {
        if self.ctx.wants_json() {
            return Ok(crate::http::error_response(&AppError::Validation(errors.clone()), true));
        }
        self.set(OLD_INPUT, input.without_secrets())?;
        self.set(OLD_ERRORS, errors.to_json())?;
        let back = self.ctx.referer_on_this_site().map(|(_, path)| path);
        redirect(back.as_deref().unwrap_or(form_page))
    }

    /// What the last failed form left (see `back`), taken once.
    pub fn old(&self) -> Old {
        match self.take(OLD_ERRORS) {
            Some(errors) => {
                Old { input: self.take(OLD_INPUT).map(Input::from_json), errors: FieldErrors::from_json(&errors) }
            }
            None => Old::default(),
        }
    }

    /// Logs `account` in with a new session id (the old row is deleted);
    /// `data` carries over what the new session must remember.
    pub fn login(&self, account: &Account, data: serde_json::Map<String, serde_json::Value>) -> AppResult<()> {
        if let Some(old) = self.session.borrow_mut().take() {
            self.ctx.app.db.write(|tx| Ok(crate::db::web::delete_session(tx, &old.id)?))?;
        }
        let created = session::create(self.ctx, Some(account.id), data)?;
        *self.session.borrow_mut() = Some(created);
        *self.account.borrow_mut() = Some(account.clone());
        Ok(())
    }

    pub fn logout(&self) -> AppResult<()> {
        if let Some(old) = self.session.borrow_mut().take() {
            session::destroy(self.ctx, &old)?;
        }
        *self.account.borrow_mut() = None;
        Ok(())
    }

    /// The page frame for a view.
    pub fn page(&self) -> AppResult<Page<'_>> {
        let csrf = self.csrf_token()?;
        let config = self.config();
        Ok(Page {
            lang: self.lang,
            app_name: &config.app_name,
            user: self.account().map(|a| (a.sip(), a.admin)),
            csrf,
            success: self.take_flash("success"),
            error: self.take_flash("error"),
            copyright: &config.instance_copyright,
            public_registration: public_registration(self.ctx),
            wide: false,
            captcha: None,
        })
    }

    /// A full HTML page.
    pub fn render(&self, title: &str, status: u16, body: impl FnOnce(&Page) -> Markup) -> HttpResult {
        let page = self.page()?;
        let markup = views::layout(&page, title, body(&page));
        Ok(html(markup, status))
    }

    /// A page whose form asks for the human check: the widget (when the
    /// captcha is on) and the CSP that lets it load.
    pub fn render_with_captcha(&self, title: &str, status: u16, body: impl FnOnce(&Page) -> Markup) -> HttpResult {
        let mut page = self.page()?;
        page.captcha = crate::services::captcha::site_key(self.ctx.app);
        self.captcha.set(page.captcha.is_some());
        let markup = views::layout(&page, title, body(&page));
        Ok(html(markup, status))
    }

    /// The captcha of the posted form (web.md 4.6), its message in the
    /// page's language; call it before anything else changes.
    pub fn check_captcha(&self) -> Result<(), FieldErrors> {
        use crate::services::captcha;
        match captcha::check(self.ctx.app, self.form(), &self.ctx.client_ip()) {
            Ok(()) => Ok(()),
            Err(AppError::Validation(errors)) => {
                let mut translated = FieldErrors::default();
                for (field, messages) in errors.0 {
                    for m in messages {
                        let text = match m.as_str() {
                            captcha::MISSING => self.t(captcha::MISSING).to_string(),
                            captcha::FAILED => self.t(captcha::FAILED).to_string(),
                            _ => m,
                        };
                        translated.add(&field, text);
                    }
                }
                Err(translated)
            }
            Err(other) => {
                let mut errors = FieldErrors::default();
                errors.add(captcha::FIELD, self.t(captcha::FAILED));
                crate::log_line!("error: captcha: {other}");
                Err(errors)
            }
        }
    }
}

const OLD_INPUT: &str = "old_input";
const OLD_ERRORS: &str = "old_errors";

/// A failed form's input and errors, brought back to its page.
#[derive(Default)]
pub struct Old {
    input: Option<Input>,
    errors: FieldErrors,
}

impl Old {
    /// The form's state: empty when nothing failed.
    pub fn state(&self, lang: Lang) -> views::form::State<'_> {
        match &self.input {
            Some(input) => views::form::State::new(lang, input, &self.errors),
            None => views::form::State { lang, ..Default::default() },
        }
    }
}

/// What a handler may end with besides a page: a redirect or an error.
pub enum Outcome {
    Page(Response),
    Error(AppError),
}

impl From<AppError> for Outcome {
    fn from(e: AppError) -> Outcome {
        Outcome::Error(e)
    }
}

impl From<Response> for Outcome {
    fn from(r: Response) -> Outcome {
        Outcome::Page(r)
    }
}

pub type WebResult = Result<Response, Outcome>;

pub fn html(markup: Markup, status: u16) -> Response {
    Response::html(markup.into_string()).with_status_code(status)
}

pub fn redirect(to: &str) -> WebResult {
    Ok(Response::redirect_302(to.to_string()))
}

/// A validation failure, kept to redisplay the form; other errors pass.
pub fn form_errors<T>(result: AppResult<T>) -> Result<Result<T, FieldErrors>, Outcome> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(AppError::Validation(errors)) => Ok(Err(errors)),
        Err(e) => Err(Outcome::Error(e)),
    }
}

/// Public registration is offered (the flag, and an external account left
/// when each new account consumes one).
pub fn public_registration(ctx: &Ctx) -> bool {
    let config = &ctx.app.config;
    if !config.public_registration || !config.web_panel {
        return false;
    }
    if config.account_consume_external_account_on_create {
        return ctx.app.db.read(crate::db::web::external_accounts_left).map(|n| n > 0).unwrap_or(false);
    }
    true
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The pages showing the captcha widget: Google's script and its frames
/// too (nothing else differs). Google's list, plus gstatic for frames; no
/// inline style is admitted: the stylesheet hides the answer's textarea,
/// which the widget would hide with an inline style.
const CSP_CAPTCHA: &str = "default-src 'self'; \
                           script-src 'self' https://www.google.com/recaptcha/ https://www.gstatic.com/recaptcha/; \
                           frame-src https://www.google.com/recaptcha/ https://recaptcha.google.com/recaptcha/ \
                           https://www.gstatic.com/recaptcha/; \
                           style-src 'self'; img-src 'self' data:; \
                           object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn security_headers(response: Response, captcha: bool) -> Response {
    response
        .with_unique_header("Content-Security-Policy", if captcha { CSP_CAPTCHA } else { CSP })
        .with_unique_header("X-Frame-Options", "DENY")
        .with_unique_header("Referrer-Policy", "same-origin")
        .with_unique_header("X-Content-Type-Options", "nosniff")
        .with_unique_header("Cache-Control", "no-store")
}

/// The one mapping from an error to an HTML page.
pub fn error_page(w: &Web, error: &AppError) -> Response {
    if let AppError::Internal(detail) = error {
        crate::log_line!("error: portal: {detail}");
    }
    // The error page itself must not fail: no session is created for it.
    error_page_for(&Page::bare(w.lang, w.config(), w.account().map(|a| (a.sip(), a.admin))), error)
}

/// The error page of `error` around `page` (also outside the portal).
pub fn error_page_for(page: &Page, error: &AppError) -> Response {
    let message = match error {
        AppError::Validation(errors) => {
            errors.0.iter().flat_map(|(_, m)| m.iter().cloned()).collect::<Vec<_>>().join(" ")
        }
        AppError::NotFound(_) => String::new(),
        other => other.public_message(),
    };
    let status = error.status();
    let mut response = html(views::error(page, status, &message), status);
    if let AppError::MethodNotAllowed { allowed, .. } = error {
        response = response.with_additional_header("Allow", allowed.join(", "));
    }
    response
}

/// Runs a portal handler: session, CSRF, errors as pages, headers.
fn run(ctx: &Ctx, method: &str, handler: impl FnOnce(&Web) -> WebResult) -> HttpResult {
    let w = match Web::new(ctx) {
        Ok(w) => w,
        Err(e) => return Ok(security_headers(crate::http::error_response(&e, false), false)),
    };
    let outcome = if method != "GET" && !csrf_ok(&w) {
        Err(Outcome::Error(AppError::Forbidden(
            "The form has expired or its security token is missing. Please reload the page.".into(),
        )))
    } else {
        handler(&w)
    };
    let response = match outcome {
        Ok(r) | Err(Outcome::Page(r)) => r,
        Err(Outcome::Error(e)) => error_page(&w, &e),
    };
    // Save what the handler changed, and slide the idle window.
    if let Some(s) = w.session.borrow().as_ref() {
        if !s.fresh {
            if let Err(e) = session::save(ctx, s) {
                crate::log_line!("error: portal session: {e}");
            }
            session::refresh_cookies(ctx, s);
        }
    }
    Ok(security_headers(response, w.captcha.get()))
}

/// The form's `_token`, or the `X-CSRF-TOKEN` / `X-XSRF-TOKEN` header a
/// script sends (Laravel accepts the three).
fn csrf_ok(w: &Web) -> bool {
    let submitted = w
        .form()
        .text("_token")
        .or_else(|| w.ctx.header("X-CSRF-TOKEN").map(str::to_string))
        .or_else(|| w.ctx.header("X-XSRF-TOKEN").map(str::to_string))
        .unwrap_or_default();
    w.session.borrow().as_ref().is_some_and(|s| session::csrf_matches(s, &submitted))
}

/// The method a form asks for: `_method=PUT|DELETE` on a POST.
fn effective_method(ctx: &Ctx, method: &str) -> String {
    if method == "POST" {
        let is_form = ctx.header("Content-Type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            if let Some(m) = ctx.form_input().text("_method") {
                let m = m.to_ascii_uppercase();
                if m == "PUT" || m == "DELETE" || m == "PATCH" {
                    return m;
                }
            }
        }
    }
    method.to_string()
}

/// Builds a portal route.
pub fn page<'a>(
    ctx: &'a Ctx<'a>,
    label: &'static str,
    method: &'a str,
    handler: impl FnOnce(&Web) -> WebResult + 'a,
) -> Option<Route<'a>> {
    route(label, move || run(ctx, method, handler))
}

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    // Assets and the documentation pages stay when the panel is off.
    if method == "GET" {
        if let Some(r) = assets::routes(ctx, segments) {
            return Some(r);
        }
    }
    let method: &'static str = match effective_method(ctx, method).as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        _ => return None,
    };
    docs::routes(ctx, method, segments)
        .or_else(|| login::public_routes(ctx, method, segments))
        .or_else(|| register::public_routes(ctx, method, segments))
        .or_else(|| {
            if !ctx.app.config.web_panel {
                return None;
            }
            login::routes(ctx, method, segments)
                .or_else(|| register::routes(ctx, method, segments))
                .or_else(|| recovery::routes(ctx, method, segments))
                .or_else(|| qr_login::routes(ctx, method, segments))
                .or_else(|| panel::routes(ctx, method, segments))
                .or_else(|| admin::routes(ctx, method, segments))
        })
}
