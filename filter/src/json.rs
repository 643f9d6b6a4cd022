//! A small JSON reader for the plugin configuration.
//!
//! Why not serde_json in the module: with it (and the `core::fmt` machinery its errors pull
//! in) the module is 118 KB; without, under 64 KB. The configuration is read once per plugin,
//! so speed does not matter here, only size and exactness: the tests check this reader
//! against serde_json on valid and invalid documents.

/// A parsed JSON value. Numbers are checked for syntax but not converted: no configuration
/// field is a number, so a number is only ever reported as the wrong type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Bool(bool),
    Number,
    String(String),
    Array(Vec<Value>),
    /// Members in document order; duplicates are kept for the caller to refuse.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// What the value is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }
}

/// A syntax error: the byte offset where reading stopped and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub offset: usize,
    pub problem: &'static str,
}

/// Nesting deeper than this many arrays/objects is refused rather than risking the VM's stack.
/// The refusal message spells the number out (no `core::fmt` here); a test ties the two.
pub const MAX_DEPTH: usize = 32;

pub fn parse(bytes: &[u8]) -> Result<Value, SyntaxError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            return Err(SyntaxError {
                offset: e.valid_up_to(),
                problem: "the configuration is not UTF-8",
            });
        }
    };
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = reader.value(0)?;
    reader.skip_whitespace();
    if reader.pos != reader.bytes.len() {
        return Err(reader.error("trailing characters after the JSON value"));
    }
    Ok(value)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn error(&self, problem: &'static str) -> SyntaxError {
        SyntaxError {
            offset: self.pos,
            problem,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `depth`: how many arrays/objects enclose this value.
    fn value(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        self.skip_whitespace();
        // Opening a container here makes depth + 1 levels.
        if depth >= MAX_DEPTH && matches!(self.peek(), Some(b'{' | b'[')) {
            return Err(self.error("nested more than 32 levels deep"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a JSON value")),
            None => Err(self.error("unexpected end of input, expected a JSON value")),
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, SyntaxError> {
        if self
            .bytes
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(word.as_bytes()))
        {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, SyntaxError> {
        self.eat(b'-');
        if self.eat(b'0') {
            if let Some(b'0'..=b'9') = self.peek() {
                return Err(self.error("a number cannot have leading zeros"));
            }
        } else if self.digits() == 0 {
            return Err(self.error("expected digits"));
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.error("expected digits after the decimal point"));
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(self.error("expected digits in the exponent"));
            }
        }
        Ok(Value::Number)
    }

    fn array(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.eat(b']') {
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            if self.eat(b']') {
                return Ok(Value::Array(items));
            }
            if !self.eat(b',') {
                return Err(self.error("expected `,` or `]` in an array"));
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        self.pos += 1;
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.eat(b'}') {
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a quoted field name"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if !self.eat(b':') {
                return Err(self.error("expected `:` after a field name"));
            }
            let value = self.value(depth + 1)?;
            members.push((key, value));
            self.skip_whitespace();
            if self.eat(b'}') {
                return Ok(Value::Object(members));
            }
            if !self.eat(b',') {
                return Err(self.error("expected `,` or `}` in an object"));
            }
        }
    }

    /// Reads a string starting at its opening quote.
    fn string(&mut self) -> Result<String, SyntaxError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            // Copy the run of plain characters in one go; `text` is valid UTF-8 and the run
            // ends on an ASCII byte, so the slice is on character boundaries.
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(self.text.get(start..self.pos).unwrap_or_default());
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                Some(_) => return Err(self.error("control character inside a string")),
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    fn escape(&mut self) -> Result<char, SyntaxError> {
        let Some(b) = self.peek() else {
            return Err(self.error("unterminated string"));
        };
        self.pos += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => {
                self.pos -= 1;
                return Err(self.error("unknown escape in a string"));
            }
        })
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut n = 0;
        for _ in 0..4 {
            let digit = self.peek().and_then(|b| char::from(b).to_digit(16));
            let Some(digit) = digit else {
                return Err(self.error("expected 4 hex digits after \\u"));
            };
            n = n * 16 + digit;
            self.pos += 1;
        }
        Ok(n)
    }

    fn unicode_escape(&mut self) -> Result<char, SyntaxError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !(self.eat(b'\\') && self.eat(b'u')) {
                    return Err(self.error("unpaired surrogate in \\u escape"));
                }
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("unpaired surrogate in \\u escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("unpaired surrogate in \\u escape")),
            _ => first,
        };
        char::from_u32(code).ok_or(self.error("invalid \\u escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's view of the same document, in this module's terms.
    fn reference(text: &str) -> Option<Value> {
        fn convert(v: serde_json::Value) -> Value {
            match v {
                serde_json::Value::Null => Value::Null,
                serde_json::Value::Bool(b) => Value::Bool(b),
                serde_json::Value::Number(_) => Value::Number,
                serde_json::Value::String(s) => Value::String(s),
                serde_json::Value::Array(a) => Value::Array(a.into_iter().map(convert).collect()),
                serde_json::Value::Object(o) => {
                    Value::Object(o.into_iter().map(|(k, v)| (k, convert(v))).collect())
                }
            }
        }
        serde_json::from_str(text).ok().map(convert)
    }

    #[test]
    fn agrees_with_serde_json() {
        let corpus = [
            "{}",
            " { } ",
            "[]",
            "null",
            "true",
            "false",
            "0",
            "-0",
            "12.5e-3",
            "1E+9",
            r#"{"a": [1, "x", null, {"b": false}], "c": "d"}"#,
            r#""esc \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00""#,
            "\"raw é ü 😀\"",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "[1,]",
            "{\"a\":1,}",
            "{a:1}",
            "{\"a\" 1}",
            "[1 2]",
            "\"unterminated",
            "\"bad \\x escape\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"\\u12\"",
            "\"tab\tinside\"",
            "tru",
            "nul",
            "{} {}",
            "",
            "   ",
            "[[[[]]]]",
        ];
        for text in corpus {
            assert_eq!(
                parse(text.as_bytes()).ok(),
                reference(text),
                "document: {text:?}"
            );
        }
    }

    #[test]
    fn keeps_duplicate_members_in_order() {
        assert_eq!(
            parse(br#"{"a": true, "a": false}"#),
            Ok(Value::Object(vec![
                ("a".into(), Value::Bool(true)),
                ("a".into(), Value::Bool(false)),
            ]))
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        let err = parse(br#"{"a": tru}"#).unwrap_err();
        assert_eq!(err.offset, 6);
        assert_eq!(
            parse(b"{\"a\": 1").unwrap_err().problem,
            "expected `,` or `}` in an object"
        );
        assert_eq!(
            parse(b"\xff").unwrap_err().problem,
            "the configuration is not UTF-8"
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let deep = "[".repeat(10_000);
        assert!(
            parse(deep.as_bytes())
                .unwrap_err()
                .problem
                .contains("nested")
        );
    }

    /// The limit the message names is the limit enforced, for arrays, objects and mixes.
    #[test]
    fn nesting_limit_is_the_one_the_message_names() {
        let nested = |levels: usize, open: &str, close: &str| {
            format!("{}1{}", open.repeat(levels), close.repeat(levels))
        };
        for (open, close) in [("[", "]"), ("{\"a\":", "}"), ("[{\"a\":", "}]")] {
            // Containers opened per repetition.
            let per = open.matches(['[', '{']).count();
            let at_limit = nested(MAX_DEPTH / per, open, close);
            assert!(parse(at_limit.as_bytes()).is_ok(), "{at_limit}");
            let over = nested(MAX_DEPTH / per + 1, open, close);
            let err = parse(over.as_bytes()).unwrap_err();
            assert!(
                err.problem
                    .contains(&format!("more than {MAX_DEPTH} levels")),
                "{}",
                err.problem
            );
        }
        let exactly = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(exactly.as_bytes()).is_ok());
        let one_more = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse(one_more.as_bytes()).is_err());
    }
}
