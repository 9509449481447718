//! Reader for the linphonerc (INI) file named by `ACCOUNT_PROVISIONING_RC_FILE`.
//!
//! FlexiAPI reads this file with PHP's `parse_ini_file`. This reader keeps the
//! parts of that behaviour an operator relies on and deliberately drops the
//! ones that corrupt Linphone settings:
//!
//! * `[section]` headers, `key=value` lines split at the first `=`, key and
//!   value trimmed, one pair of surrounding double quotes removed;
//! * whole-line comments start with `;` (PHP) or `#` (what linphonerc files
//!   written by Linphone itself and most operators use);
//! * values are kept **verbatim** otherwise: PHP turns `true/on/yes` into `1`
//!   and `false/off/no/none/null` into an empty string, and cuts a value at
//!   `;`. Linphone values such as `reg_proxy=<sip:host;transport=tls>` or a
//!   display text containing "no" must reach the client unchanged, and the
//!   client parses its own booleans, so no conversion is done;
//! * a section name that appears twice is merged into the first occurrence
//!   (FlexiAPI 1.6 behaviour), and a key repeated within a section keeps the
//!   last value at the position of its first occurrence, as PHP does;
//! * anything else (a key before the first header, a line that is neither a
//!   header, a comment nor `key=value`) is an error with its line number, so
//!   a broken file stops start-up instead of being half applied.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A parsed linphonerc file: sections in file order, each name once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcFile {
    pub sections: Vec<RcSection>,
}

/// One `[name]` section with its `key=value` entries in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcSection {
    pub name: String,
    pub entries: Vec<(String, String)>,
}

/// Why an RC file could not be used.
#[derive(Debug)]
pub enum RcError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    Io { path: PathBuf, source: io::Error },
    /// The text is not a valid INI file; `line` is 1-based.
    Syntax { line: usize, message: String },
}

impl RcError {
    /// The 1-based line of a syntax error, for callers that format their own message.
    pub fn line(&self) -> Option<usize> {
        match self {
            RcError::Io { .. } => None,
            RcError::Syntax { line, .. } => Some(*line),
        }
    }

    fn syntax(line: usize, message: impl Into<String>) -> Self {
        RcError::Syntax { line, message: message.into() }
    }
}

impl fmt::Display for RcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RcError::Io { path, source } => write!(f, "{}: {}", path.display(), source),
            RcError::Syntax { line, message } => write!(f, "line {line}: {message}"),
        }
    }
}

impl std::error::Error for RcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RcError::Io { source, .. } => Some(source),
            RcError::Syntax { .. } => None,
        }
    }
}

impl RcFile {
    /// The section called `name`, if the file has one.
    pub fn section(&self, name: &str) -> Option<&RcSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Value of `key` in section `section`, if both exist.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.section(section).and_then(|s| s.get(key))
    }

    /// Index of the section called `name`, appending an empty one when absent,
    /// so repeated headers land in the first occurrence.
    fn section_index(&mut self, name: &str) -> usize {
        match self.sections.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                self.sections.push(RcSection { name: name.to_owned(), entries: Vec::new() });
                self.sections.len() - 1
            }
        }
    }
}

impl RcSection {
    /// Value of `key` in this section.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn set(&mut self, key: &str, value: String) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key.to_owned(), value)),
        }
    }
}

