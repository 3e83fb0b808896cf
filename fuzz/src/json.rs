//! A small, independent JSON reader (RFC 8259 grammar) used as the envelope target's oracle.
//! It keeps what serde would lose: duplicate keys, key order, and whether a number or string
//! is one serde_json treats specially.

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, as written.
    Num(Number),
    /// A string; `None` when it contains an unpaired surrogate escape (serde_json refuses
    /// those in strings it decodes but not in values it skips, so outcomes depend on position).
    Str(Option<String>),
    /// An array.
    Arr(Vec<Json>),
    /// An object, keys in order, duplicates kept.
    Obj(Vec<(Option<String>, Json)>),
}

/// A number literal.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    /// The literal text.
    pub text: String,
}

impl Number {
    /// The value as an integer when written as one (`-0` is 0).
    pub fn as_integer(&self) -> Option<i128> {
        if self.text.contains(['.', 'e', 'E']) || self.text.len() > 30 {
            return None;
        }
        self.text.parse().ok()
    }
}

impl Json {
    /// Whether any string or key anywhere holds an unpaired surrogate.
    pub fn has_lone_surrogate(&self) -> bool {
        match self {
            Json::Str(s) => s.is_none(),
            Json::Arr(items) => items.iter().any(Json::has_lone_surrogate),
            Json::Obj(entries) => entries
                .iter()
                .any(|(k, v)| k.is_none() || v.has_lone_surrogate()),
            _ => false,
        }
    }
}

/// Nesting beyond this is left to the core without a precise expectation.
pub const MAX_DEPTH: usize = 256;

/// Why parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not JSON.
    Syntax,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// Parses a whole document (surrounding whitespace allowed).
pub fn parse(text: &str) -> Result<Json, Error> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(Error::Syntax);
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), Error> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(Error::Syntax)
        }
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, Error> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(Error::Syntax)
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, Error> {
        match self.peek().ok_or(Error::Syntax)? {
            b'n' => self.literal("null", Json::Null),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'"' => Ok(Json::Str(self.string()?)),
            b'-' | b'0'..=b'9' => self.number(),
            b'[' | b'{' if depth >= MAX_DEPTH => Err(Error::TooDeep),
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(Error::Syntax),
                    }
                }
            }
            b'{' => {
                self.i += 1;
                let mut entries = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(entries));
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(Error::Syntax);
                    }
                    let key = self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    let v = self.value(depth + 1)?;
                    entries.push((key, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(entries));
                        }
                        _ => return Err(Error::Syntax),
                    }
                }
            }
            _ => Err(Error::Syntax),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Json, Error> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(Error::Syntax),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(Error::Syntax);
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(Error::Syntax);
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII");
        Ok(Json::Num(Number { text: text.into() }))
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let digits = self.s.get(self.i..self.i + 4).ok_or(Error::Syntax)?;
        let mut n = 0;
        for &d in digits {
            n = n * 16 + (d as char).to_digit(16).ok_or(Error::Syntax)?;
        }
        self.i += 4;
        Ok(n)
    }

    /// A string literal; `Ok(None)` when it holds an unpaired surrogate.
    fn string(&mut self) -> Result<Option<String>, Error> {
        self.eat(b'"')?;
        let mut out = String::new();
        let mut paired = true;
        loop {
            let b = self.peek().ok_or(Error::Syntax)?;
            match b {
                b'"' => {
                    self.i += 1;
                    return Ok(paired.then_some(out));
                }
                0x00..=0x1f => return Err(Error::Syntax),
                b'\\' => {
                    self.i += 1;
                    let e = self.peek().ok_or(Error::Syntax)?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi)
                                && self.s[self.i..].starts_with(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                    out.push(char::from_u32(c).expect("valid pair"));
                                    continue;
                                }
                                self.i = save;
                            }
                            match char::from_u32(hi) {
                                Some(c) => out.push(c),
                                None => paired = false,
                            }
                        }
                        _ => return Err(Error::Syntax),
                    }
                }
                _ => {
                    // Copy one UTF-8 character (the input is a `&str`).
                    let len = match b {
                        0x00..=0x7f => 1,
                        0xc0..=0xdf => 2,
                        0xe0..=0xef => 3,
                        _ => 4,
                    };
                    let ch = std::str::from_utf8(&self.s[self.i..self.i + len]).expect("UTF-8");
                    out.push_str(ch);
                    self.i += len;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        for ok in [
            "0",
            "-0",
            "1.5e+3",
            "\"\\ud83d\\ude00\"",
            "[]",
            "{}",
            " {\"a\" : [1, {\"b\":null}]} ",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "01",
            "1.",
            ".5",
            "-",
            "[1,]",
            "{\"a\"}",
            "\"\u{1}\"",
            "tru",
            "1 2",
        ] {
            assert_eq!(parse(bad), Err(Error::Syntax), "{bad}");
        }
        assert_eq!(parse("\"\\ud800\""), Ok(Json::Str(None)));
    }
}
