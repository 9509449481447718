//! `/documentation` (the portal documentation of seeds 000/001, with this
//! instance's name, links and feature flags) and `/api` (seed 003).

use super::Page;
use maud::{html, Markup};

/// Which features this instance offers, for the documentation texts.
pub struct Features {
    pub web_panel: bool,
    pub public_registration: bool,
    pub phone: bool,
    pub devices: bool,
    pub external_accounts: bool,
    pub dangerous_endpoints: bool,
}

fn disabled(p: &Page) -> Markup {
    html! { p.disabled-feature { (p.t("The feature is not enabled on this instance.")) } }
}

/// A link when the target exists on this instance, else the plain text.
fn link(on: bool, href: &str, text: &str) -> Markup {
    html! { @if on { a href=(href) { (text) } } @else { (text) } }
}

const TOC: [(&str, &str); 6] = [
    ("introduction", "Introduction"),
    ("registration", "Registration"),
    ("authentication", "Authentication"),
    ("account-panel", "Account panel"),
    ("admin-panel", "Admin panel"),
    ("statistics", "Statistics"),
];

pub fn documentation(p: &Page, f: &Features) -> Markup {
    let name = p.app_name;
    let email_registration = f.web_panel && f.public_registration;
    let phone_registration = email_registration && f.phone;
    let panel = f.web_panel;
    html! {
        article.doc {
            nav.toc aria-label="Table of contents" { ul { @for (id, title) in TOC { li { a href=(format!("#{id}")) { (title) } } } } }
            h1 id="introduction" { "Introduction" }
            p { (link(true, "/", name)) " is a tool that is completing some features around the Flexisip server." }
            p { "The application is connected to the Flexisip server and directly interact with it to offer a web interface providing those features." }

            h1 id="registration" { "Registration" }
            p { "Registration can be achieve using several methods if they are correctly configured and enabled by your administrator." }
            h2 id="email-registration" { "Email Registration" }
            @if !email_registration { (disabled(p)) }
            p { "You can " (link(email_registration, "/register/email", "create an account using an email address")) ". The form requires you to provide an username and your email address." }
            p { "Once completed a confirmation email containing a unique link will be sent to the address. This link is used to activate your account, allowing you to finish the setup." }
            h2 id="account-creation-token-registration" { "Account Creation Token Registration" }
            p { "Allow the creation of an account using a previously generated Account Creation Token." }
            h2 id="phone-registration" { "Phone Registration" }
            @if !phone_registration { (disabled(p)) }
            p { "If enabled you can also " (link(phone_registration, "/register/phone", "create an account using a phone number")) ". You can also add an optional nickname to personnalize your SIP address. If not, your phone number will be used as a username." }
            p { "Once submitted, you will be asked to provide a unique pin code received by SMS to the phone number used during the registration." }
            h2 id="password-completion" { "Password completion" }
            p { "Once activated " (name) " will ask your to provide a password to finish your account setup." }

            h1 id="authentication" { "Authentication" }
            p { "To authenticate please fill in the username or phone number and password you provided during the registration phase." }
            p {
                "If you forgot your password or didn't configured it, you can always recover your account using the recover password forms, using your "
                (link(panel, "/login/email", "email address")) " or "
                @if panel && f.phone { a href="/login/phone" { "phone number" } } @else { "phone number (not enabled)" }
                ". Once authenticated you will then be able to change your password."
            }
            h2 id="code-based-authentication" { "Code based authentication" }
            p { (name) " allows you to authenticate a new device using an already authenticated one. This can be done by generating a QRCode from the authenticated device and flash it on the un-authenticated one (or the other way around)." }

            h1 id="account-panel" { "Account panel" }
            p { "Once authenticated you will get access to " (link(panel, "/panel", "your account panel")) "." }
            h2 id="change-email" { "Change your email address" }
            p { "You can " (link(panel, "/email", "change your email address")) " from the panel. A confirmation email containing a unique link will be sent to validate the new one." }
            h2 id="change-password" { "Change your password" }
            p { "Your password can also be changed from the " (link(panel, "/password", "password change form")) ". You can enable SHA-256 encrypted password when changing it (required for some clients)." }
            h2 id="delete-account" { "Delete your account" }
            p { "Your account can be deleted from the panel using the " (link(panel, "/delete", "account deletion form")) ". You must re-enter your full SIP address to confirm the deletion." }
            h2 id="devices" { "Devices management" }
            @if !(panel && f.devices) { (disabled(p)) }
            p { "From the " (link(panel && f.devices, "/devices", "devices management panel")) " you will be able to list and delete the devices attached to your SIP address." }

            h1 id="admin-panel" { "Admin panel" }
            p { "This panel is only accessible to admin accounts." }
            h2 id="api-key" { "Generate an API Key" }
            p { "As an administrator, you will be able to generate an API Key allowing you to use the " (name) " API with the API Key authentication mechanism. Check the related " a href="/api" { "API Documentation" } " to know more about this feature." }
            h2 id="accounts-administration" { "Accounts administration" }
            p { "From the " (link(panel, "/admin/accounts", "accounts administration panel")) " an administrator will be able to list, create, show, edit and and delete accounts from the attached Flexisip server." }
            h3 { "Display a user account" }
            p { "Each user, identified by a unique number can be managed from the panel. The account can be activated or deactivated (see the Registration section for more information about activation)." }
            p { "You can also set an account as an administrator. The account will then have the same accesses and authorizations as you." }
            p { "Finally the account page allows you to provision the account, using a QR Code or a unique link that can be shared with the contact." }
            p { "The provisioning link can be generated and refreshed from this page as well. If the provisiong link is renewed, the old one will be unavailable." }
            h3 { "Create and edit an account" }
            p { "Administrators can create and edit accounts directly from the admin panel. During the edition they can assign contacts (other accounts available in the local database), actions and types the same way it can be done in the API." }
            h3 { "Delete an account" }
            p { "The deletion of an account is definitive, all the database related data (password, aliases…) will be destroyed after the deletion." }
            h3 { "Attach the account to an External Account" }
            @if !f.external_accounts { (disabled(p)) }
            p { "It is possible to import external accounts in the application. If this feature is enabled those External Accounts can be attached during the account creation process or afterward using the Account page dedicated button." }
            h3 { "Create, edit and delete account types" }
            p { "An adminisator can create, edit and delete account types. Those can be used to categorize accounts in clients, they are often used for Internet of Things related devices." }

            h1 id="statistics" { "Statistics" }
            p { "The " (link(panel, "/admin/statistics/day", "statistics panel")) " show registrations statistics based on their type (mobile and email based registration) and their activations states." }
        }
    }
}

