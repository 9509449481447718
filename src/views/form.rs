//! Form helpers: the CSRF field, labelled inputs with their error message
//! and the value the user typed (never for passwords).

use super::i18n::Lang;
use super::Page;
use crate::domain::rules::Input;
use crate::error::FieldErrors;
use maud::{html, Markup};
use std::borrow::Cow;

/// A form's state: what was typed and what was wrong.
#[derive(Default)]
pub struct State<'a> {
    pub input: Option<&'a Input>,
    pub errors: Option<&'a FieldErrors>,
    /// The page's language, for the error messages.
    pub lang: Lang,
}

impl<'a> State<'a> {
    pub fn new(lang: Lang, input: &'a Input, errors: &'a FieldErrors) -> State<'a> {
        State { input: Some(input), errors: Some(errors), lang }
    }

    pub fn value(&self, name: &str) -> Option<String> {
        self.input.and_then(|i| i.text(name))
    }

    pub fn error(&self, name: &str) -> Option<Cow<'_, str>> {
        self.errors.and_then(|e| e.first_message(name)).map(|m| self.lang.message(m))
    }

    pub fn checked(&self, name: &str, default: bool) -> bool {
        match self.input {
            Some(i) => i.filled(name),
            None => default,
        }
    }
}

pub fn csrf(p: &Page) -> Markup {
    html! { input type="hidden" name="_token" value=(p.csrf); }
}

/// `_method` override for PUT/DELETE forms.
pub fn method(m: &str) -> Markup {
    html! { input type="hidden" name="_method" value=(m); }
}

/// A DELETE form: the hidden fields naming the target, the red Delete
/// button and, on confirmation pages, a Cancel link.
pub fn delete(p: &Page, action: &str, hidden: &[(&str, String)], cancel: Option<&str>) -> Markup {
    html! {
        form method="POST" action=(action) {
            (csrf(p))
            (method("DELETE"))
            @for (name, value) in hidden { input type="hidden" name=(name) value=(value); }
            @if let Some(back) = cancel {
                div.actions {
                    button.danger type="submit" { (p.t("Delete")) }
                    a.button.secondary href=(back) { (p.t("Cancel")) }
                }
            } @else {
                button.danger type="submit" { (p.t("Delete")) }
            }
        }
    }
}

/// The red box listing every message, above the form.
pub fn errors_box(p: &Page, state: &State) -> Markup {
    html! {
        @if let Some(errors) = state.errors.filter(|e| !e.is_empty()) {
            div.alert.error role="alert" {
                p { (p.t("Please correct the errors below.")) }
                ul {
                    @for (_, messages) in &errors.0 {
                        @for m in messages { li { (p.lang.message(m)) } }
                    }
                }
            }
        }
    }
}

pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub placeholder: Option<&'a str>,
    pub hint: Option<&'a str>,
    pub suffix: Option<&'a str>,
    pub required: bool,
    /// The value shown when the form is first displayed.
    pub default: Option<String>,
    pub autocomplete: Option<&'a str>,
}

impl<'a> Field<'a> {
    pub fn new(name: &'a str, label: &'a str) -> Field<'a> {
        Field {
            name,
            label,
            kind: "text",
            placeholder: None,
            hint: None,
            suffix: None,
            required: false,
            default: None,
            autocomplete: None,
        }
    }
    pub fn kind(mut self, kind: &'a str) -> Self {
        self.kind = kind;
        self
    }
    pub fn placeholder(mut self, p: &'a str) -> Self {
        self.placeholder = Some(p);
        self
    }
    pub fn hint(mut self, h: &'a str) -> Self {
        self.hint = Some(h);
        self
    }
    pub fn suffix(mut self, s: &'a str) -> Self {
        self.suffix = Some(s);
        self
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn default(mut self, v: Option<String>) -> Self {
        self.default = v;
        self
    }
    pub fn autocomplete(mut self, a: &'a str) -> Self {
        self.autocomplete = Some(a);
        self
    }

    pub fn render(&self, state: &State) -> Markup {
        let error = state.error(self.name);
        let value = if self.kind == "password" {
            None
        } else if state.input.is_some() {
            state.value(self.name)
        } else {
            self.default.clone()
        };
        let id = format!("f-{}", self.name);
        let hint_id = format!("{id}-hint");
        html! {
            div class=(if error.is_some() { "field invalid" } else { "field" }) {
                label for=(id) { (self.label) }
                div.control {
                    input id=(id) type=(self.kind) name=(self.name) value=[value]
                        placeholder=[self.placeholder] required[self.required]
                        autocomplete=[self.autocomplete]
                        aria-invalid=[error.as_ref().map(|_| "true")]
                        aria-describedby=[self.hint.map(|_| hint_id.as_str())];
                    @if let Some(suffix) = self.suffix { span.suffix { (suffix) } }
                }
                @if let Some(e) = error { p.field-error { (e) } }
                @if let Some(h) = self.hint { p.hint id=(hint_id) { (h) } }
            }
        }
    }
}

/// A checkbox sending `value` when ticked.
pub fn checkbox(state: &State, name: &str, label: Markup, default: bool) -> Markup {
    let error = state.error(name);
    let id = format!("f-{name}");
    html! {
        div class=(if error.is_some() { "field check invalid" } else { "field check" }) {
            input id=(id) type="checkbox" name=(name) value="1" checked[state.checked(name, default)];
            label for=(id) { (label) }
            @if let Some(e) = error { p.field-error { (e) } }
        }
    }
}

pub fn select(state: &State, name: &str, label: &str, options: &[(&str, &str)], default: Option<&str>) -> Markup {
    let current = if state.input.is_some() { state.value(name) } else { default.map(str::to_string) };
    let error = state.error(name);
    let id = format!("f-{name}");
    html! {
        div class=(if error.is_some() { "field invalid" } else { "field" }) {
            label for=(id) { (label) }
            select id=(id) name=(name) {
                @for (value, text) in options {
                    option value=(value) selected[current.as_deref().unwrap_or("") == *value] { (text) }
                }
            }
            @if let Some(e) = error { p.field-error { (e) } }
        }
    }
}

/// The reCAPTCHA v2 widget and Google's script, when the page asks for the
/// human check and the captcha is on (web.md 4.6); nothing otherwise, so
/// an install without the captcha loads nothing from outside.
pub fn captcha(p: &Page, state: &State) -> Markup {
    let field = crate::services::captcha::FIELD;
    let error = state.error(field);
    html! {
        @if let Some(key) = p.captcha {
            div class=(if error.is_some() { "field captcha invalid" } else { "field captcha" }) {
                div.g-recaptcha data-sitekey=(key) {}
                @if let Some(e) = error { p.field-error { (e) } }
            }
            script src=(format!("https://www.google.com/recaptcha/api.js?hl={}", p.lang.code())) async defer {}
        }
    }
}
