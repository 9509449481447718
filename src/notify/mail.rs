//! E-mails: sending (SMTP through lettre, or a local sendmail) and the
//! templates of the mails FlexiAPI sends (web.md section 10).
//!
//! Every mail is `multipart/alternative` (text + HTML), UTF-8. Sending is
//! synchronous and bounded by [`MailSettings::timeout`] (SMTP connect and each
//! read/write; the whole sendmail run).
//!
//! Templates: [`render`] builds a [`Mail`] (with an empty `to`) from a
//! [`MailKind`]. When [`MailSettings::templates_dir`] holds
//! `<name>.<lang>.txt`, `<name>.txt`, `<name>.<lang>.html` or `<name>.html`
//! (names from [`MailKind::name`]; `<lang>` is the primary language subtag of
//! the locale, e.g. `fr`), those files replace the built-in text or HTML part;
//! `<name>[.<lang>].subject` replaces the subject. Placeholders
//! `{{app_name}}`, `{{signature}}`, `{{subject}}` and the per-kind ones listed
//! in [`MailKind::placeholders`] are substituted (HTML-escaped in HTML
//! files); unknown placeholders are left as they are. File names are built
//! only from the enum and a sanitised language tag, never from user input.

use crate::views::markdown::escape_html;
use std::borrow::Borrow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, Message, SmtpTransport, Transport};

use super::{has_line_break, last_line, run_bounded, truncate, NotifyError};

/// `MAIL_DRIVER`: empty = mail disabled (each would-be mail is only logged by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailDriver {
    None,
    Smtp,
    Sendmail,
}

impl MailDriver {
    /// Parses `MAIL_DRIVER` (`""`, `log`, `array` = disabled).
    pub fn parse(value: &str) -> Result<MailDriver, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "log" | "array" | "none" => Ok(MailDriver::None),
            "smtp" => Ok(MailDriver::Smtp),
            "sendmail" => Ok(MailDriver::Sendmail),
            other => Err(format!("expected smtp, sendmail or empty, got {other:?}")),
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// Plain SMTP (no TLS at all, not even opportunistic).
    None,
    /// Plain connection upgraded with STARTTLS (required: fails if the server does not offer it).
    StartTls,
    /// Implicit TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

impl Encryption {
    /// Parses Laravel's `MAIL_ENCRYPTION`: `tls` / `starttls` = STARTTLS
    /// (except `tls` on port 465, which old env files use for SMTPS, see
    /// operations.md section 4), `ssl` = implicit TLS, empty / `null` /
    /// `none` = plain.
    pub fn from_laravel(value: &str, port: u16) -> Result<Encryption, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "null" | "none" => Ok(Encryption::None),
            "ssl" | "smtps" => Ok(Encryption::Tls),
            "starttls" => Ok(Encryption::StartTls),
            "tls" if port == 465 => Ok(Encryption::Tls),
            "tls" => Ok(Encryption::StartTls),
            other => Err(format!("expected tls, ssl or empty, got {other:?}")),
        }
    }
}

/// What the caller fills from the `MAIL_*` keys (and `APP_NAME`).
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub driver: MailDriver,
    pub host: String,
    pub port: u16,
    /// AUTH is used when this is not empty.
    pub username: String,
    pub password: String,
    pub encryption: Encryption,
    pub from_address: String,
    /// Display name of the sender; empty = address only.
    pub from_name: String,
    /// Last line of every body (`MAIL_SIGNATURE`).
    pub signature: String,
    /// Instance name shown in subjects and bodies (`APP_NAME`).
    pub app_name: String,
    /// Directory of operator templates overriding the built-in ones.
    pub templates_dir: Option<PathBuf>,
    /// SMTP connect and per-command timeout; whole-run limit for sendmail.
    pub timeout: Duration,
    /// sendmail binary; default `/usr/sbin/sendmail`.
    pub sendmail_path: Option<PathBuf>,
    /// TLS: accept any server certificate (`MAIL_VERIFY_PEER=false` or
    /// `MAIL_ALLOW_SELF_SIGNED=true`).
    pub accept_invalid_certs: bool,
    /// TLS: accept a certificate naming another host (`MAIL_VERIFY_PEER_NAME=false`).
    pub accept_invalid_hostnames: bool,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            driver: MailDriver::None,
            host: "127.0.0.1".into(),
            port: 25,
            username: String::new(),
            password: String::new(),
            encryption: Encryption::None,
            from_address: "no-reply@sip.example.org".into(),
            from_name: "FlexiAPI".into(),
            signature: "The Linphone Team".into(),
            app_name: "FlexiAPI".into(),
            templates_dir: None,
            timeout: Duration::from_secs(10),
            sendmail_path: None,
            accept_invalid_certs: false,
            accept_invalid_hostnames: false,
        }
    }
}

