//! The lpconfig XML document served to Linphone clients, and the reader for
//! the `<section>`/`<entry>` fragments a provisioning hook prints.
//!
//! The model keeps one section per name (FlexiAPI 1.6 behaviour): RC file,
//! account data and hook output that name the same section are merged, so
//! the client never sees two `proxy_0` sections whose "first value wins"
//! resolution would depend on document order.

use std::borrow::Cow;
use std::sync::Arc;

use quick_xml::escape::{escape, partial_escape, resolve_predefined_entity};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;

use super::rc::RcFile;

/// Root element as liblinphone's own generator (lpc2xml) writes it; clients
/// ignore the `xsi` attributes but they make the document self-describing.
const XML_HEAD: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
    "<config xmlns=\"http://www.linphone.org/xsds/lpconfig.xsd\"",
    " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"",
    " xsi:schemaLocation=\"http://www.linphone.org/xsds/lpconfig.xsd lpconfig.xsd\">",
);
const XML_TAIL: &str = "</config>";

/// One `<entry>`. Without `overwrite` a client keeps a value it already has,
/// so `overwrite` decides whether a re-provisioning changes anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub value: String,
    pub overwrite: bool,
}

impl Entry {
    /// An entry the client applies only when it does not have the key yet.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Entry { name: name.into(), value: value.into(), overwrite: false }
    }

    /// An entry the client applies even over a value it already has.
    pub fn overwriting(name: impl Into<String>, value: impl Into<String>) -> Self {
        Entry { overwrite: true, ..Entry::new(name, value) }
    }
}

/// One `<section>`; entry names are unique within it and keep insertion order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    name: String,
    entries: Vec<Entry>,
}

impl Section {
    pub fn new(name: impl Into<String>) -> Self {
        Section { name: name.into(), entries: Vec::new() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Value of entry `name`; lets callers skip keys the RC file already defines.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entry(name).map(|e| e.value.as_str())
    }

    /// Sets the value of `name`, appending the entry if it is new. An existing
    /// entry keeps its `overwrite` flag: changing a value must not silently
    /// demote an entry that was meant to be forced onto clients.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let name = name.into();
        let value = value.into();
        match self.entries.iter_mut().find(|e| e.name == name) {
            Some(entry) => entry.value = value,
            None => self.entries.push(Entry::new(name, value)),
        }
        self
    }

    /// Like [`Section::set`], and marks the entry `overwrite="true"`.
    pub fn set_overwrite(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.set_entry(Entry::overwriting(name, value))
    }

    /// Replaces the entry of the same name (value and flag) or appends it;
    /// this is how hook output takes precedence over earlier sources.
    pub fn set_entry(&mut self, entry: Entry) -> &mut Self {
        match self.entries.iter_mut().find(|e| e.name == entry.name) {
            Some(existing) => *existing = entry,
            None => self.entries.push(entry),
        }
        self
    }

    pub fn remove(&mut self, name: &str) -> Option<Entry> {
        let index = self.entries.iter().position(|e| e.name == name)?;
        Some(self.entries.remove(index))
    }
}

/// A whole provisioning document: sections in the order they were first named.
///
/// Sections are shared, copy-on-write: a document cloned from a frozen one
/// (every account's document starts as a clone of the RC part) copies only
/// the sections it changes, and the others are written out from the XML
/// rendered when the original was frozen.
#[derive(Debug, Clone, Default)]
pub struct Config {
    sections: Vec<Slot>,
}

#[derive(Debug, Clone)]
struct Slot {
    section: Arc<Section>,
    /// The section's XML, kept by `freeze` until the section changes.
    xml: Option<Arc<str>>,
}

impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        self.sections().eq(other.sections())
    }
}

impl Eq for Config {}

impl Config {
    pub fn new() -> Self {
        Config::default()
    }

    /// One section per RC section, entries in file order, none overwriting
    /// (overwrite-all is applied last, over every source).
    pub fn from_rc(rc: &RcFile) -> Self {
        let mut config = Config::new();
        for rc_section in &rc.sections {
            let section = config.section_mut(&rc_section.name);
            for (key, value) in &rc_section.entries {
                section.set(key.as_str(), value.as_str());
            }
        }
        config
    }

    pub fn sections(&self) -> impl Iterator<Item = &Section> {
        self.sections.iter().map(|slot| &*slot.section)
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections().find(|s| s.name == name)
    }

