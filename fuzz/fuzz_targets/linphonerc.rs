//! The linphonerc (INI) file and the provisioning XML made from it: whatever
//! parses must serialise to XML that parses back to the same entries.
#![no_main]

use flexiapi::provisioning::{rc, xml};
use libfuzzer_sys::fuzz_target;
use quick_xml::events::Event;
use quick_xml::Reader;

/// What the writer keeps of a string: XML 1.0 `Char`s only.
fn legal(s: &str) -> String {
    s.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..))
        .collect()
}

/// (section, entry, value) triples read back with quick-xml alone.
fn read_back(doc: &str) -> Vec<(String, String, String)> {
    let mut reader = Reader::from_str(doc);
    reader.config_mut().check_end_names = true;
    reader.config_mut().trim_text(false);
    let mut out = Vec::new();
    let mut section = None::<String>;
    let mut entry = None::<(String, String)>;
    let name_of = |e: &quick_xml::events::BytesStart<'_>, r: &Reader<&[u8]>| -> String {
        let mut name = None;
        for a in e.attributes() {
            let a = a.expect("well-formed attribute");
            if a.key.as_ref() == b"name" {
                name = Some(a.decode_and_unescape_value(r.decoder()).expect("attribute value").into_owned());
            }
        }
        name.expect("name attribute")
    };
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("generated XML does not parse: {e}\n{doc}")) {
            Event::Eof => break,
            Event::Start(e) => match e.name().as_ref() {
                b"config" => {}
                b"section" => section = Some(name_of(&e, &reader)),
                b"entry" => entry = Some((name_of(&e, &reader), String::new())),
                other => panic!("unexpected element {:?}", String::from_utf8_lossy(other)),
            },
            Event::Empty(e) => match e.name().as_ref() {
                b"section" => section = None,
                other => panic!("unexpected empty element {:?}", String::from_utf8_lossy(other)),
            },
            Event::End(e) => match e.name().as_ref() {
                b"entry" => {
                    let (name, value) = entry.take().expect("open entry");
                    out.push((section.clone().expect("open section"), name, value));
                }
                b"section" => section = None,
                _ => {}
            },
            Event::Text(t) => {
                let text = t.xml10_content().expect("text");
                if let Some((_, value)) = entry.as_mut() {
                    value.push_str(&text);
                } else {
                    assert!(text.trim().is_empty(), "stray text {text:?}");
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().expect("char ref") {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r.decode().expect("ref"))
                        .expect("predefined entity")
                        .to_owned(),
                };
                entry.as_mut().expect("reference inside an entry").1.push_str(&resolved);
            }
            Event::Decl(_) => {}
            other => panic!("unexpected event {other:?}"),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(file) = rc::parse(text) else { return };

    let expected: Vec<(String, String, String)> = file
        .sections
        .iter()
        .flat_map(|s| s.entries.iter().map(move |(k, v)| (legal(&s.name), legal(k), legal(v))))
        .collect();
    let config = xml::Config::from_rc(&file);
    let doc = config.to_xml();
    assert_eq!(read_back(&doc), expected, "rc:\n{text:?}\nxml:\n{doc}");

    // The server's own reader (used for hook output) accepts the document too,
    // unless a name was made only of characters XML cannot carry (it then
    // refuses the empty name, as it should).
    if expected.iter().any(|(s, k, _)| s.is_empty() || k.is_empty())
        || file.sections.iter().any(|s| legal(&s.name).is_empty())
    {
        return;
    }
    let sections = xml::parse_hook_fragment(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
    let again: Vec<(String, String, String)> = sections
        .iter()
        .flat_map(|s| s.entries().iter().map(move |e| (s.name().to_owned(), e.name.clone(), e.value.clone())))
        .collect();
    assert_eq!(again, expected);
});
