//! deb822 / RFC822-style control paragraphs: `Release`, `Packages`, `.sources`, `control`,
//! `status`. Fields keep their case-insensitive names; continuation lines are joined with `\n`.

use std::collections::BTreeMap;

/// One paragraph: field name (as written) → value (continuation lines joined with '\n').
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Paragraph {
    fields: Vec<(String, String)>,
}

impl Paragraph {
    /// A field by case-insensitive name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    pub fn insert(&mut self, name: &str, value: &str) {
        match self
            .fields
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(f) => f.1 = value.to_string(),
            None => self.fields.push((name.to_string(), value.to_string())),
        }
    }

    /// Serialise back as a control paragraph (continuation lines indented, empty ones as ` .`).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.fields {
            let mut lines = v.split('\n');
            out.push_str(k);
            out.push(':');
            if let Some(first) = lines.next()
                && !first.is_empty()
            {
                out.push(' ');
                out.push_str(first);
            }
            out.push('\n');
            for l in lines {
                out.push(' ');
                out.push_str(if l.is_empty() { "." } else { l });
                out.push('\n');
            }
        }
        out
    }

    pub fn as_map(&self) -> BTreeMap<String, String> {
        self.fields
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect()
    }
}

/// Parse every paragraph of a control file. `#` comment lines are skipped (deb822 sources).
pub fn parse(text: &str) -> Vec<Paragraph> {
    let mut out = Vec::new();
    let mut cur = Paragraph::default();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.fields.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = cur.fields.last_mut() {
                let l = line.trim_start();
                last.1.push('\n');
                last.1.push_str(if l == "." { "" } else { l });
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.fields
                .push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !cur.fields.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_and_continuations() {
        let t = "Package: a\nDescription: short\n long line\n .\n more\n\n# c\nPackage: b\nversion: 1\n";
        let p = parse(t);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].get("description"), Some("short\nlong line\n\nmore"));
        assert_eq!(p[1].get("Version"), Some("1"));
        assert_eq!(parse(&p[0].to_text()), vec![p[0].clone()]);
    }
}