/// One e-mail, ready to send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mail {
    /// Recipient address (no display name).
    pub to: String,
    pub subject: String,
    /// `text/plain` part.
    pub text: String,
    /// `text/html` part.
    pub html: String,
}

/// Default sendmail binary (the reference runs `/usr/sbin/sendmail -bs`; we
/// use the portable `-i -f FROM -- RCPT` form).
pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";

/// Sends `mail`. `Err(Disabled)` when the driver is `None` (the caller logs
/// the mail instead); `Invalid` for a bad recipient/sender or CR/LF in a
/// header value; `Rejected` when the server answers a permanent (5xx) error;
/// `Unavailable` for connection problems, timeouts and transient errors.
pub fn send(settings: &MailSettings, mail: &Mail) -> Result<(), NotifyError> {
    if settings.driver == MailDriver::None {
        return Err(NotifyError::Disabled);
    }
    let message = build_message(settings, mail)?;
    match settings.driver {
        MailDriver::None => Err(NotifyError::Disabled),
        MailDriver::Smtp => send_smtp(settings, &message),
        MailDriver::Sendmail => send_sendmail(settings, &message),
    }
}

/// The raw RFC 5322 message `send` would transmit (for logs and tests).
pub fn format(settings: &MailSettings, mail: &Mail) -> Result<Vec<u8>, NotifyError> {
    Ok(build_message(settings, mail)?.formatted())
}

fn build_message(settings: &MailSettings, mail: &Mail) -> Result<Message, NotifyError> {
    for (what, value) in [
        ("recipient", &mail.to),
        ("subject", &mail.subject),
        ("sender address", &settings.from_address),
        ("sender name", &settings.from_name),
    ] {
        if has_line_break(value) {
            return Err(NotifyError::Invalid(format!("line break in the {what}")));
        }
    }
    let to: Address = mail
        .to
        .trim()
        .parse()
        .map_err(|_| NotifyError::Invalid(format!("invalid recipient address {:?}", truncate(&mail.to, 100))))?;
    let from_address: Address = settings.from_address.trim().parse().map_err(|_| {
        NotifyError::Invalid(format!("invalid sender address {:?}", truncate(&settings.from_address, 100)))
    })?;
    let from_name = settings.from_name.trim();
    let from = Mailbox::new((!from_name.is_empty()).then(|| from_name.to_string()), from_address);
    Message::builder()
        .from(from)
        .to(Mailbox::new(None, to))
        .subject(mail.subject.clone())
        .message_id(None)
        .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()))
        .map_err(|e| NotifyError::Invalid(format!("cannot build the message: {e}")))
}

fn send_smtp(settings: &MailSettings, message: &Message) -> Result<(), NotifyError> {
    let host = settings.host.trim();
    if host.is_empty() {
        return Err(NotifyError::Invalid("MAIL_HOST is empty".into()));
    }
    let tls_parameters = || {
        TlsParameters::builder(host.to_string())
            .dangerous_accept_invalid_certs(settings.accept_invalid_certs)
            .dangerous_accept_invalid_hostnames(settings.accept_invalid_hostnames)
            .build_rustls()
            .map_err(|e| NotifyError::Invalid(format!("TLS setup for {host}: {e}")))
    };
    let tls = match settings.encryption {
        Encryption::None => Tls::None,
        Encryption::StartTls => Tls::Required(tls_parameters()?),
        Encryption::Tls => Tls::Wrapper(tls_parameters()?),
    };
    let timeout = if settings.timeout.is_zero() { Duration::from_secs(10) } else { settings.timeout };
    let mut builder = SmtpTransport::builder_dangerous(host).port(settings.port).tls(tls).timeout(Some(timeout));
    if !settings.username.is_empty() {
        builder = builder.credentials(Credentials::new(settings.username.clone(), settings.password.clone()));
    }
    let transport = builder.build();
    transport.send(message).map(|_| ()).map_err(|e| {
        let text = truncate(&e.to_string(), 300);
        if e.is_permanent() {
            NotifyError::Rejected(text)
        } else {
            NotifyError::Unavailable(format!("SMTP {host}:{}: {text}", settings.port))
        }
    })
}

fn send_sendmail(settings: &MailSettings, message: &Message) -> Result<(), NotifyError> {
    let program: &Path = settings.sendmail_path.as_deref().unwrap_or_else(|| Path::new(DEFAULT_SENDMAIL));
    let envelope = message.envelope();
    let mut cmd = Command::new(program);
    cmd.arg("-i");
    if let Some(from) = envelope.from() {
        cmd.arg("-f").arg(from);
    }
    cmd.arg("--");
    for to in envelope.to() {
        cmd.arg(to);
    }
    let timeout = if settings.timeout.is_zero() { Duration::from_secs(10) } else { settings.timeout };
    let out = run_bounded(&mut cmd, Some(message.formatted()), timeout)
        .map_err(|e| NotifyError::Unavailable(format!("cannot run {}: {e}", program.display())))?;
    match out.status {
        None => Err(NotifyError::Unavailable(format!("{} timed out", program.display()))),
        Some(s) if s.success() => Ok(()),
        Some(s) => {
            Err(NotifyError::Unavailable(format!("{} failed ({s}): {}", program.display(), last_line(&out.stderr))))
        }
    }
}

