//! The stdout of a provisioning hook: `<section>`/`<entry>` fragments and
//! bare `<entry>` lists. Whatever is accepted must survive a trip through
//! the document the server sends to clients.
#![no_main]

use flexiapi::provisioning::xml::{parse_hook_entries, parse_hook_fragment, Config, Section};
use libfuzzer_sys::fuzz_target;

fn legal(s: &str) -> String {
    s.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..))
        .collect()
}

type Flat = Vec<(String, String, String, bool)>;

fn flatten(sections: &[Section], clean: bool) -> Flat {
    let f = |s: &str| if clean { legal(s) } else { s.to_owned() };
    sections
        .iter()
        .flat_map(|s| s.entries().iter().map(move |e| (f(s.name()), f(&e.name), f(&e.value), e.overwrite)))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };

    if let Ok(entries) = parse_hook_entries(text) {
        for e in &entries {
            assert!(!e.name.is_empty());
        }
    }

    let Ok(sections) = parse_hook_fragment(text) else { return };
    for s in &sections {
        assert!(!s.name().is_empty());
        for e in s.entries() {
            assert!(!e.name.is_empty());
        }
    }

    let mut config = Config::new();
    config.merge_sections(sections);
    let doc = config.to_xml();
    let merged: Vec<Section> = config.sections().cloned().collect();
    let reparsed = match parse_hook_fragment(&doc) {
        Ok(r) => r,
        // Only a name made entirely of characters XML cannot carry may be lost.
        Err(e) => {
            let flat = flatten(&merged, true);
            assert!(
                merged.iter().any(|s| legal(s.name()).is_empty()) || flat.iter().any(|(_, k, _, _)| k.is_empty()),
                "generated document refused: {e}\n{doc}"
            );
            return;
        }
    };
    assert_eq!(flatten(&reparsed, false), flatten(&merged, true), "\n{doc}");
});
