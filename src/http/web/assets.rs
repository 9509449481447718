//! `/css/…`, `/js/…`, `/img/…`: files embedded in the binary at build
//! time. Lookups only ever read the embedded tree (nothing on disk), and
//! names with `..`, hidden segments or odd characters are refused.

use crate::http::router::{route, Route};
use crate::http::Ctx;
use include_dir::{include_dir, Dir};
use rouille::Response;

static ASSETS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/assets");

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff2" => "font/woff2",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn safe(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('.')
        && segment.len() <= 100
        && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

/// The embedded file at `dir/segments...`, if any.
pub fn find(dir: &str, rest: &[&str]) -> Option<&'static include_dir::File<'static>> {
    if rest.is_empty() || !rest.iter().all(|s| safe(s)) {
        return None;
    }
    let path = format!("{dir}/{}", rest.join("/"));
    ASSETS.get_file(path)
}

pub fn routes<'a>(ctx: &'a Ctx<'a>, segments: &'a [&'a str]) -> Option<Route<'a>> {
    let _ = ctx;
    let (dir, rest) = segments.split_first()?;
    if !matches!(*dir, "css" | "js" | "img") {
        return None;
    }
    let file = find(dir, rest)?;
    route("/{asset}", move || {
        let name = file.path().to_string_lossy().into_owned();
        Ok(Response::from_data(content_type(&name), file.contents())
            .with_unique_header("Cache-Control", "public, max-age=86400")
            .with_unique_header("X-Content-Type-Options", "nosniff"))
    })
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn lookups() {
        assert!(find("css", &["style.css"]).is_some());
        assert!(find("css", &["..", "Cargo.toml"]).is_none());
        assert!(find("css", &[".hidden"]).is_none());
        assert!(find("css", &[]).is_none());
        assert!(find("css", &["missing.css"]).is_none());
    }
}
