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
    let mut width = 0;
    for c in line.chars() {
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

/// One card. `IMPP` and `FN` carry the SIP address (FN: the display name
/// when set); types and actions carry their keys and codes.
pub fn card(d: &Details) -> String {
    let a = &d.account;
    let sip = format!("{}@{}", a.username, a.domain);
    let mut out = String::new();
    push_line(&mut out, "BEGIN:VCARD");
    push_line(&mut out, "VERSION:4.0");
    push_line(&mut out, "KIND:individual");
    push_line(&mut out, &format!("IMPP:sip:{sip}"));
    let name = a.display_name.as_deref().filter(|n| !n.trim().is_empty()).unwrap_or(&sip);
    push_line(&mut out, &format!("FN:{}", escape(name)));
    if let Some(p) = &a.dtmf_protocol {
        push_line(&mut out, &format!("X-LINPHONE-ACCOUNT-DTMF-PROTOCOL:{}", escape(p)));
    }
    for t in &d.types {
        push_line(&mut out, &format!("X-LINPHONE-ACCOUNT-TYPE:{}", escape(&t.key)));
    }
    if a.dtmf_protocol.is_some() {
        for x in &d.actions {
            // `;` separates the two components: only the values are escaped.
            push_line(&mut out, &format!("X-LINPHONE-ACCOUNT-ACTION:{};{}", escape(&x.key), escape(&x.code)));
        }
    }
    push_line(&mut out, "END:VCARD");
    out
}

/// The cards one after the other (each ends with CRLF); empty for none.
pub fn cards(contacts: &[Details]) -> String {
    contacts.iter().map(card).collect()
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
}