/// Reads and parses the RC file at `path`.
pub fn load(path: &Path) -> Result<RcFile, RcError> {
    let io_error = |source| RcError::Io { path: path.to_path_buf(), source };
    let bytes = std::fs::read(path).map_err(io_error)?;
    let text = String::from_utf8(bytes).map_err(|e| io_error(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    parse(&text)
}

/// Parses linphonerc text; see the module documentation for the rules.
pub fn parse(text: &str) -> Result<RcFile, RcError> {
    // Editors on Windows like to prepend a BOM; it is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rc = RcFile::default();
    let mut current: Option<usize> = None;

    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim();
        if line.is_empty() || is_comment(line) {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = parse_header(rest).map_err(|m| RcError::syntax(number, m))?;
            current = Some(rc.section_index(name));
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(RcError::syntax(number, "expected `[section]`, `key=value` or a comment"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(RcError::syntax(number, "empty key before `=`"));
        }
        let Some(section) = current else {
            return Err(RcError::syntax(number, "key outside of any section"));
        };
        rc.sections[section].set(key, unquote(value.trim()).to_owned());
    }
    Ok(rc)
}

fn is_comment(line: &str) -> bool {
    line.starts_with(';') || line.starts_with('#')
}

/// Parses what follows `[` on a header line. A trailing comment after `]` is
/// tolerated because hand-written files often annotate their sections.
fn parse_header(rest: &str) -> Result<&str, &'static str> {
    let Some((name, after)) = rest.split_once(']') else {
        return Err("unterminated section header");
    };
    let after = after.trim();
    if !after.is_empty() && !is_comment(after) {
        return Err("unexpected text after section header");
    }
    let name = name.trim();
    if name.is_empty() {
        return Err("empty section name");
    }
    Ok(name)
}

/// Removes one pair of surrounding double quotes, nothing else: inner quotes
/// and escapes are part of the value.
fn unquote(value: &str) -> &str {
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries<'a>(rc: &'a RcFile, section: &str) -> Vec<(&'a str, &'a str)> {
        rc.section(section).expect("section present").entries.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    fn syntax_line(text: &str) -> (usize, String) {
        match parse(text) {
            Err(e @ RcError::Syntax { .. }) => (e.line().expect("syntax has line"), e.to_string()),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn parses_sections_entries_and_comments() {
        let text = "; leading comment\n\
                    # another comment\n\
                    \n\
                    [sip]\n\
                    default_proxy=0\n\
                    \x20 ; indented comment\n\
                    [proxy_0]\n\
                    reg_proxy = <sip:sip.example.org;transport=tls>\n\
                    reg_route=<sip:sip.example.org;transport=tls>  \n\
                    empty=\n\
                    [misc] ; annotated header\n\
                    transient_provisioning=0\n";
        let rc = parse(text).expect("valid");
        let names: Vec<_> = rc.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["sip", "proxy_0", "misc"]);
        assert_eq!(entries(&rc, "sip"), [("default_proxy", "0")]);
        assert_eq!(
            entries(&rc, "proxy_0"),
            [
                ("reg_proxy", "<sip:sip.example.org;transport=tls>"),
                ("reg_route", "<sip:sip.example.org;transport=tls>"),
                ("empty", ""),
            ]
        );
        assert_eq!(rc.get("misc", "transient_provisioning"), Some("0"));
        assert_eq!(rc.get("misc", "absent"), None);
    }

    #[test]
    fn strips_one_pair_of_quotes_and_keeps_words_verbatim() {
        let text = "[s]\n\
                    a=\"quoted value\"\n\
                    b=\"\"inner\"\"\n\
                    c=\"unbalanced\n\
                    d=\"\n\
                    e=yes\n\
                    f=off\n\
                    g=null\n\
                    h=x=y=z\n\
                    i = \"  padded  \" \n";
        let rc = parse(text).expect("valid");
        assert_eq!(
            entries(&rc, "s"),
            [
                ("a", "quoted value"),
                ("b", "\"inner\""),
                ("c", "\"unbalanced"),
                ("d", "\""),
                ("e", "yes"),
                ("f", "off"),
                ("g", "null"),
                ("h", "x=y=z"),
                ("i", "  padded  "),
            ]
        );
    }

    #[test]
    fn merges_repeated_sections_and_keys() {
        let text = "[misc]\na=1\nb=2\n[sip]\nx=1\n[misc]\nc=3\na=4\n";
        let rc = parse(text).expect("valid");
        assert_eq!(rc.sections.len(), 2);
        assert_eq!(entries(&rc, "misc"), [("a", "4"), ("b", "2"), ("c", "3")]);
        assert_eq!(entries(&rc, "sip"), [("x", "1")]);
    }

    #[test]
    fn handles_crlf_bom_and_empty_sections() {
        let rc = parse("\u{feff}[a]\r\nk=v\r\n[b]\r\n").expect("valid");
        assert_eq!(entries(&rc, "a"), [("k", "v")]);
        assert!(rc.section("b").expect("b").entries.is_empty());
        assert_eq!(parse("").expect("empty is valid"), RcFile::default());
    }

    #[test]
    fn reports_key_outside_section_with_line() {
        let (line, msg) = syntax_line("; c\n\n# c\n\n\n\nkey=value\n[s]\n");
        assert_eq!(line, 7);
        assert_eq!(msg, "line 7: key outside of any section");
    }

    #[test]
    fn reports_unterminated_header_with_line() {
        let (line, msg) = syntax_line("[a]\nk=v\n[broken\n");
        assert_eq!(line, 3);
        assert_eq!(msg, "line 3: unterminated section header");
    }

    #[test]
    fn reports_other_syntax_errors_with_line() {
        assert_eq!(syntax_line("[a]\njust words\n").1, "line 2: expected `[section]`, `key=value` or a comment");
        assert_eq!(syntax_line("[a]\nk=v\n =v\n").1, "line 3: empty key before `=`");
        assert_eq!(syntax_line("[ ]\n").1, "line 1: empty section name");
        assert_eq!(syntax_line("[a] b\n").1, "line 1: unexpected text after section header");
    }

    #[test]
    fn load_reads_files_and_names_the_path_on_error() {
        let dir = std::env::temp_dir().join(format!("flexiapi-rc-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");

        let good = dir.join("good.rc");
        std::fs::write(&good, "[misc]\nk=\"v\"\n").expect("write");
        assert_eq!(load(&good).expect("loads").get("misc", "k"), Some("v"));

        let missing = dir.join("missing.rc");
        let err = load(&missing).expect_err("missing file");
        assert!(matches!(err, RcError::Io { .. }));
        assert!(err.to_string().starts_with(&missing.display().to_string()));
        assert_eq!(err.line(), None);

        let binary = dir.join("binary.rc");
        std::fs::write(&binary, b"[a]\nk=\xff\n").expect("write");
        assert!(matches!(load(&binary), Err(RcError::Io { .. })));

        let bad = dir.join("bad.rc");
        std::fs::write(&bad, "k=v\n").expect("write");
        assert_eq!(load(&bad).expect_err("syntax").to_string(), "line 1: key outside of any section");

        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