// ---------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------

/// The mails of web.md section 10. Links are absolute (`APP_URL/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailKind {
    /// E-mail registration: link `APP_URL/authenticate/email/{confirmation_key}`.
    RegisterConfirmation { link: String },
    /// First password set on an account with an e-mail address.
    ConfirmedRegistration {
        username: String,
        domain: String,
        /// `ACCOUNT_PROXY_REGISTRAR_ADDRESS` (shown as `sip:<value>`), if set.
        proxy_registrar: Option<String>,
        /// `ACCOUNT_TRANSPORT_PROTOCOL_TEXT`, if set.
        transport: Option<String>,
        /// `INSTANCE_CONFIRMED_REGISTRATION_TEXT` (Markdown), replacing the default intro.
        custom_text: Option<String>,
    },
    /// Recovery by e-mail: `link` = `APP_URL/authenticate/email/{key}`,
    /// `qr_link` = `APP_URL/provisioning/qrcode/{token}?reset_password=1`
    /// (the HTML part also shows the provisioning link derived from it,
    /// `APP_URL/provisioning/{token}?reset_password=1`).
    PasswordAuthentication { link: String, qr_link: String },
    /// Sent to the new address: link `APP_URL/email/{hash}`.
    ChangingEmail { link: String },
    /// Sent to the new address once the change is confirmed.
    ChangedEmail,
    /// Sent to `NEWSLETTER_REGISTRATION_ADDRESS`: `email` wants to join the list.
    NewsletterRegistration { email: String },
}

impl MailKind {
    /// Template base name (file names in `templates_dir`).
    pub fn name(&self) -> &'static str {
        match self {
            MailKind::RegisterConfirmation { .. } => "register_confirmation",
            MailKind::ConfirmedRegistration { .. } => "confirmed_registration",
            MailKind::PasswordAuthentication { .. } => "password_authentication",
            MailKind::ChangingEmail { .. } => "changing_email",
            MailKind::ChangedEmail => "changed_email",
            MailKind::NewsletterRegistration { .. } => "newsletter_registration",
        }
    }

    /// Names of the kind-specific placeholders available in template files
    /// (besides `app_name`, `signature` and `subject`).
    pub fn placeholders(&self) -> &'static [&'static str] {
        match self {
            MailKind::RegisterConfirmation { .. } | MailKind::ChangingEmail { .. } => &["link", "code"],
            MailKind::PasswordAuthentication { .. } => &["link", "code", "qr_link", "provisioning_link"],
            MailKind::ConfirmedRegistration { .. } => {
                &["sip_address", "username", "domain", "proxy_registrar", "transport", "text"]
            }
            MailKind::ChangedEmail => &[],
            MailKind::NewsletterRegistration { .. } => &["email"],
        }
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        match self {
            MailKind::RegisterConfirmation { link } | MailKind::ChangingEmail { link } => {
                vec![("link", link.clone()), ("code", last_segment(link))]
            }
            MailKind::PasswordAuthentication { link, qr_link } => vec![
                ("link", link.clone()),
                ("code", last_segment(link)),
                ("qr_link", qr_link.clone()),
                ("provisioning_link", provisioning_link(qr_link).unwrap_or_default()),
            ],
            MailKind::ConfirmedRegistration { username, domain, proxy_registrar, transport, custom_text } => vec![
                ("sip_address", format!("sip:{username}@{domain}")),
                ("username", username.clone()),
                ("domain", domain.clone()),
                ("proxy_registrar", proxy_registrar.as_deref().map(sip_prefixed).unwrap_or_default()),
                ("transport", transport.clone().unwrap_or_default()),
                ("text", custom_text.clone().unwrap_or_default()),
            ],
            MailKind::ChangedEmail => vec![],
            MailKind::NewsletterRegistration { email } => vec![("email", email.clone())],
        }
    }
}

/// The confirmation key / code at the end of a link (`.../authenticate/email/<code>`).
fn last_segment(link: &str) -> String {
    let path = link.split(['?', '#']).next().unwrap_or("");
    path.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string()
}

/// `.../provisioning/qrcode/<token>?q` -> `.../provisioning/<token>?q`.
fn provisioning_link(qr_link: &str) -> Option<String> {
    qr_link.contains("/provisioning/qrcode/").then(|| qr_link.replacen("/provisioning/qrcode/", "/provisioning/", 1))
}