static API_TEXT: &str = include_str!("api_documentation.txt");

fn is_endpoint(line: &str) -> bool {
    ["GET /", "POST /", "PUT /", "DELETE /", "PATCH /"].iter().any(|m| line.starts_with(m))
}

/// The sections of the API page: (the line a section starts at, its
/// anchor, its title). The anchors are FlexiAPI's Markdown heading slugs,
/// which other pages link to (`/api#about--auth` in the provisioning page).
pub const API_SECTIONS: [(&str, &str, &str); 13] = [
    ("An API to deal with the Flexisip server.", "about--auth", "About & Auth"),
    ("GET /ping", "ping", "Ping"),
    ("An account_creation_request_token", "account-creation-request-tokens", "Account Creation Request Tokens"),
    ("An account_creation_token", "account-creation-tokens", "Account Creation Tokens"),
    ("POST /accounts/auth_token", "auth-tokens", "Auth Tokens"),
    ("POST /accounts/public", "accounts", "Accounts"),
    ("POST /accounts/me/phone/request", "accounts-phone-number", "Accounts phone number"),
    ("GET /accounts/me/devices", "devices", "Devices"),
    ("GET /accounts/me/contacts", "contacts", "Contacts"),
    ("The following endpoints will return 403 Forbidden", "account-actions", "Account Actions"),
    ("GET /account_types", "account-types", "Account Types"),
    ("POST /messages", "messages", "Messages"),
    ("GET /statistics/day", "statistics", "Statistics"),
];

