//! A small XML reader, enough for pom.xml: elements, text, comments, CDATA, processing
//! instructions, a DOCTYPE, attributes (skipped) and the predefined/numeric entities.
//! Namespace prefixes are dropped from element names.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    pub name: String,
    pub children: Vec<Element>,
    /// The concatenated text directly inside the element.
    pub text: String,
    /// 1-based line of the start tag.
    pub line: usize,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        let mut e = self;
        for n in names {
            e = e.child(n)?;
        }
        Some(e)
    }

    pub fn text_of(&self, names: &[&str]) -> Option<String> {
        self.path(names)
            .map(|e| e.text.trim().to_string())
            .filter(|t| !t.is_empty())
    }
}

/// A parse error: what and the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XmlError {
    pub detail: String,
    pub line: usize,
}

struct P<'a> {
    s: &'a str,
    i: usize,
}

impl P<'_> {
    fn line(&self, at: usize) -> usize {
        crate::error::line_of(self.s, at)
    }
    fn err(&self, at: usize, detail: impl Into<String>) -> XmlError {
        XmlError {
            detail: detail.into(),
            line: self.line(at),
        }
    }
    fn rest(&self) -> &str {
        &self.s[self.i..]
    }
    fn skip_past(&mut self, end: &str, what: &str) -> Result<usize, XmlError> {
        let start = self.i;
        match self.rest().find(end) {
            Some(k) => {
                let content_end = self.i + k;
                self.i = content_end + end.len();
                Ok(content_end)
            }
            None => Err(self.err(start, format!("unclosed {what}"))),
        }
    }
}

fn decode(raw: &str, p: &P<'_>, at: usize) -> Result<String, XmlError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(k) = rest.find('&') {
        out.push_str(&rest[..k]);
        let after = &rest[k + 1..];
        let end = after
            .find(';')
            .ok_or_else(|| p.err(at, "an & without a closing ;"))?;
        let ent = &after[..end];
        let c = match ent {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code =
                    if let Some(h) = ent.strip_prefix("#x").or_else(|| ent.strip_prefix("#X")) {
                        u32::from_str_radix(h, 16).ok()
                    } else if let Some(d) = ent.strip_prefix('#') {
                        d.parse().ok()
                    } else {
                        None
                    };
                code.and_then(char::from_u32)
                    .ok_or_else(|| p.err(at, format!("unknown entity &{ent};")))?
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn local_name(n: &str) -> String {
    n.rsplit(':').next().unwrap_or(n).to_string()
}

/// Parse a document into its root element.
pub(crate) fn parse(text: &str) -> Result<Element, XmlError> {
    let mut p = P { s: text, i: 0 };
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    while p.i < p.s.len() {
        let rest = p.rest();
        let at = p.i;
        if rest.starts_with("<!--") {
            p.i += 4;
            p.skip_past("-->", "comment <!--")?;
        } else if rest.starts_with("<![CDATA[") {
            p.i += 9;
            let start = p.i;
            let end = p.skip_past("]]>", "<![CDATA[ section")?;
            if let Some(top) = stack.last_mut() {
                top.text.push_str(&p.s[start..end]);
            }
        } else if rest.starts_with("<?") {
            p.i += 2;
            p.skip_past("?>", "processing instruction <?")?;
        } else if rest.starts_with("<!") {
            // DOCTYPE, possibly with an internal subset in [ ].
            let mut depth = 0i32;
            let mut end = None;
            for (k, c) in rest.char_indices() {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    '>' if depth <= 0 => {
                        end = Some(k);
                        break;
                    }
                    _ => {}
                }
            }
            let k = end.ok_or_else(|| p.err(at, "unclosed <!DOCTYPE"))?;
            p.i += k + 1;
        } else if rest.starts_with("</") {
            p.i += 2;
            let end = p.skip_past(">", "end tag")?;
            let name = local_name(p.s[at + 2..end].trim());
            let el = stack
                .pop()
                .ok_or_else(|| p.err(at, format!("</{name}> closes nothing")))?;
            if el.name != name {
                return Err(p.err(
                    at,
                    format!(
                        "</{name}> closes <{}> (opened on line {})",
                        el.name, el.line
                    ),
                ));
            }
            match stack.last_mut() {
                Some(parent) => parent.children.push(el),
                None => root = Some(el),
            }
        } else if rest.starts_with('<') {
            // start tag: skip attributes, honouring quotes
            let mut k = 1;
            let bytes = rest.as_bytes();
            let mut quote: Option<u8> = None;
            while k < bytes.len() {
                let b = bytes[k];
                match quote {
                    Some(q) if b == q => quote = None,
                    Some(_) => {}
                    None if b == b'"' || b == b'\'' => quote = Some(b),
                    None if b == b'>' => break,
                    None => {}
                }
                k += 1;
            }
            if k >= bytes.len() {
                return Err(p.err(at, "unclosed start tag"));
            }
            let inner = &rest[1..k];
            let self_closing = inner.ends_with('/');
            let name_raw: String = inner
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '/')
                .collect();
            if name_raw.is_empty() {
                return Err(p.err(at, "a < without an element name"));
            }
            let el = Element {
                name: local_name(&name_raw),
                children: Vec::new(),
                text: String::new(),
                line: p.line(at),
            };
            p.i += k + 1;
            if root.is_some() && stack.is_empty() {
                return Err(p.err(at, "content after the root element"));
            }
            if self_closing {
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            } else {
                stack.push(el);
            }
        } else {
            let end = rest.find('<').map(|k| p.i + k).unwrap_or(p.s.len());
            let raw = &p.s[p.i..end];
            match stack.last_mut() {
                Some(top) => {
                    let t = decode(raw, &p, at)?;
                    top.text.push_str(&t);
                }
                None if raw.trim().is_empty() => {}
                None => return Err(p.err(at, "text outside the root element")),
            }
            p.i = end;
        }
    }
    if let Some(open) = stack.last() {
        return Err(XmlError {
            detail: format!("<{}> is never closed", open.name),
            line: open.line,
        });
    }
    root.ok_or_else(|| XmlError {
        detail: "no root element".into(),
        line: 1,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_a_pom_like_document() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE project [ <!ENTITY x "y"> ]>
<!-- <project><bogus/></project> -->
<project xmlns="http://maven.apache.org/POM/4.0.0" a='x>y'>
  <properties>
    <!-- <maven.compiler.release>8</maven.compiler.release> -->
    <maven.compiler.release>17</maven.compiler.release>
    <note><![CDATA[a <b> c]]> &amp; &#65;&#x42;</note>
  </properties>
  <empty/>
  <pom:build xmlns:pom="p"><x>1</x></pom:build>
</project>
"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "project");
        assert_eq!(root.line, 4);
        assert_eq!(
            root.text_of(&["properties", "maven.compiler.release"])
                .as_deref(),
            Some("17")
        );
        assert_eq!(
            root.text_of(&["properties", "note"]).as_deref(),
            Some("a <b> c & AB")
        );
        assert!(root.child("empty").is_some());
        assert_eq!(root.text_of(&["build", "x"]).as_deref(), Some("1"));
        assert_eq!(root.children_named("properties").count(), 1);
    }

    #[test]
    fn errors_carry_lines() {
        let e = parse("<a>\n<b>\n</a>").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.detail.contains("<b>"), "{}", e.detail);
        let e = parse("<a>\n<!-- x\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("<a>\n<b>").unwrap_err();
        assert!(e.detail.contains("never closed"));
        assert!(parse("").is_err());
        assert!(parse("<a/><b/>").is_err());
        assert!(parse("<a>&bogus;</a>").is_err());
    }
}