fn sip_prefixed(address: &str) -> String {
    let a = address.trim();
    if a.is_empty() || a.starts_with("sip:") || a.starts_with("sips:") {
        a.to_string()
    } else {
        format!("sip:{a}")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Fr,
}

/// Primary language subtag, lowercase ASCII letters only (2 or 3), else `None`.
fn language_tag(locale: &str) -> Option<String> {
    let primary = locale.trim().split(['-', '_', '.', '@']).next().unwrap_or("").to_ascii_lowercase();
    let ok = (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
    ok.then_some(primary)
}

/// Builds the mail of `kind` for `locale` (`en` and `fr` built in; others
/// fall back to English). The returned `to` is empty: set it before [`send`].
pub fn render<K: Borrow<MailKind>>(settings: &MailSettings, kind: K, locale: &str) -> Mail {
    let kind = kind.borrow();
    let tag = language_tag(locale);
    let lang = if tag.as_deref() == Some("fr") { Lang::Fr } else { Lang::En };
    let app = one_line(&settings.app_name);
    let default_subject = default_subject(kind, lang, &app);

    let mut vars = kind.vars();
    vars.push(("app_name", app.clone()));
    vars.push(("signature", settings.signature.clone()));

    let custom = |ext: &str| read_template(settings.templates_dir.as_deref(), kind.name(), tag.as_deref(), ext);

    let subject = match custom("subject") {
        Some(t) => one_line(&substitute(&t, &vars, false)),
        None => default_subject,
    };
    vars.push(("subject", subject.clone()));
    let text = match custom("txt") {
        Some(t) => substitute(&t, &vars, false),
        None => default_text(kind, lang, &app, &settings.signature),
    };
    let html = match custom("html") {
        Some(t) => substitute(&t, &vars, true),
        None => default_html(kind, lang, &app, &settings.signature, &subject),
    };
    Mail { to: String::new(), subject, text, html }
}

fn one_line(s: &str) -> String {
    s.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Largest template file read (bigger files are ignored).
const TEMPLATE_MAX_BYTES: u64 = 512 * 1024;

fn read_template(dir: Option<&Path>, name: &str, lang: Option<&str>, ext: &str) -> Option<String> {
    let dir = dir?;
    let mut candidates = Vec::new();
    if let Some(lang) = lang {
        candidates.push(dir.join(format!("{name}.{lang}.{ext}")));
    }
    candidates.push(dir.join(format!("{name}.{ext}")));
    candidates.into_iter().find_map(|path| {
        let meta = std::fs::metadata(&path).ok()?;
        if !meta.is_file() || meta.len() > TEMPLATE_MAX_BYTES {
            return None;
        }
        std::fs::read_to_string(&path).ok()
    })
}

/// Replaces `{{ name }}` with its value (HTML-escaped when `html`), in one
/// pass: substituted values are never re-scanned. Unknown names stay as is.
fn substitute(template: &str, vars: &[(&str, String)], html: bool) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                match vars.iter().find(|(k, _)| *k == name) {
                    Some((_, value)) if html => out.push_str(&escape_html(value)),
                    Some((_, value)) => out.push_str(value),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn default_subject(kind: &MailKind, lang: Lang, app: &str) -> String {
    let s = match (kind, lang) {
        (MailKind::RegisterConfirmation { .. }, Lang::En) => "Confirm your registration",
        (MailKind::RegisterConfirmation { .. }, Lang::Fr) => "Confirmez votre inscription",
        (MailKind::ConfirmedRegistration { .. }, Lang::En) => "Your account is ready",
        (MailKind::ConfirmedRegistration { .. }, Lang::Fr) => "Votre compte est prêt",
        (MailKind::PasswordAuthentication { .. }, Lang::En) => "Your authentication link",
        (MailKind::PasswordAuthentication { .. }, Lang::Fr) => "Votre lien d'authentification",
        (MailKind::ChangingEmail { .. }, Lang::En) => "Confirm your new email address",
        (MailKind::ChangingEmail { .. }, Lang::Fr) => "Confirmez votre nouvelle adresse email",
        (MailKind::ChangedEmail, Lang::En) => "Your email address was changed",
        (MailKind::ChangedEmail, Lang::Fr) => "Votre adresse email a été modifiée",
        (MailKind::NewsletterRegistration { .. }, Lang::En) => "Newsletter registration",
        (MailKind::NewsletterRegistration { .. }, Lang::Fr) => "Inscription à la newsletter",
    };
    if app.is_empty() {
        s.to_string()
    } else {
        format!("{app}: {s}")
    }
}

/// One block of a default body, rendered both as text and as HTML.
enum Block {
    /// A paragraph of plain text.
    Para(String),
    /// A link shown on its own line.
    Link(String),
    /// A QR image (HTML only) followed by a labelled link in HTML, the bare
    /// image URL in text.
    Qr { image: String, provisioning: Option<String> },
    /// `label: value` lines.
    Fields(Vec<(String, String)>),
    /// Operator Markdown (tags stripped in the text part).
    Markdown(String),
}

struct Texts {
    hello: &'static str,
    regards: &'static str,
}

fn blocks(kind: &MailKind, lang: Lang, app: &str) -> Vec<Block> {
    use Block::*;
    let fr = lang == Lang::Fr;
    match kind {
        MailKind::RegisterConfirmation { link } => vec![
            Para(if fr {
                format!("Vous avez créé un compte sur {app} avec cette adresse email.")
            } else {
                format!("You created an account on {app} with this email address.")
            }),
            Para(if fr {
                "Pour choisir votre mot de passe et terminer votre inscription, ouvrez ce lien unique :".into()
            } else {
                "To set your password and finish your registration, open this unique link:".into()
            }),
            Link(link.clone()),
            Para(if fr {
                "Si vous n'êtes pas à l'origine de cette inscription, ignorez ce message.".into()
            } else {
                "If you did not create this account, you can ignore this email.".into()
            }),
        ],
        MailKind::ConfirmedRegistration { username, domain, proxy_registrar, transport, custom_text } => {
            let mut v = Vec::new();
            match custom_text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                Some(text) => v.push(Markdown(text.to_string())),
                None => v.push(Para(if fr {
                    format!("Votre compte SIP sur {app} est créé. Vous pouvez le configurer dans n'importe quelle application SIP avec :")
                } else {
                    format!("Your SIP account on {app} is created. You can configure it in any SIP application with:")
                })),
            }
            let mut fields = vec![
                ((if fr { "Adresse SIP" } else { "SIP address" }).to_string(), format!("sip:{username}@{domain}")),
                ((if fr { "Nom d'utilisateur" } else { "Username" }).to_string(), username.clone()),
                ((if fr { "Domaine" } else { "Domain" }).to_string(), domain.clone()),
            ];
            if let Some(p) = proxy_registrar.as_deref().map(sip_prefixed).filter(|p| !p.is_empty()) {
                fields.push(((if fr { "Proxy/registrar" } else { "Proxy/registrar address" }).to_string(), p));
            }
            if let Some(t) = transport.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                fields.push(("Transport".to_string(), t.to_string()));
            }
            v.push(Fields(fields));
            v
        }
        MailKind::PasswordAuthentication { link, qr_link } => vec![
            Para(if fr {
                format!("Une authentification sur {app} a été demandée avec cette adresse email.")
            } else {
                format!("Someone is trying to authenticate on {app} with this email address.")
            }),
            Para(if fr {
                "Pour terminer l'authentification, ouvrez ce lien unique :".into()
            } else {
                "To finish the authentication, open this unique link:".into()
            }),
            Link(link.clone()),
            Para(if fr {
                "Vous pouvez aussi configurer directement un appareil avec ce code QR :".into()
            } else {
                "You can also configure a device directly with this QR code:".into()
            }),
            Qr { image: qr_link.clone(), provisioning: provisioning_link(qr_link) },
            Para(if fr {
                "Attention : utiliser ce lien ou ce code QR réinitialise le mot de passe de votre compte. Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.".into()
            } else {
                "Warning: using this link or this QR code resets the password of your account. If you did not request it, you can ignore this email.".into()
            }),
        ],
        MailKind::ChangingEmail { link } => vec![
            Para(if fr {
                format!("Vous avez demandé à utiliser cette adresse email pour votre compte {app}.")
            } else {
                format!("You asked to change the email address of your {app} account to this one.")
            }),
            Para(if fr {
                "Pour confirmer le changement, ouvrez ce lien :".into()
            } else {
                "To confirm the change, open this link:".into()
            }),
            Link(link.clone()),
            Para(if fr {
                "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.".into()
            } else {
                "If you did not request this change, you can ignore this email.".into()
            }),
        ],
        MailKind::ChangedEmail => vec![Para(if fr {
            format!("L'adresse email de votre compte {app} est désormais celle-ci.")
        } else {
            format!("The email address of your {app} account is now this one.")
        })],
        MailKind::NewsletterRegistration { email } => vec![
            Para(if fr {
                format!("L'adresse email suivante souhaite s'inscrire à la liste de diffusion de {app} :")
            } else {
                format!("The following email address wants to join the {app} mailing list:")
            }),
            Para(email.clone()),
        ],
    }
}

fn texts(lang: Lang) -> Texts {
    match lang {
        Lang::En => Texts { hello: "Hello,", regards: "Regards," },
        Lang::Fr => Texts { hello: "Bonjour,", regards: "Cordialement," },
    }
}

fn default_text(kind: &MailKind, lang: Lang, app: &str, signature: &str) -> String {
    let t = texts(lang);
    let mut out = String::new();
    out.push_str(t.hello);
    out.push_str("\n\n");
    for block in blocks(kind, lang, app) {
        match block {
            Block::Para(p) => out.push_str(&p),
            Block::Link(l) => out.push_str(&l),
            Block::Qr { image, .. } => out.push_str(&image),
            Block::Fields(fields) => {
                let lines: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                out.push_str(&lines.join("\n"));
            }
            Block::Markdown(md) => out.push_str(&strip_tags(&md)),
        }
        out.push_str("\n\n");
    }
    out.push_str(t.regards);
    out.push('\n');
    out.push_str(signature);
    out.push('\n');
    out
}

fn default_html(kind: &MailKind, lang: Lang, app: &str, signature: &str, subject: &str) -> String {
    let t = texts(lang);
    let mut body = String::new();
    body.push_str(&format!("<p>{}</p>\n", escape_html(t.hello)));
    for block in blocks(kind, lang, app) {
        match block {
            Block::Para(p) => body.push_str(&format!("<p>{}</p>\n", escape_html(&p))),
            Block::Link(l) => {
                let l = escape_html(&l);
                body.push_str(&format!("<p><a href=\"{l}\">{l}</a></p>\n"));
            }
            Block::Qr { image, provisioning } => {
                body.push_str(&format!(
                    "<p><img src=\"{}\" alt=\"QR code\" width=\"300\" height=\"300\"></p>\n",
                    escape_html(&image)
                ));
                if let Some(p) = provisioning {
                    let label = if lang == Lang::Fr { "Lien de configuration" } else { "Provisioning link" };
                    body.push_str(&format!("<p><a href=\"{}\">{label}</a></p>\n", escape_html(&p)));
                }
            }
            Block::Fields(fields) => {
                body.push_str("<ul>\n");
                for (k, v) in fields {
                    body.push_str(&format!("<li>{}: <strong>{}</strong></li>\n", escape_html(&k), escape_html(&v)));
                }
                body.push_str("</ul>\n");
            }
            Block::Markdown(md) => body.push_str(&crate::views::markdown::to_html(&md).into_string()),
        }
    }
    body.push_str(&format!("<p>{}<br>\n{}</p>\n", escape_html(t.regards), escape_html(signature)));
    let lang_attr = if lang == Lang::Fr { "fr" } else { "en" };
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang_attr}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape_html(subject)
    )
}

