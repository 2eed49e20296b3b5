//! Variable expansion and word splitting, following BuildKit's `shell.Lex`.
//!
//! `$a`, `${a}`, `${a:-b}`, `${a-b}`, `${a:+b}`, `${a+b}`, `${a:?msg}`, `${a?msg}`, plus
//! `${a#p}`, `${a##p}`, `${a%p}`, `${a%%p}`, `${a/p/r}` and `${a//p/r}` with shell patterns.
//! Single quotes suppress expansion, double quotes keep spaces, the escape character escapes
//! the next character (inside double quotes only `"`, `$` and itself). Unset variables expand
//! to the empty string.

use crate::error::ExpandError;

/// Expands `word` into one string (quotes removed), as BuildKit's `ProcessWord`.
pub fn expand(
    word: &str,
    vars: &impl Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, ExpandError> {
    let mut lx = Lexer::new(word, vars, escape);
    let (s, _) = lx.process_stop_on(None)?;
    Ok(s)
}

/// Checks the syntax of the expansions in `word` without any variable's value (for parse
/// time): an unterminated `${`, a bad substitution or an unsupported modifier is returned with
/// the byte offset in `word` of the `$` that starts it. Quoting problems and `${a?msg}` are
/// left to expansion time.
pub(crate) fn check_syntax(word: &str, escape: char) -> Result<(), (usize, ExpandError)> {
    let vars = |_: &str| Some("x".to_string());
    let mut lx = Lexer::new(word, &vars, escape);
    match lx.process_stop_on(None) {
        Ok(_) => Ok(()),
        Err(
            e @ (ExpandError::MissingBrace { .. }
            | ExpandError::BadSubstitution { .. }
            | ExpandError::UnsupportedModifier { .. }),
        ) => {
            let ci = lx.open.last().copied().unwrap_or(0);
            let off = word.char_indices().nth(ci).map_or(0, |(b, _)| b);
            Err((off, e))
        }
        Err(_) => Ok(()),
    }
}

/// Expands `word` and splits the result into words, as BuildKit's `ProcessWords` (used for
/// EXPOSE): whitespace from unquoted text and unquoted expansions separates words; quoted text
/// never does.
pub fn expand_words(
    word: &str,
    vars: &impl Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    let mut lx = Lexer::new(word, vars, escape);
    let (_, words) = lx.process_stop_on(None)?;
    Ok(words)
}

/// Splits instruction arguments into words on whitespace, honouring quotes and the escape
/// character but keeping them (BuildKit's `parseWords`): `a "b c" d\ e` gives `a`, `"b c"`,
/// `d\ e`. Each word is later given to [`expand`], which removes the quotes.
pub fn split_words(text: &str, escape: char) -> Vec<String> {
    split_words_at(text, escape)
        .into_iter()
        .map(|(w, _)| w)
        .collect()
}

/// [`split_words`] with the byte offset where each word starts.
pub(crate) fn split_words_at(text: &str, escape: char) -> Vec<(String, usize)> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut cur = String::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let (off, ch) = chars[i];
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            phase = Phase::Word;
            start = off;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !cur.is_empty() {
                    words.push((std::mem::take(&mut cur), start));
                }
                cur.clear();
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                cur.push(ch);
                i += 1;
                continue;
            }
            if ch == escape {
                if i + 1 == chars.len() {
                    i += 1;
                    continue; // an escape at the very end is dropped
                }
                cur.push(ch);
                cur.push(chars[i + 1].1);
                i += 2;
                continue;
            }
            cur.push(ch);
            i += 1;
            continue;
        }
        // in a quote
        if ch == quote {
            phase = Phase::Word;
            cur.push(ch);
            i += 1;
            continue;
        }
        if ch == escape && quote != '\'' {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            cur.push(ch);
            cur.push(chars[i + 1].1);
            i += 2;
            continue;
        }
        cur.push(ch);
        i += 1;
    }
    if phase != Phase::Spaces && (blank_ok || !cur.is_empty()) {
        words.push((cur, start));
    }
    words
}

#[derive(Default)]
struct Words {
    words: Vec<String>,
    cur: String,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word {
                self.words.push(std::mem::take(&mut self.cur));
                self.in_word = false;
            }
        } else {
            self.cur.push(c);
            self.in_word = true;
        }
    }
    fn add_raw_char(&mut self, c: char) {
        self.cur.push(c);
        self.in_word = true;
    }
    fn add_str(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }
    fn add_raw_str(&mut self, s: &str) {
        self.cur.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if self.in_word {
            self.words.push(self.cur);
        }
        self.words
    }
}

struct Lexer<'a, F> {
    src: &'a str,
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: &'a F,
    /// Keep escape characters (for shell patterns, where `\*` must stay literal).
    raw_escapes: bool,
    /// Char positions of the `$` of the expansions being read, innermost last: after an error,
    /// the last one is the expansion at fault.
    open: Vec<usize>,
}