/// Where the flattened seed glued an endpoint to the previous text
/// (`requiredPOST /x`): the two halves, else the line as it is.
fn split_glued(line: &str) -> (Option<&str>, &str) {
    for method in ["GET /", "POST /", "PUT /", "DELETE /", "PATCH /"] {
        if let Some(i) = line.find(method).filter(|&i| i > 0) {
            if line[..i].ends_with(|c: char| c.is_ascii_lowercase()) {
                return (Some(&line[..i]), &line[i..]);
            }
        }
    }
    (None, line)
}

/// Seed 003, line by line: request/response examples as code, endpoints as
/// headings, "Enabled on this instance" adjusted to the configuration.
pub fn api(p: &Page, f: &Features) -> Markup {
    let mut blocks: Vec<Markup> = Vec::new();
    let mut code: Vec<&str> = Vec::new();
    let flush = |code: &mut Vec<&str>, blocks: &mut Vec<Markup>| {
        if !code.is_empty() {
            let text = code.join("\n");
            blocks.push(html! { pre { code { (text) } } });
            code.clear();
        }
    };
    for line in API_TEXT.lines() {
        let trimmed = line.trim_end();
        if trimmed.starts_with("> ") || trimmed.starts_with("< ") || trimmed == ">" || trimmed == "<" {
            code.push(trimmed);
            continue;
        }
        flush(&mut code, &mut blocks);
        if trimmed.is_empty() {
            continue;
        }
        let (before, trimmed) = split_glued(trimmed);
        if let Some(text) = before {
            blocks.push(html! { p { (text) } });
        }
        if let Some((_, id, title)) = API_SECTIONS.iter().find(|(start, _, _)| *start == trimmed) {
            blocks.push(html! { h2 id=(id) { (title) } });
        }
        if is_endpoint(trimmed) {
            let path = trimmed.split_whitespace().nth(1).unwrap_or("");
            let unsecure = ["/accounts/public", "/recover/", "/recover-by-phone", "/info-by-phone"]
                .iter()
                .any(|s| path.contains(s));
            let phone = path.contains("phone");
            let enabled = (!unsecure || f.dangerous_endpoints) && (!phone || f.phone);
            blocks.push(html! {
                h3.endpoint { (trimmed) }
                @if !enabled { p.disabled-feature { (p.t("The feature is not enabled on this instance.")) } }
            });
        } else if trimmed == "Enabled on this instance" {
            // The seed's marker for switchable endpoints; the heading above
            // already says when it is off here.
            continue;
        } else {
            blocks.push(html! { p { (trimmed) } });
        }
    }
    flush(&mut code, &mut blocks);
    html! {
        article.doc {
            nav.toc aria-label="Table of contents" { ul { @for (_, id, title) in API_SECTIONS { li { a href=(format!("#{id}")) { (title) } } } } }
            h1 { (p.app_name) " API" }
            p { "Features on this instance: "
                "public registration " (if f.public_registration { "enabled" } else { "disabled" }) ", "
                "phone authentication " (if f.phone { "enabled" } else { "disabled" }) ", "
                "unsecure endpoints " (if f.dangerous_endpoints { "enabled" } else { "disabled" }) ", "
                "devices management " (if f.devices { "enabled" } else { "disabled" }) "." }
            @for b in blocks { (b) }
        }
    }
}

#[cfg(test)]
mod api_section_tests {
    use super::*;

    #[test]
    fn every_section_starts_at_a_line_of_the_text() {
        let lines: Vec<&str> = API_TEXT.lines().map(|l| split_glued(l.trim_end()).1).collect();
        for (start, id, _) in API_SECTIONS {
            assert_eq!(lines.iter().filter(|l| **l == start).count(), 1, "{id}: `{start}`");
        }
        assert_eq!(split_glued("requiredPOST /x"), (Some("required"), "POST /x"));
        assert_eq!(split_glued("GET /ping"), (None, "GET /ping"));
        assert_eq!(split_glued("> GET /api/x"), (None, "> GET /api/x"));
    }
}