    /// The section called `name`, appended empty at the end if it does not exist yet.
    pub fn section_mut(&mut self, name: &str) -> &mut Section {
        let index = match self.sections.iter().position(|slot| slot.section.name == name) {
            Some(index) => index,
            None => {
                self.sections.push(Slot { section: Arc::new(Section::new(name)), xml: None });
                self.sections.len() - 1
            }
        };
        let slot = &mut self.sections[index];
        slot.xml = None;
        Arc::make_mut(&mut slot.section)
    }

    /// Merges sections (typically hook output): a known name receives the
    /// entries, replacing same-name entries with their value and flag; an
    /// unknown name is appended.
    pub fn merge_sections(&mut self, sections: Vec<Section>) {
        for section in sections {
            let target = self.section_mut(&section.name);
            for entry in section.entries {
                target.set_entry(entry);
            }
        }
    }

    /// `ACCOUNT_PROVISIONING_OVERWRITE_ALL`: force every entry onto clients.
    /// Sections already forced are left shared.
    pub fn set_overwrite_all(&mut self) {
        for slot in &mut self.sections {
            if slot.section.entries.iter().any(|e| !e.overwrite) {
                slot.xml = None;
                for entry in &mut Arc::make_mut(&mut slot.section).entries {
                    entry.overwrite = true;
                }
            }
        }
    }

    /// Renders every section once, so that clones of this document write
    /// the sections they do not change without rendering them again.
    pub fn freeze(&mut self) {
        for slot in &mut self.sections {
            if slot.xml.is_none() {
                let mut xml = String::new();
                write_section(&mut xml, &slot.section);
                slot.xml = Some(xml.into());
            }
        }
    }

    /// Serializes the document: XML declaration, a newline, then the root and
    /// its children without indentation. Characters XML 1.0 cannot carry at
    /// all (most C0 controls, U+FFFE, U+FFFF) are dropped rather than making
    /// the whole document unparsable for the client.
    pub fn to_xml(&self) -> String {
        // Sized once: markup is about 60 bytes per entry beyond its text.
        let size: usize = self
            .sections
            .iter()
            .map(|slot| match &slot.xml {
                Some(xml) => xml.len(),
                None => {
                    let s = &slot.section;
                    40 + s.name.len() + s.entries.iter().map(|e| 60 + e.name.len() + e.value.len()).sum::<usize>()
                }
            })
            .sum();
        let mut out = String::with_capacity(XML_HEAD.len() + size + XML_TAIL.len());
        out.push_str(XML_HEAD);
        for slot in &self.sections {
            match &slot.xml {
                Some(xml) => out.push_str(xml),
                None => write_section(&mut out, &slot.section),
            }
        }
        out.push_str(XML_TAIL);
        out
    }
}

fn write_section(out: &mut String, section: &Section) {
    out.push_str("<section name=\"");
    out.push_str(&escape_attribute(&section.name));
    out.push_str("\">");
    for entry in &section.entries {
        out.push_str("<entry name=\"");
        out.push_str(&escape_attribute(&entry.name));
        out.push('"');
        if entry.overwrite {
            out.push_str(" overwrite=\"true\"");
        }
        out.push('>');
        out.push_str(&escape_text(&entry.value));
        out.push_str("</entry>");
    }
    out.push_str("</section>");
}

/// The `Char` production of XML 1.0 (surrogates cannot occur in a `str`).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{fffd}' | '\u{10000}'..)
}

fn strip_illegal(s: &str) -> Cow<'_, str> {
    if s.chars().all(is_xml_char) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().filter(|&c| is_xml_char(c)).collect())
    }
}

/// Text content: `&`, `<`, `>` escaped (`>` so that `]]>` stays legal);
/// quotes are left readable. `\r` becomes a reference because parsers turn a
/// literal one into `\n`.
fn escape_text(s: &str) -> Cow<'_, str> {
    let escaped = partial_escape(strip_illegal(s));
    if escaped.contains('\r') {
        Cow::Owned(escaped.replace('\r', "&#13;"))
    } else {
        escaped
    }
}

