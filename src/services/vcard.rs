//! vCard 4.0 rendering of contacts (seed 003's format, RFC 6350 syntax):
//! CRLF line ends, text values escaped, long lines folded at 75 octets.

use super::accounts::Details;

/// RFC 6350 §3.4 text escaping: `\` `,` `;` and line breaks.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets (on character boundaries), each
/// continuation starting with one space, and ends it with CRLF.
fn push_line(out: &mut String, line: &str) {
    push_parts(out, &[line]);
}

/// `push_line` of the concatenation of `parts`, without building it.
fn push_parts(out: &mut String, parts: &[&str]) {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total <= 75 {
        // The common case: nothing to fold.
        for p in parts {
            out.push_str(p);
        }
        out.push_str("\r\n");
        return;
    }
    let mut width = 0;
    for c in parts.iter().flat_map(|p| p.chars()) {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
}

/// `escape`, borrowing the text when there is nothing to escape.
fn escaped(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(|c| matches!(c, '\\' | ',' | ';') || c.is_control()) {
        std::borrow::Cow::Owned(escape(text))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// One card. `IMPP` and `FN` carry the SIP address (FN: the display name
/// when set); types and actions carry their keys and codes.
pub fn card(d: &Details) -> String {
    let mut out = String::with_capacity(160);
    push_card(&mut out, d);
    out
}

fn push_card(out: &mut String, d: &Details) {
    let a = &d.account;
    push_line(out, "BEGIN:VCARD");
    push_line(out, "VERSION:4.0");
    push_line(out, "KIND:individual");
    push_parts(out, &["IMPP:sip:", &a.username, "@", &a.domain]);
    match a.display_name.as_deref().filter(|n| !n.trim().is_empty()) {
        Some(name) => push_parts(out, &["FN:", &escaped(name)]),
        None => push_parts(out, &["FN:", &escaped(&a.username), "@", &escaped(&a.domain)]),
    }
    if let Some(p) = &a.dtmf_protocol {
        push_parts(out, &["X-LINPHONE-ACCOUNT-DTMF-PROTOCOL:", &escaped(p)]);
    }
    for t in &d.types {
        push_parts(out, &["X-LINPHONE-ACCOUNT-TYPE:", &escaped(&t.key)]);
    }
    if a.dtmf_protocol.is_some() {
        for x in &d.actions {
            // `;` separates the two components: only the values are escaped.
            push_parts(out, &["X-LINPHONE-ACCOUNT-ACTION:", &escaped(&x.key), ";", &escaped(&x.code)]);
        }
    }
    push_line(out, "END:VCARD");
}

/// The cards one after the other (each ends with CRLF); empty for none.
pub fn cards(contacts: &[Details]) -> String {
    let mut out = String::with_capacity(contacts.len() * 160);
    for d in contacts {
        push_card(&mut out, d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_folding() {
        assert_eq!(escape("a,b;c\\d\r\ne\nf"), "a\\,b\\;c\\\\d\\ne\\nf");
        let mut out = String::new();
        push_line(&mut out, &"x".repeat(80));
        assert_eq!(out, format!("{}\r\n {}\r\n", "x".repeat(75), "x".repeat(5)));
    }

    /// The card as first written (one `format!` and one fold per line).
    fn reference_card(d: &Details) -> String {
        fn line(out: &mut String, line: &str) {
            let mut width = 0;
            for c in line.chars() {
                if width + c.len_utf8() > 75 {
                    out.push_str("\r\n ");
                    width = 1;
                }
                out.push(c);
                width += c.len_utf8();
            }
            out.push_str("\r\n");
        }
        let a = &d.account;
        let sip = format!("{}@{}", a.username, a.domain);
        let mut out = String::new();
        line(&mut out, "BEGIN:VCARD");
        line(&mut out, "VERSION:4.0");
        line(&mut out, "KIND:individual");
        line(&mut out, &format!("IMPP:sip:{sip}"));
        let name = a.display_name.as_deref().filter(|n| !n.trim().is_empty()).unwrap_or(&sip);
        line(&mut out, &format!("FN:{}", escape(name)));
        if let Some(p) = &a.dtmf_protocol {
            line(&mut out, &format!("X-LINPHONE-ACCOUNT-DTMF-PROTOCOL:{}", escape(p)));
        }
        for t in &d.types {
            line(&mut out, &format!("X-LINPHONE-ACCOUNT-TYPE:{}", escape(&t.key)));
        }
        if a.dtmf_protocol.is_some() {
            for x in &d.actions {
                line(&mut out, &format!("X-LINPHONE-ACCOUNT-ACTION:{};{}", escape(&x.key), escape(&x.code)));
            }
        }
        line(&mut out, "END:VCARD");
        out
    }

    #[test]
    fn cards_match_the_reference_rendering() {
        use crate::db::accounts::Account;
        use crate::db::dictionary::{AccountType, Action};
        let account = |username: &str, display_name: Option<&str>, dtmf: Option<&str>| Account {
            id: 1,
            username: username.into(),
            domain: "sip.example.org".into(),
            email: None,
            phone: None,
            activated: true,
            admin: false,
            confirmation_key: None,
            provisioning_token: None,
            ip_address: String::new(),
            user_agent: String::new(),
            display_name: display_name.map(str::to_string),
            dtmf_protocol: dtmf.map(str::to_string),
            group: None,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let details = |account| Details {
            account,
            passwords: vec![],
            types: vec![AccountType { id: 1, key: "a,b;c".into() }],
            actions: vec![Action { id: 1, account_id: 1, key: "k;\\".into(), code: "é".repeat(60) }],
            email_change: None,
            activation_expiration: None,
        };
        let long = "Ünïcödé, name; with\r\nbreaks ".repeat(5);
        for d in [
            details(account("alice", None, None)),
            details(account("bob", Some("  "), Some("sipinfo"))),
            details(account("carol", Some(&long), Some("rfc2833"))),
            details(account(&"u".repeat(80), None, Some("sipinfo"))),
            details(account("dave\r", Some("x\r\ny"), None)),
        ] {
            assert_eq!(card(&d), reference_card(&d));
        }
    }
}