/// `GET /provisioning/documentation` (seed 004), with this instance's URLs.
/// A page of its own, outside the portal layout, as in FlexiAPI.
pub fn provisioning(app_name: &str, base: &str, vcard: &str, api: &str) -> Markup {
    html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (app_name) " – Provisioning" }
                style { "body{font-family:sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;line-height:1.5}\
                         code,pre{background:#f4f4f4;padding:.1rem .3rem}pre{padding:1rem;overflow:auto}\
                         .badge{font-size:.75rem;padding:.1rem .4rem;border-radius:.3rem;color:#fff}\
                         .public{background:#28a745}.user{background:#17a2b8}" }
            }
            body {
                h1 { "Provisioning" }
                p { "Provisioning is a core concept of the FlexiAPI – Linphone clients flow." }
                h2 { "About" }
                h3 { "Provisioning XML" }
                pre { code { "<config>\n  <section name=\"misc\">\n    <entry name=\"contacts-vcard-list\" overwrite=\"true\">"
                    (vcard) "</entry>\n  </section>\n  ...\n</config>" } }
                p { "A provisioning content example" }
                p { "The general idea is to allow the clients to access a unique URL returning a custom XML file containing the following elements:" }
                ul {
                    li { span.badge.public { "Public" } " Expose the linphonerc INI file configuration" }
                    li { span.badge.user { "User" } " Inject the authentication information to allow the application to authenticate on the server directly if a valid account is detected using the " code { "provisioning" } " token" }
                    li { "A similar information is also injected if an external account is linked to the main one, the application will then be able to authenticate on both accounts at the same time" }
                    li { span.badge.public { "Public" } " " span.badge.user { "User" } " Using " strong { "Custom Hooks" } " an admin is also able to have access to the authenticated User internal object and inject custom XML during the provisioning. See the hooks section of the documentation to learn more about that feature." }
                }
                h3 { "Features" }
                p { "When scanning a provisioning URL with a valid token the server is also:" }
                ul {
                    li { span.badge.user { "User" } " Activating the account" }
                    li { span.badge.user { "User" } " Reseting the password, generating the new authentication information and returning them (if the " code { "reset_password" } " parameter is present)" }
                }
                h2 { "Endpoints" }
                p { "When an account is having an available " code { "provisioning_token" } " it can be provisioned using the following URLs." }
                h3 { code { "GET " (base) } }
                p { span.badge.public { "Public" } }
                p { "Return the provisioning information available in the liblinphone configuration file (if correctly configured)." }
                h3 { code { "GET " (base) "/auth_token/{auth_token}" } }
                p { span.badge.public { "Public" } }
                p { "Return the provisioning information available linked to the account that was attached to the " code { "auth_token" } "." }
                h3 { code { "GET " (base) "/{provisioning_token}?reset_password" } }
                p { span.badge.public { "Public" } }
                p { "Return the provisioning information available linked to the account related to the " code { "provisioning_token" } ". Return " code { "404" } " if the " code { "provisioning_token" } " provided is not valid or expired otherwise." }
                p { "If the account is not activated the account will be activated. The account is then considered as \"provisioned\"." }
                p { "URL parameters:" }
                ul { li { code { "reset_password" } " optional, reset the password while doing the provisioning" } }
                h3 { code { "GET " (base) "/qrcode/{provisioning_token}?reset_password" } }
                p { span.badge.public { "Public" } }
                p { "Return a QRCode that points to the provisioning URL." }
                p { "URL parameters:" }
                ul { li { code { "reset_password" } " optional, reset the password while doing the provisioning" } }
                h3 { code { "GET " (base) "/me" } }
                p { span.badge.user { "User" } }
                p { "Authenticated endpoint, see " a href=(format!("{api}#about--auth")) { "API About & Auth" } }
                p { "Return the same base content as the previous URL and the account related information, similar to the " code { "provisioning_token" } " endpoint. However this endpoint will always return those information." }
            }
        }
    }
}