/// Attribute values: everything markup-significant escaped, and tab, newline
/// and carriage return written as references because attribute-value
/// normalization would otherwise turn them into spaces.
fn escape_attribute(s: &str) -> Cow<'_, str> {
    let escaped = escape(strip_illegal(s));
    if escaped.contains(['\t', '\n', '\r']) {
        Cow::Owned(escaped.replace('\t', "&#9;").replace('\n', "&#10;").replace('\r', "&#13;"))
    } else {
        escaped
    }
}

/// Parses the stdout of a hook that appends whole sections: zero or more
/// `<section name="..."><entry name="..." [overwrite="true"]>text</entry></section>`,
/// optionally inside one `<config>` root (a hook may print a full document).
/// Whitespace between elements, comments and an XML declaration are allowed;
/// anything else is an error, so a broken hook is noticed instead of being
/// half applied. Sections are returned in document order, repeated names
/// included (see [`Config::merge_sections`]).
pub fn parse_hook_fragment(text: &str) -> Result<Vec<Section>, String> {
    let mut parser = HookParser::new(text, Mode::Sections);
    parser.run()?;
    Ok(parser.sections)
}

/// Parses the stdout of a hook that adds entries to one section (the proxy
/// and auth hook points): zero or more top-level `<entry>` elements, under
/// the same rules as [`parse_hook_fragment`].
pub fn parse_hook_entries(text: &str) -> Result<Vec<Entry>, String> {
    let mut parser = HookParser::new(text, Mode::Entries);
    parser.run()?;
    Ok(parser.entries)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sections,
    Entries,
}

/// Where the reader is; the stack is at most config > section > entry deep,
/// so it is tracked as flags rather than a general element stack.
struct HookParser<'a> {
    reader: Reader<&'a [u8]>,
    mode: Mode,
    /// Any element was seen: an XML declaration is only legal before that.
    started: bool,
    config_open: bool,
    config_closed: bool,
    section: Option<Section>,
    entry: Option<Entry>,
    sections: Vec<Section>,
    entries: Vec<Entry>,
}

impl<'a> HookParser<'a> {
    fn new(text: &'a str, mode: Mode) -> Self {
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        HookParser {
            reader,
            mode,
            started: false,
            config_open: false,
            config_closed: false,
            section: None,
            entry: None,
            sections: Vec::new(),
            entries: Vec::new(),
        }
    }

