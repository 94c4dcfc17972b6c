//! Byte scans of a data directory (erasure tests): a needle in any file, as UTF-8
//! and `\u`-escaped as Meta writes JSON.

use std::path::Path;

pub fn escape_non_ascii(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// Every needle, as UTF-8 and `\u`-escaped, in every file under `dir`.
pub fn find_anywhere(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut forms = Vec::new();
    for n in needles {
        forms.push(n.to_string());
        forms.push(escape_non_ascii(n));
        forms.push(n.chars().map(|c| format!("\\u{:04x}", c as u32)).collect());
    }
    forms.sort();
    forms.dedup();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap_or_default();
            for f in &forms {
                if memchr::memmem::find(&bytes, f.as_bytes()).is_some() {
                    found.push(format!("{} holds {f:?}", path.display()));
                }
            }
        }
    }
    found
}