impl<'a, F: Fn(&str) -> Option<String>> Lexer<'a, F> {
    fn new(src: &'a str, vars: &'a F, escape: char) -> Self {
        Lexer {
            src,
            chars: src.chars().collect(),
            pos: 0,
            escape,
            vars,
            raw_escapes: false,
            open: Vec::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn word(&self) -> String {
        self.src.to_string()
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '\'' => {
                    let s = self.single_quote()?;
                    result.push_str(&s);
                    words.add_raw_str(&s);
                }
                '"' => {
                    let s = self.double_quote()?;
                    result.push_str(&s);
                    words.add_raw_str(&s);
                }
                '$' => {
                    let s = self.dollar()?;
                    result.push_str(&s);
                    words.add_str(&s);
                }
                _ => {
                    self.next();
                    if ch == self.escape {
                        if self.raw_escapes {
                            result.push(ch);
                            words.add_raw_char(ch);
                        }
                        match self.next() {
                            None => break,
                            Some(c) => {
                                result.push(c);
                                words.add_raw_char(c);
                            }
                        }
                    } else {
                        result.push(ch);
                        words.add_char(ch);
                    }
                }
            }
        }
        if let Some(q) = stop {
            return Err(ExpandError::UnterminatedQuote {
                quote: q,
                word: self.word(),
            });
        }
        Ok((result, words.finish()))
    }

    /// Reads up to the closing `}` of a `${…}` and maps running out of input to "missing }".
    fn stop_on(&mut self, stop: char) -> Result<String, ExpandError> {
        match self.process_stop_on(Some(stop)) {
            Ok((s, _)) => Ok(s),
            Err(ExpandError::UnterminatedQuote { quote, .. }) if quote == stop => {
                Err(ExpandError::MissingBrace { word: self.word() })
            }
            Err(e) => Err(e),
        }
    }

    fn single_quote(&mut self) -> Result<String, ExpandError> {
        self.next();
        let mut s = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(ExpandError::UnterminatedQuote {
                        quote: '\'',
                        word: self.word(),
                    });
                }
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ExpandError> {
        self.next();
        let mut s = String::new();
        loop {
            let Some(ch) = self.peek() else {
                return Err(ExpandError::UnterminatedQuote {
                    quote: '"',
                    word: self.word(),
                });
            };
            if ch == '"' {
                self.next();
                return Ok(s);
            }
            if ch == '$' {
                let v = self.dollar()?;
                s.push_str(&v);
                continue;
            }
            self.next();
            if ch == self.escape {
                match self.peek() {
                    None => continue,
                    Some(c) if c == '"' || c == '$' || c == self.escape => {
                        self.next();
                        s.push(c);
                        continue;
                    }
                    Some(_) => {}
                }
            }
            s.push(ch);
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.vars)(name)
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        let depth = self.open.len();
        self.open.push(self.pos);
        let r = self.dollar_inner();
        if r.is_ok() {
            self.open.truncate(depth);
        }
        r
    }

    fn dollar_inner(&mut self) -> Result<String, ExpandError> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.lookup(&name).unwrap_or_default());
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err(ExpandError::MissingBrace { word: self.word() }),
            Some('{' | '}' | ':') => {
                return Err(ExpandError::BadSubstitution { word: self.word() });
            }
            _ => {}
        }
        let name = self.name();
        let value = self.lookup(&name);
        match self.next() {
            None => Err(ExpandError::MissingBrace { word: self.word() }),
            Some('}') => Ok(value.unwrap_or_default()),
            Some('?') => {
                let word = self.stop_on('}')?;
                match value {
                    Some(v) => Ok(v),
                    None => Err(required(&name, word, "is not allowed to be unset")),
                }
            }
            Some('+') => {
                let word = self.stop_on('}')?;
                Ok(if value.is_some() { word } else { String::new() })
            }
            Some('-') => {
                let word = self.stop_on('}')?;
                Ok(value.unwrap_or(word))
            }
            Some(':') => {
                let modifier = self.next();
                let word = self.stop_on('}')?;
                let v = value.clone().unwrap_or_default();
                match modifier {
                    Some('+') => Ok(if v.is_empty() { String::new() } else { word }),
                    Some('-') => Ok(if v.is_empty() { word } else { v }),
                    Some('?') => match value {
                        None => Err(required(&name, word, "is not allowed to be unset")),
                        Some(v) if v.is_empty() => {
                            Err(required(&name, word, "is not allowed to be empty"))
                        }
                        Some(v) => Ok(v),
                    },
                    Some(m) => Err(ExpandError::UnsupportedModifier {
                        modifier: m,
                        word: self.word(),
                    }),
                    None => Err(ExpandError::MissingBrace { word: self.word() }),
                }
            }
            Some(op @ ('#' | '%')) => {
                let longest = self.peek() == Some(op);
                if longest {
                    self.next();
                }
                let pattern = self.raw_stop_on('}')?;
                let v = value.unwrap_or_default();
                let pat = Pattern::parse(&pattern, self.escape);
                Ok(if op == '#' {
                    pat.remove_prefix(&v, longest)
                } else {
                    pat.remove_suffix(&v, longest)
                })
            }
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pattern = self.raw_stop_on('/')?;
                let replacement = self.stop_on('}')?;
                let v = value.unwrap_or_default();
                Ok(Pattern::parse(&pattern, self.escape).replace(&v, &replacement, all))
            }
            Some(m) => Err(ExpandError::UnsupportedModifier {
                modifier: m,
                word: self.word(),
            }),
        }
    }

    fn raw_stop_on(&mut self, stop: char) -> Result<String, ExpandError> {
        let saved = self.raw_escapes;
        self.raw_escapes = true;
        let r = self.stop_on(stop);
        self.raw_escapes = saved;
        r
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(|c| c.is_ascii_digit()) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!') {
                self.next();
                name.push(ch);
                return name;
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }
}