    fn run(&mut self) -> Result<(), String> {
        loop {
            let position = self.reader.buffer_position();
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(e) => {
                    return Err(format!("byte {}: {}", self.reader.error_position(), e));
                }
            };
            let outcome = match event {
                Event::Eof => return self.finish().map_err(|m| format!("end of input: {m}")),
                Event::Start(start) => self.open(&start, false),
                Event::Empty(start) => self.open(&start, true),
                Event::End(_) => self.close(),
                Event::Text(text) => match text.xml10_content() {
                    Ok(content) => self.text(&content),
                    Err(e) => Err(e.to_string()),
                },
                Event::CData(data) => match data.xml10_content() {
                    Ok(content) => self.cdata(&content),
                    Err(e) => Err(e.to_string()),
                },
                Event::GeneralRef(reference) => {
                    resolve_reference(&reference).and_then(|resolved| self.cdata(&resolved))
                }
                Event::Comment(_) => Ok(()),
                Event::Decl(_) if !self.started => Ok(()),
                Event::Decl(_) => Err("XML declaration after content".to_owned()),
                Event::PI(_) => Err("unexpected processing instruction".to_owned()),
                Event::DocType(_) => Err("DOCTYPE is not allowed".to_owned()),
            };
            outcome.map_err(|m| format!("byte {position}: {m}"))?;
        }
    }

    fn open(&mut self, start: &BytesStart<'_>, empty: bool) -> Result<(), String> {
        self.started = true;
        let element = String::from_utf8_lossy(start.name().as_ref()).into_owned();
        if self.entry.is_some() {
            return Err(format!("element <{element}> inside <entry>"));
        }
        if self.config_closed {
            return Err(format!("element <{element}> after </config>"));
        }
        match (element.as_str(), self.mode) {
            ("config", Mode::Sections) if !self.config_open && self.section.is_none() => {
                if !self.sections.is_empty() {
                    return Err("<config> after top-level sections".to_owned());
                }
                self.config_open = !empty;
                self.config_closed = empty;
                Ok(())
            }
            ("section", Mode::Sections) if self.section.is_none() => {
                let attributes = self.attributes(start, &element)?;
                if attributes.overwrite.is_some() {
                    return Err("attribute `overwrite` on <section>".to_owned());
                }
                let section = Section::new(attributes.name);
                if empty {
                    self.sections.push(section);
                } else {
                    self.section = Some(section);
                }
                Ok(())
            }
            ("entry", Mode::Entries) | ("entry", Mode::Sections) if self.entry_allowed() => {
                let attributes = self.attributes(start, &element)?;
                let entry = Entry {
                    name: attributes.name,
                    value: String::new(),
                    overwrite: attributes.overwrite.unwrap_or(false),
                };
                if empty {
                    self.push_entry(entry);
                } else {
                    self.entry = Some(entry);
                }
                Ok(())
            }
            _ => Err(format!("unexpected element <{element}>")),
        }
    }

    /// quick-xml has already checked that the end tag matches the innermost
    /// open element, so closing is a matter of which one that is.
    fn close(&mut self) -> Result<(), String> {
        if let Some(entry) = self.entry.take() {
            self.push_entry(entry);
        } else if let Some(section) = self.section.take() {
            self.sections.push(section);
        } else if self.config_open {
            self.config_open = false;
            self.config_closed = true;
        } else {
            return Err("unexpected end tag".to_owned());
        }
        Ok(())
    }

    /// Entries live at the top level of an entries fragment, inside a
    /// section of a sections fragment, and nowhere else.
    fn entry_allowed(&self) -> bool {
        match self.mode {
            Mode::Entries => true,
            Mode::Sections => self.section.is_some(),
        }
    }

    fn push_entry(&mut self, entry: Entry) {
        match self.section.as_mut() {
            Some(section) => section.entries.push(entry),
            None => self.entries.push(entry),
        }
    }

    fn text(&mut self, content: &str) -> Result<(), String> {
        if self.entry.is_none() && content.trim().is_empty() {
            return Ok(());
        }
        self.cdata(content)
    }

    fn cdata(&mut self, content: &str) -> Result<(), String> {
        match self.entry.as_mut() {
            Some(entry) => {
                entry.value.push_str(content);
                Ok(())
            }
            None => Err(format!("text outside of an <entry>: {:?}", content.trim())),
        }
    }

    fn finish(&self) -> Result<(), String> {
        if let Some(entry) = &self.entry {
            Err(format!("unclosed <entry name=\"{}\">", entry.name))
        } else if let Some(section) = &self.section {
            Err(format!("unclosed <section name=\"{}\">", section.name))
        } else if self.config_open {
            Err("unclosed <config>".to_owned())
        } else {
            Ok(())
        }
    }

    /// Reads `name` (required, non-empty) and `overwrite` (`true`/`false`).
    /// Other attributes are refused: a misspelt `overwrite` silently ignored
    /// would only show up as clients keeping stale values.
    fn attributes(&self, start: &BytesStart<'_>, element: &str) -> Result<Attributes, String> {
        let mut name = None;
        let mut overwrite = None;
        for attribute in start.attributes() {
            let attribute = attribute.map_err(|e| e.to_string())?;
            let value = attribute.decode_and_unescape_value(self.reader.decoder()).map_err(|e| e.to_string())?;
            match attribute.key.as_ref() {
                b"name" => name = Some(value.into_owned()),
                b"overwrite" => {
                    overwrite = Some(match value.as_ref() {
                        "true" => true,
                        "false" => false,
                        other => {
                            return Err(format!("<{element}> overwrite must be \"true\" or \"false\", not {other:?}"))
                        }
                    })
                }
                other => return Err(format!("unknown attribute `{}` on <{element}>", String::from_utf8_lossy(other))),
            }
        }
        match name {
            None => Err(format!("<{element}> without a name")),
            Some(name) if name.is_empty() => Err(format!("<{element}> with an empty name")),
            Some(name) => Ok(Attributes { name, overwrite }),
        }
    }
}

/// Text of `&name;` or `&#N;`: only XML's predefined entities exist here,
/// as a fragment has no DTD to declare others.
fn resolve_reference(reference: &BytesRef<'_>) -> Result<String, String> {
    if let Some(c) = reference.resolve_char_ref().map_err(|e| e.to_string())? {
        return Ok(c.to_string());
    }
    let name = reference.decode().map_err(|e| e.to_string())?;
    resolve_predefined_entity(&name).map(str::to_owned).ok_or_else(|| format!("unknown entity `&{name};`"))
}

