//! The small Markdown of the operator's texts (`INSTANCE_INTRO_REGISTRATION`
//! on the home page, `INSTANCE_CONFIRMED_REGISTRATION_TEXT` in the mail):
//! paragraphs, line breaks, headings, bullet lists, **bold**, *emphasis*, `code` and [links](url).
//! Everything else is text, and all text is escaped: raw HTML in the source
//! shows as written, and a link goes only to http(s), mailto or a path of
//! this site. Written here rather than pulling a CommonMark crate for a few
//! lines of operator text.

use maud::{Markup, PreEscaped};

/// The HTML of `text`.
pub fn to_html(text: &str) -> Markup {
    let mut out = String::new();
    let normalized = text.replace("\r\n", "\n");
    for block in normalized.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
        let lines: Vec<&str> = block.lines().map(str::trim).collect();
        if let Some((level, title)) = heading(block) {
            out.push_str(&format!("<h{level}>{}</h{level}>", inline(title)));
        } else if lines.iter().all(|l| l.starts_with("- ") || l.starts_with("* ")) {
            out.push_str("<ul>");
            for line in lines {
                out.push_str(&format!("<li>{}</li>", inline(line[2..].trim())));
            }
            out.push_str("</ul>");
        } else {
            let rendered: Vec<String> = lines.iter().map(|l| inline(l)).collect();
            out.push_str(&format!("<p>{}</p>", rendered.join("<br>")));
        }
    }
    PreEscaped(out)
}

fn heading(block: &str) -> Option<(usize, &str)> {
    if block.contains('\n') {
        return None;
    }
    let level = block.chars().take_while(|c| *c == '#').count();
    let title = block[level..].strip_prefix(' ')?;
    (1..=6).contains(&level).then_some((level, title.trim()))
}

/// Escapes `& < > " '` for HTML text and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn safe_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("https://")
        || lower.starts_with("http://")
        || lower.starts_with("mailto:")
        || (url.starts_with('/') && !url.starts_with("//"))
}

/// One line's inline marks, escaped.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("**") {
            if let Some(end) = after.find("**").filter(|e| *e > 0) {
                out.push_str(&format!("<strong>{}</strong>", inline(&after[..end])));
                rest = &after[end + 2..];
                continue;
            }
        }
        if let Some(mark) = rest.chars().next().filter(|c| *c == '*' || *c == '_') {
            let after = &rest[1..];
            if let Some(end) = after.find(mark).filter(|e| *e > 0) {
                out.push_str(&format!("<em>{}</em>", inline(&after[..end])));
                rest = &after[end + 1..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix('`') {
            if let Some(end) = after.find('`') {
                out.push_str(&format!("<code>{}</code>", escape_html(&after[..end])));
                rest = &after[end + 1..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix('[') {
            if let Some((label, tail)) = after.split_once("](") {
                if let Some((url, remaining)) = tail.split_once(')') {
                    if safe_url(url.trim()) && !label.contains(']') {
                        out.push_str(&format!("<a href=\"{}\">{}</a>", escape_html(url.trim()), inline(label)));
                        rest = remaining;
                        continue;
                    }
                }
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push_str(&escape_html(&c.to_string()));
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(text: &str) -> String {
        to_html(text).into_string()
    }

    #[test]
    fn blocks_and_inline_marks() {
        assert_eq!(
            html("Hello **world**\nsecond line\n\n# Title"),
            "<p>Hello <strong>world</strong><br>second line</p><h1>Title</h1>"
        );
        assert_eq!(html("- one\n- *two*"), "<ul><li>one</li><li><em>two</em></li></ul>");
        assert_eq!(
            html("see [the terms](https://example.org/t?a=1&b=2)"),
            "<p>see <a href=\"https://example.org/t?a=1&amp;b=2\">the terms</a></p>"
        );
        assert_eq!(html("`a<b`"), "<p><code>a&lt;b</code></p>");
        assert_eq!(html(""), "");
    }

    #[test]
    fn nothing_escapes_its_text() {
        assert_eq!(html("<script>alert(1)</script>"), "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>");
        assert_eq!(html("[x](javascript:alert(1))"), "<p>[x](javascript:alert(1))</p>");
        assert_eq!(html("[x](\" onmouseover=\"a)"), "<p>[x](&quot; onmouseover=&quot;a)</p>");
        assert_eq!(html("**unclosed and lone"), "<p>**unclosed and lone</p>");
        assert_eq!(html("[local](/register)"), "<p><a href=\"/register\">local</a></p>");
    }
}