fn required(name: &str, word: String, default: &str) -> ExpandError {
    ExpandError::Required {
        name: name.to_string(),
        message: if word.is_empty() {
            default.to_string()
        } else {
            word
        },
    }
}

/// A shell pattern for `${a#p}` and friends: `*`, `?`, `[…]`, escaped literals.
enum Tok {
    Any,
    One,
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
    Lit(char),
}

struct Pattern(Vec<Tok>);

impl Pattern {
    fn parse(p: &str, escape: char) -> Pattern {
        let chars: Vec<char> = p.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => toks.push(Tok::Any),
                '?' => toks.push(Tok::One),
                '[' => {
                    // find the closing bracket; if none, '[' is literal
                    let mut j = i;
                    let negated = matches!(chars.get(j), Some('!' | '^'));
                    if negated {
                        j += 1;
                    }
                    let body_start = j;
                    if chars.get(j) == Some(&']') {
                        j += 1;
                    }
                    while j < chars.len() && chars[j] != ']' {
                        j += 1;
                    }
                    if j >= chars.len() {
                        toks.push(Tok::Lit('['));
                        continue;
                    }
                    let body = &chars[body_start..j];
                    let mut items = Vec::new();
                    let mut k = 0;
                    while k < body.len() {
                        if k + 2 < body.len() && body[k + 1] == '-' {
                            items.push((body[k], body[k + 2]));
                            k += 3;
                        } else {
                            items.push((body[k], body[k]));
                            k += 1;
                        }
                    }
                    toks.push(Tok::Class { negated, items });
                    i = j + 1;
                }
                c if c == escape || c == '\\' => match chars.get(i) {
                    Some(&n) => {
                        toks.push(Tok::Lit(n));
                        i += 1;
                    }
                    None => toks.push(Tok::Lit(c)),
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        Pattern(toks)
    }

    fn matches(&self, s: &[char]) -> bool {
        fn go(p: &[Tok], s: &[char]) -> bool {
            match p.split_first() {
                None => s.is_empty(),
                Some((Tok::Any, rest)) => (0..=s.len()).any(|k| go(rest, &s[k..])),
                Some((tok, rest)) => match s.split_first() {
                    None => false,
                    Some((&c, srest)) => {
                        let ok = match tok {
                            Tok::One => true,
                            Tok::Lit(l) => *l == c,
                            Tok::Class { negated, items } => {
                                items.iter().any(|&(a, b)| a <= c && c <= b) != *negated
                            }
                            Tok::Any => true,
                        };
                        ok && go(rest, srest)
                    }
                },
            }
        }
        go(&self.0, s)
    }

    fn remove_prefix(&self, v: &str, longest: bool) -> String {
        let chars: Vec<char> = v.chars().collect();
        let lens: Vec<usize> = if longest {
            (0..=chars.len()).rev().collect()
        } else {
            (0..=chars.len()).collect()
        };
        for n in lens {
            if self.matches(&chars[..n]) {
                return chars[n..].iter().collect();
            }
        }
        v.to_string()
    }

    fn remove_suffix(&self, v: &str, longest: bool) -> String {
        let chars: Vec<char> = v.chars().collect();
        let starts: Vec<usize> = if longest {
            (0..=chars.len()).collect()
        } else {
            (0..=chars.len()).rev().collect()
        };
        for s in starts {
            if self.matches(&chars[s..]) {
                return chars[..s].iter().collect();
            }
        }
        v.to_string()
    }

    fn replace(&self, v: &str, replacement: &str, all: bool) -> String {
        let chars: Vec<char> = v.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i < chars.len() {
            if !replaced || all {
                // the longest match starting here
                if let Some(end) = (i + 1..=chars.len())
                    .rev()
                    .find(|&e| self.matches(&chars[i..e]))
                {
                    out.push_str(replacement);
                    i = end;
                    replaced = true;
                    continue;
                }
            }
            out.push(chars[i]);
            i += 1;
        }
        out
    }
}