struct Attributes {
    name: String,
    overwrite: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::super::rc;
    use super::*;

    const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config xmlns=\"http://www.linphone.org/xsds/lpconfig.xsd\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"http://www.linphone.org/xsds/lpconfig.xsd lpconfig.xsd\">";

    fn body(config: &Config) -> String {
        let xml = config.to_xml();
        let inner = xml.strip_prefix(HEAD).and_then(|rest| rest.strip_suffix("</config>")).expect("head and tail");
        inner.to_owned()
    }

    /// Reads a generated document back, as a client would, to prove it is well-formed.
    fn reparse(config: &Config) -> Vec<Section> {
        parse_hook_fragment(&config.to_xml()).expect("generated XML parses")
    }

    #[test]
    fn empty_document_is_exact() {
        assert_eq!(Config::new().to_xml(), format!("{HEAD}</config>"));
    }

    #[test]
    fn small_document_is_byte_exact() {
        let mut config = Config::new();
        config.section_mut("misc").set("contacts-vcard-list", "https://flexiapi.example.org/contacts/vcard");
        config
            .section_mut("proxy_0")
            .set("reg_identity", "\"Bob\" <sip:bob@sip.example.org>")
            .set_overwrite("reg_sendregister", "1")
            .set("empty", "");
        let expected = concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<config xmlns=\"http://www.linphone.org/xsds/lpconfig.xsd\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"http://www.linphone.org/xsds/lpconfig.xsd lpconfig.xsd\">",
            "<section name=\"misc\"><entry name=\"contacts-vcard-list\">https://flexiapi.example.org/contacts/vcard</entry></section>",
            "<section name=\"proxy_0\"><entry name=\"reg_identity\">\"Bob\" &lt;sip:bob@sip.example.org&gt;</entry>",
            "<entry name=\"reg_sendregister\" overwrite=\"true\">1</entry><entry name=\"empty\"></entry></section>",
            "</config>"
        );
        assert_eq!(config.to_xml(), expected);
    }

    #[test]
    fn escapes_markup_in_names_and_values() {
        let mut config = Config::new();
        config.section_mut("a&b<c>\"d'").set("k\"&<>", "x]]>y & <z> \"q\" 'a'");
        assert_eq!(
            body(&config),
            "<section name=\"a&amp;b&lt;c&gt;&quot;d&apos;\"><entry name=\"k&quot;&amp;&lt;&gt;\">x]]&gt;y &amp; &lt;z&gt; \"q\" 'a'</entry></section>"
        );
        let back = reparse(&config);
        assert_eq!(back[0].name(), "a&b<c>\"d'");
        assert_eq!(back[0].get("k\"&<>"), Some("x]]>y & <z> \"q\" 'a'"));
    }

    #[test]
    fn keeps_newlines_and_non_ascii_and_strips_illegal_characters() {
        let mut config = Config::new();
        config
            .section_mut("s\n\u{1}")
            .set("k", "line1\nline2\r\nline3\tend")
            .set("utf8", "Zoë ☎ 日本 🎉")
            .set("ctl", "a\u{0}b\u{8}c\u{b}d\u{c}e\u{1f}f\u{fffe}g\u{ffff}h\u{7f}i");
        assert_eq!(
            body(&config),
            "<section name=\"s&#10;\"><entry name=\"k\">line1\nline2&#13;\nline3\tend</entry>\
             <entry name=\"utf8\">Zoë ☎ 日本 🎉</entry>\
             <entry name=\"ctl\">abcdefgh\u{7f}i</entry></section>"
        );
        let back = reparse(&config);
        assert_eq!(back[0].name(), "s\n");
        assert_eq!(back[0].get("k"), Some("line1\nline2\r\nline3\tend"));
        assert_eq!(back[0].get("utf8"), Some("Zoë ☎ 日本 🎉"));
    }

    #[test]
    fn overwrite_all_marks_every_entry() {
        let mut config = Config::new();
        config.section_mut("a").set("x", "1").set("y", "2");
        config.section_mut("b").set_overwrite("z", "3");
        config.section_mut("empty");
        config.set_overwrite_all();
        assert!(config.sections().flat_map(|s| s.entries()).all(|e| e.overwrite));
        assert_eq!(
            body(&config),
            "<section name=\"a\"><entry name=\"x\" overwrite=\"true\">1</entry><entry name=\"y\" overwrite=\"true\">2</entry></section>\
             <section name=\"b\"><entry name=\"z\" overwrite=\"true\">3</entry></section>\
             <section name=\"empty\"></section>"
        );
    }

    #[test]
    fn section_mut_and_set_keep_order_and_flags() {
        let mut config = Config::new();
        config.section_mut("a").set("x", "1");
        config.section_mut("b").set_overwrite("y", "1");
        config.section_mut("a").set("z", "2").set("x", "3");
        config.section_mut("b").set("y", "2");
        let names: Vec<_> = config.sections().map(Section::name).collect();
        assert_eq!(names, ["a", "b"]);
        let a = config.section("a").expect("a");
        assert_eq!(a.entries(), [Entry::new("x", "3"), Entry::new("z", "2")].as_slice());
        // Changing a value does not demote an overwriting entry.
        assert_eq!(config.section("b").and_then(|b| b.entry("y")), Some(&Entry::overwriting("y", "2")));
        assert_eq!(config.section_mut("a").remove("x"), Some(Entry::new("x", "3")));
        assert_eq!(config.section("a").and_then(|a| a.get("x")), None);
        assert!(config.section("missing").is_none());
    }

    #[test]
    fn from_rc_keeps_file_order_without_overwrite() {
        let rc = rc::parse("[sip]\ndefault_proxy=0\n[proxy_0]\nreg_proxy=<sip:h;transport=tls>\n[sip]\nx=\"1\"\n")
            .expect("valid rc");
        let config = Config::from_rc(&rc);
        assert_eq!(
            body(&config),
            "<section name=\"sip\"><entry name=\"default_proxy\">0</entry><entry name=\"x\">1</entry></section>\
             <section name=\"proxy_0\"><entry name=\"reg_proxy\">&lt;sip:h;transport=tls&gt;</entry></section>"
        );
    }

    #[test]
    fn merge_sections_merges_same_names_and_replaces_entries() {
        let rc = rc::parse("[proxy_0]\nreg_proxy=<sip:old>\nkeep=1\n[misc]\na=1\n").expect("valid rc");
        let mut config = Config::from_rc(&rc);
        config.section_mut("proxy_0").set_overwrite("reg_identity", "<sip:bob@example.org>");

        let hook = parse_hook_fragment(
            "<section name=\"proxy_0\"><entry name=\"reg_proxy\" overwrite=\"true\">&lt;sip:new&gt;</entry>\
             <entry name=\"reg_identity\">&lt;sip:other@example.org&gt;</entry></section>\
             <section name=\"nat_policy_0\"><entry name=\"stun_server\">stun.example.org</entry></section>\
             <section name=\"proxy_0\"><entry name=\"added\">yes</entry></section>",
        )
        .expect("valid hook");
        config.merge_sections(hook);

        let names: Vec<_> = config.sections().map(Section::name).collect();
        assert_eq!(names, ["proxy_0", "misc", "nat_policy_0"]);
        let proxy = config.section("proxy_0").expect("proxy_0");
        assert_eq!(
            proxy.entries(),
            [
                Entry::overwriting("reg_proxy", "<sip:new>"),
                Entry::new("keep", "1"),
                // The hook's entry replaces value and flag alike.
                Entry::new("reg_identity", "<sip:other@example.org>"),
                Entry::new("added", "yes"),
            ]
            .as_slice()
        );
    }

    #[test]
    fn hook_fragment_accepts_well_formed_inputs() {
        assert_eq!(parse_hook_fragment("").expect("empty"), Vec::<Section>::new());
        assert_eq!(parse_hook_fragment(" \n\t ").expect("blank"), Vec::<Section>::new());

        let sections = parse_hook_fragment(
            "<?xml version=\"1.0\"?>\n<!-- from the hook -->\n\
             <section name=\"a\">\n  <entry name=\"x\" overwrite=\"true\">1</entry>\n  \
             <entry name=\"y\" overwrite=\"false\"> spaced &amp; &#233;&#x263A; <![CDATA[<raw>]]></entry>\n  \
             <entry name=\"z\"/>\n  <entry name=\"w\"></entry>\n</section>\n\
             <section name=\"b\"/>\n",
        )
        .expect("valid");
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].name(), "a");
        assert_eq!(
            sections[0].entries(),
            [
                Entry::overwriting("x", "1"),
                Entry::new("y", " spaced & é☺ <raw>"),
                Entry::new("z", ""),
                Entry::new("w", ""),
            ]
            .as_slice()
        );
        assert_eq!(sections[1], Section::new("b"));

        let wrapped = parse_hook_fragment(
            "<config xmlns=\"http://www.linphone.org/xsds/lpconfig.xsd\">\
             <section name=\"c\"><entry name=\"k\">v</entry></section></config>\n",
        )
        .expect("wrapped");
        assert_eq!(wrapped.len(), 1);
        assert_eq!(wrapped[0].get("k"), Some("v"));

        assert_eq!(parse_hook_fragment("<config/>").expect("empty root"), Vec::<Section>::new());
    }

    #[test]
    fn hook_fragment_round_trips_a_generated_document() {
        let mut config = Config::new();
        config.section_mut("auth_info_0").set("username", "bob").set_overwrite("ha1", "abc");
        config.section_mut("misc").set("contacts-vcard-list", "https://h/contacts/vcard?a=1&b=2");
        assert_eq!(reparse(&config), config.sections().cloned().collect::<Vec<_>>());
    }

    #[test]
    fn hook_fragment_rejects_malformed_inputs() {
        let bad = [
            ("<section name=\"a\"><entry name=\"x\">1</entry>", "unclosed <section"),
            ("<section name=\"a\"><entry name=\"x\">1</section>", ""),
            ("<section name=\"a\"><entry name=\"x\">1", "unclosed <entry"),
            ("<entry name=\"x\">1</entry>", "unexpected element <entry>"),
            ("<section><entry name=\"x\">1</entry></section>", "without a name"),
            ("<section name=\"\"></section>", "empty name"),
            ("<section name=\"a\"><entry>1</entry></section>", "<entry> without a name"),
            ("<section name=\"a\"><entry name=\"x\" overwrite=\"yes\">1</entry></section>", "overwrite must be"),
            ("<section name=\"a\"><entry name=\"x\" overwite=\"true\">1</entry></section>", "unknown attribute"),
            ("<section name=\"a\" overwrite=\"true\"></section>", "on <section>"),
            ("<section name=\"a\"><section name=\"b\"></section></section>", "unexpected element <section>"),
            ("<section name=\"a\"><entry name=\"x\"><b>1</b></entry></section>", "inside <entry>"),
            ("<section name=\"a\">stray<entry name=\"x\">1</entry></section>", "text outside"),
            ("hello", "text outside"),
            ("<foo/>", "unexpected element <foo>"),
            ("<config><section name=\"a\"/></config><section name=\"b\"/>", "after </config>"),
            ("<config>", "unclosed <config>"),
            ("<config><config/></config>", "unexpected element <config>"),
            ("<section name=\"a\"/><config/>", "<config> after"),
            ("</section>", ""),
            ("<section name=\"a\"><entry name=\"x\">&nbsp;</entry></section>", "unknown entity"),
            ("<section name=\"a\" name=\"b\"/>", ""),
            ("<section name=\"a\"><entry name=\"x\">a & b</entry></section>", ""),
            ("<section name='a'", ""),
            ("<!DOCTYPE config><config/>", "DOCTYPE"),
            ("<?php echo 1; ?>", "processing instruction"),
        ];
        for (input, expected) in bad {
            match parse_hook_fragment(input) {
                Ok(sections) => panic!("{input:?} accepted as {sections:?}"),
                Err(message) => {
                    assert!(message.contains(expected), "{input:?}: {message:?} does not mention {expected:?}")
                }
            }
        }
    }

    #[test]
    fn hook_entries_parse_top_level_entries_only() {
        let entries = parse_hook_entries(
            "\n<entry name=\"reg_proxy\" overwrite=\"true\">&lt;sip:h&gt;</entry>\n<entry name=\"x\"/>\n",
        )
        .expect("valid");
        assert_eq!(entries, [Entry::overwriting("reg_proxy", "<sip:h>"), Entry::new("x", "")]);
        assert!(parse_hook_entries("<section name=\"a\"/>").is_err());
        assert!(parse_hook_entries("<config/>").is_err());
        assert!(parse_hook_entries("<entry name=\"x\">").is_err());
        assert!(parse_hook_entries("<entry>v</entry>").is_err());
        assert!(parse_hook_entries("text").is_err());
    }
}