/// Removes `<...>` tags (for the text part of operator Markdown/HTML).
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
#[path = "../../tests/support/smtp_server.rs"]
mod smtp_server;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings() -> MailSettings {
        MailSettings {
            app_name: "Acme SIP".into(),
            signature: "The Acme Team".into(),
            from_address: "no-reply@acme.example".into(),
            from_name: "Acme".into(),
            ..MailSettings::default()
        }
    }

    #[test]
    fn encryption_parsing() {
        assert_eq!(Encryption::from_laravel("tls", 587), Ok(Encryption::StartTls));
        assert_eq!(Encryption::from_laravel("TLS", 465), Ok(Encryption::Tls));
        assert_eq!(Encryption::from_laravel("ssl", 25), Ok(Encryption::Tls));
        assert_eq!(Encryption::from_laravel("starttls", 465), Ok(Encryption::StartTls));
        assert_eq!(Encryption::from_laravel("", 25), Ok(Encryption::None));
        assert_eq!(Encryption::from_laravel("null", 25), Ok(Encryption::None));
        assert!(Encryption::from_laravel("rot13", 25).is_err());
        assert_eq!(MailDriver::parse(""), Ok(MailDriver::None));
        assert_eq!(MailDriver::parse("SMTP"), Ok(MailDriver::Smtp));
        assert_eq!(MailDriver::parse("sendmail"), Ok(MailDriver::Sendmail));
        assert!(MailDriver::parse("pigeon").is_err());
    }

    #[test]
    fn render_register_confirmation() {
        let link = "https://acme.example/authenticate/email/abcdefghijklm";
        let m = render(&settings(), MailKind::RegisterConfirmation { link: link.into() }, "en");
        assert_eq!(m.subject, "Acme SIP: Confirm your registration");
        assert!(m.to.is_empty());
        assert!(m.text.contains("Acme SIP"));
        assert!(m.text.contains(link));
        assert!(m.text.trim_end().ends_with("The Acme Team"));
        assert!(m.html.contains(&format!("<a href=\"{link}\">")));
        assert!(m.html.contains("The Acme Team"));
        let fr = render(&settings(), &MailKind::RegisterConfirmation { link: link.into() }, "fr-FR");
        assert!(fr.subject.contains("Confirmez"));
        assert!(fr.text.starts_with("Bonjour"));
        let unknown = render(&settings(), MailKind::ChangedEmail, "../../etc/passwd");
        assert!(unknown.text.starts_with("Hello"));
    }

    #[test]
    fn render_escapes_html() {
        let mut s = settings();
        s.app_name = "<b>Evil</b> & co\r\nBcc: x@y".into();
        let m = render(&s, MailKind::NewsletterRegistration { email: "a\"<script>@x.org".into() }, "en");
        assert!(!m.subject.contains('\n') && !m.subject.contains('\r'));
        assert!(m.html.contains("&lt;b&gt;Evil&lt;/b&gt; &amp; co"));
        assert!(m.html.contains("a&quot;&lt;script&gt;@x.org"));
        assert!(!m.html.contains("<script>"));
        assert!(m.text.contains("a\"<script>@x.org"));
    }

    #[test]
    fn render_password_authentication_and_confirmed() {
        let m = render(
            &settings(),
            MailKind::PasswordAuthentication {
                link: "https://acme.example/authenticate/email/KEY1234567890".into(),
                qr_link: "https://acme.example/provisioning/qrcode/TOKEN?reset_password=1".into(),
            },
            "en",
        );
        assert!(m.text.contains("https://acme.example/authenticate/email/KEY1234567890"));
        assert!(m.text.contains("https://acme.example/provisioning/qrcode/TOKEN?reset_password=1"));
        assert!(!m.text.contains("https://acme.example/provisioning/TOKEN"));
        assert!(m.html.contains("<img src=\"https://acme.example/provisioning/qrcode/TOKEN?reset_password=1\""));
        assert!(m.html.contains("href=\"https://acme.example/provisioning/TOKEN?reset_password=1\""));
        assert!(m.text.contains("resets the password"));

        let c = render(
            &settings(),
            MailKind::ConfirmedRegistration {
                username: "alice".into(),
                domain: "sip.acme.example".into(),
                proxy_registrar: Some("proxy.acme.example".into()),
                transport: Some("TLS".into()),
                custom_text: None,
            },
            "en",
        );
        assert!(c.text.contains("SIP address: sip:alice@sip.acme.example"));
        assert!(c.text.contains("Proxy/registrar address: sip:proxy.acme.example"));
        assert!(c.text.contains("Transport: TLS"));
        let md = render(
            &settings(),
            MailKind::ConfirmedRegistration {
                username: "bob".into(),
                domain: "d.example".into(),
                proxy_registrar: None,
                transport: None,
                custom_text: Some(
                    "Welcome **friend**!\n\nSee [the guide](https://acme.example/guide) <i>now</i>".into(),
                ),
            },
            "en",
        );
        assert!(md.html.contains("<strong>friend</strong>"));
        assert!(md.html.contains("<a href=\"https://acme.example/guide\">the guide</a>"));
        assert!(md.html.contains("&lt;i&gt;now&lt;/i&gt;"));
        assert!(md.text.contains("Welcome **friend**!"));
        assert!(!md.text.contains("<i>"));
        assert!(!md.text.contains("Proxy"));
    }

    #[test]
    fn custom_templates() {
        let dir = std::env::temp_dir().join(format!("flexiapi-mail-tpl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("register_confirmation.txt"),
            "Hi from {{app_name}}: {{ link }} code={{code}} {{unknown}}\n-- {{signature}}",
        )
        .unwrap();
        std::fs::write(
            dir.join("register_confirmation.fr.html"),
            "<p>{{app_name}} <a href=\"{{link}}\">{{code}}</a></p>",
        )
        .unwrap();
        std::fs::write(dir.join("register_confirmation.subject"), "Welcome to {{app_name}}\nignored").unwrap();
        let mut s = settings();
        s.app_name = "A&B".into();
        s.templates_dir = Some(dir.clone());
        let link = "https://x.example/authenticate/email/CODE123?a=1&b=2";
        let en = render(&s, MailKind::RegisterConfirmation { link: link.into() }, "en");
        assert_eq!(en.subject, "Welcome to A&B ignored");
        assert_eq!(en.text, format!("Hi from A&B: {link} code=CODE123 {{{{unknown}}}}\n-- The Acme Team"));
        // no en HTML file: built-in HTML
        assert!(en.html.contains("<!DOCTYPE html>"));
        let fr = render(&s, MailKind::RegisterConfirmation { link: link.into() }, "fr");
        assert_eq!(
            fr.html,
            "<p>A&amp;B <a href=\"https://x.example/authenticate/email/CODE123?a=1&amp;b=2\">CODE123</a></p>"
        );
        // values are not re-expanded
        assert_eq!(substitute("{{a}}", &[("a", "{{b}}".into()), ("b", "x".into())], false), "{{b}}");
        assert_eq!(substitute("open {{ never closed", &[], false), "open {{ never closed");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn header_injection_and_bad_addresses_are_refused() {
        let mut s = settings();
        s.driver = MailDriver::Smtp;
        let mail = Mail { to: "a@b.example\r\nBcc: c@d.example".into(), subject: "x".into(), ..Mail::default() };
        assert!(matches!(send(&s, &mail), Err(NotifyError::Invalid(_))));
        let mail = Mail { to: "a@b.example".into(), subject: "x\nBcc: c@d.example".into(), ..Mail::default() };
        assert!(matches!(send(&s, &mail), Err(NotifyError::Invalid(_))));
        let mail = Mail { to: "not an address".into(), subject: "x".into(), ..Mail::default() };
        assert!(matches!(send(&s, &mail), Err(NotifyError::Invalid(_))));
        s.driver = MailDriver::None;
        let mail = Mail { to: "a@b.example".into(), subject: "x".into(), ..Mail::default() };
        assert_eq!(send(&s, &mail), Err(NotifyError::Disabled));
        let raw = String::from_utf8(format(&s, &mail).unwrap()).unwrap();
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("Message-ID:"));
    }

    #[test]
    fn smtp_round_trip() {
        let server = smtp_server::SmtpServer::start();
        let mut s = settings();
        s.driver = MailDriver::Smtp;
        s.port = server.port();
        s.username = "user".into();
        s.password = "secret".into();
        s.timeout = Duration::from_secs(5);
        let link = "http://127.0.0.1:8080/authenticate/email/abcdefghijklm";
        let mut mail = render(&s, MailKind::RegisterConfirmation { link: link.into() }, "en");
        mail.to = "alice@example.org".into();
        mail.subject.push_str(" é"); // non-ASCII subject gets RFC 2047 encoded
        send(&s, &mail).unwrap();
        let got = server.wait_for(1, Duration::from_secs(5));
        assert_eq!(got.len(), 1);
        let m = &got[0];
        assert_eq!(m.mail_from, "no-reply@acme.example");
        assert_eq!(m.rcpt_to, vec!["alice@example.org".to_string()]);
        assert_eq!(m.subject().as_deref(), Some("Acme SIP: Confirm your registration é"));
        assert!(m.header("From").unwrap_or_default().contains("no-reply@acme.example"));
        let text = m.text_part().unwrap();
        assert!(text.contains(link), "{text}");
        assert_eq!(m.find_link("http://127.0.0.1:8080/authenticate/email/").as_deref(), Some(link));
        let html = m.html_part().unwrap();
        assert!(html.contains(&format!("href=\"{link}\"")));
        assert!(m.authenticated);
    }

    #[test]
    fn smtp_errors() {
        // permanent rejection of the recipient
        let server = smtp_server::SmtpServer::start();
        server.set_reject_recipients(true);
        let mut s = settings();
        s.driver = MailDriver::Smtp;
        s.port = server.port();
        s.timeout = Duration::from_secs(5);
        let mail =
            Mail { to: "bob@example.org".into(), subject: "s".into(), text: "t".into(), html: "<p>t</p>".into() };
        assert!(matches!(send(&s, &mail), Err(NotifyError::Rejected(_))));
        server.set_reject_recipients(false);
        // STARTTLS required but not offered, and implicit TLS against a plain server
        for encryption in [Encryption::StartTls, Encryption::Tls] {
            s.encryption = encryption;
            let started = std::time::Instant::now();
            assert!(matches!(send(&s, &mail), Err(NotifyError::Unavailable(_))), "{encryption:?}");
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        assert!(server.messages().is_empty());
        s.encryption = Encryption::None;
        drop(server);
        // nobody listening
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        s.port = port;
        assert!(matches!(send(&s, &mail), Err(NotifyError::Unavailable(_))));
    }

    #[test]
    fn sendmail_driver() {
        let dir = std::env::temp_dir().join(format!("flexiapi-sendmail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out.eml");
        let script = dir.join("sendmail");
        std::fs::write(&script, format!("#!/bin/sh\necho \"$@\" > '{0}.args'\ncat > '{0}'\n", out.display())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut s = settings();
        s.driver = MailDriver::Sendmail;
        s.sendmail_path = Some(script.clone());
        let mut mail = render(&s, MailKind::ChangedEmail, "en");
        mail.to = "carol@example.org".into();
        send(&s, &mail).unwrap();
        let args = std::fs::read_to_string(dir.join("out.eml.args")).unwrap();
        assert_eq!(args.trim(), "-i -f no-reply@acme.example -- carol@example.org");
        let raw = std::fs::read_to_string(&out).unwrap();
        assert!(raw.contains("To: carol@example.org"));
        // failing and hanging sendmail
        std::fs::write(&script, "#!/bin/sh\necho 'no such user' >&2\nexit 67\n").unwrap();
        assert!(matches!(send(&s, &mail), Err(NotifyError::Unavailable(m)) if m.contains("no such user")));
        std::fs::write(&script, "#!/bin/sh\nexec sleep 30\n").unwrap();
        s.timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        assert!(matches!(send(&s, &mail), Err(NotifyError::Unavailable(m)) if m.contains("timed out")));
        assert!(started.elapsed() < Duration::from_secs(5));
        std::fs::remove_dir_all(&dir).ok();
    }
}
