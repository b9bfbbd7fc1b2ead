//! Python's `ast.literal_eval`, as Ansible's INI inventory types its values: `8080` is a
//! number, `'8080'` a string, `True` a boolean, `None` null, `[1, 'a']` a list, `{'k': 1}` a
//! mapping; anything that is not a literal (`yes`, `web-01`, `hello # x`) stays the text it
//! was. Tuples read as lists, bytes as text, as Ansible converts them.
//!
//! Not handled (they stay text where Ansible converts them): complex numbers, sets, integers
//! beyond 64 bits, mapping keys that are not strings, signs on booleans.

use yaml_serde::{Mapping, Number, Value};

/// The value `text` stands for, or `None` where Python's `literal_eval` would fail (or this
/// reader does not follow it).
pub fn eval(text: &str) -> Option<Value> {
    let mut parser = Parser {
        chars: text.trim_start_matches([' ', '\t']).chars().collect(),
        at: 0,
    };
    let value = parser.expression()?;
    parser.blank();
    (parser.at == parser.chars.len()).then_some(value)
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    /// Skips blanks and a comment (up to the end of the text).
    fn blank(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\x0c' => self.at += 1,
                '#' => self.at = self.chars.len(),
                _ => break,
            }
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.blank();
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expression(&mut self) -> Option<Value> {
        self.blank();
        match self.peek()? {
            '-' | '+' => {
                let negative = self.peek() == Some('-');
                self.at += 1;
                self.blank();
                // A sign applies to a number (parentheses make no node in Python).
                let mut depth = 0;
                while self.eat('(') {
                    depth += 1;
                }
                self.blank();
                let number = self.number()?;
                for _ in 0..depth {
                    if !self.eat(')') {
                        return None;
                    }
                }
                if negative {
                    negate(&number)
                } else {
                    Some(number)
                }
            }
            '0'..='9' | '.' if self.chars.get(self.at..self.at + 3) != Some(&['.', '.', '.']) => {
                self.number()
            }
            '.' => {
                self.at += 3;
                Some(Value::String("...".into()))
            }
            '[' => {
                self.at += 1;
                self.sequence(']').map(Value::Sequence)
            }
            '(' => {
                self.at += 1;
                self.parenthesized()
            }
            '{' => {
                self.at += 1;
                self.mapping()
            }
            '\'' | '"' => self.strings(),
            c if c.is_alphabetic() || c == '_' => {
                let start = self.at;
                while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    self.at += 1;
                }
                let word: String = self.chars[start..self.at].iter().collect();
                match word.as_str() {
                    "True" => Some(Value::Bool(true)),
                    "False" => Some(Value::Bool(false)),
                    "None" => Some(Value::Null),
                    prefix
                        if matches!(self.peek(), Some('\'' | '"')) && is_string_prefix(prefix) =>
                    {
                        self.at = start;
                        self.strings()
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Items up to `close`, with an optional trailing comma.
    fn sequence(&mut self, close: char) -> Option<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(items);
            }
            items.push(self.expression()?);
            if !self.eat(',') {
                return self.eat(close).then_some(items);
            }
        }
    }

    /// `()` (a tuple), `(x)` (x itself) or `(x, ...)` (a tuple).
    fn parenthesized(&mut self) -> Option<Value> {
        if self.eat(')') {
            return Some(Value::Sequence(Vec::new()));
        }
        let first = self.expression()?;
        if self.eat(')') {
            return Some(first);
        }
        if !self.eat(',') {
            return None;
        }
        let mut rest = self.sequence(')')?;
        rest.insert(0, first);
        Some(Value::Sequence(rest))
    }

    fn mapping(&mut self) -> Option<Value> {
        let mut mapping = Mapping::new();
        loop {
            if self.eat('}') {
                return Some(Value::Mapping(mapping));
            }
            let key = self.expression()?;
            if !matches!(key, Value::String(_)) || !self.eat(':') {
                return None;
            }
            let value = self.expression()?;
            mapping.insert(key, value);
            if !self.eat(',') {
                return self.eat('}').then_some(Value::Mapping(mapping));
            }
        }
    }

    /// One or more adjacent string literals, joined (as Python does).
    fn strings(&mut self) -> Option<Value> {
        let mut text = String::new();
        loop {
            self.blank();
            let start = self.at;
            while self.peek().is_some_and(char::is_alphabetic) {
                self.at += 1;
            }
            let prefix: String = self.chars[start..self.at].iter().collect();
            match self.peek() {
                Some('\'' | '"') if is_string_prefix(&prefix) => {
                    text.push_str(&self.string(prefix.to_ascii_lowercase().contains('r'))?);
                }
                _ => {
                    self.at = start;
                    break;
                }
            }
        }
        Some(Value::String(text))
    }

    fn string(&mut self, raw: bool) -> Option<String> {
        let quote = self.peek()?;
        let triple = self.chars.get(self.at..self.at + 3) == Some(&[quote, quote, quote]);
        self.at += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            if c == quote
                && (!triple || self.chars.get(self.at..self.at + 3) == Some(&[quote, quote, quote]))
            {
                self.at += if triple { 3 } else { 1 };
                return Some(out);
            }
            self.at += 1;
            if c != '\\' {
                if c == '\n' && !triple {
                    return None;
                }
                out.push(c);
                continue;
            }
            let next = self.peek()?;
            self.at += 1;
            if raw {
                out.push('\\');
                out.push(next);
                continue;
            }
            match next {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'v' => out.push('\x0b'),
                '\\' | '\'' | '"' => out.push(next),
                '\n' => {}
                'x' => out.push(self.code(2)?),
                'u' => out.push(self.code(4)?),
                'U' => out.push(self.code(8)?),
                '0'..='7' => {
                    let mut value = next.to_digit(8)?;
                    for _ in 0..2 {
                        match self.peek().and_then(|c| c.to_digit(8)) {
                            Some(d) => {
                                value = value * 8 + d;
                                self.at += 1;
                            }
                            None => break,
                        }
                    }
                    out.push(char::from_u32(value)?);
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }

    fn code(&mut self, digits: usize) -> Option<char> {
        let hex: String = self.chars.get(self.at..self.at + digits)?.iter().collect();
        self.at += digits;
        char::from_u32(u32::from_str_radix(&hex, 16).ok()?)
    }

    /// A Python number: decimal, hexadecimal, octal or binary integer, or float.
    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            || (matches!(self.peek(), Some('+' | '-'))
                && matches!(self.chars.get(self.at - 1), Some('e' | 'E'))
                && !self.chars[start..self.at]
                    .iter()
                    .any(|c| matches!(c, 'x' | 'X')))
        {
            self.at += 1;
        }
        let token: String = self.chars[start..self.at].iter().collect();
        number(&token)
    }
}

fn is_string_prefix(prefix: &str) -> bool {
    matches!(
        prefix.to_ascii_lowercase().as_str(),
        "" | "r" | "u" | "b" | "br" | "rb"
    )
}

fn negate(value: &Value) -> Option<Value> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(Value::Number(Number::from(i.checked_neg()?)))
            } else if let Some(u) = n.as_u64() {
                let i = i64::try_from(u).ok()?;
                Some(Value::Number(Number::from(-i)))
            } else {
                n.as_f64().map(|f| Value::Number(Number::from(-f)))
            }
        }
        _ => None,
    }
}

/// One Python number token (underscores between digits allowed).
fn number(token: &str) -> Option<Value> {
    let digits_ok = |body: &str, radix: u32| {
        !body.is_empty()
            && !body.starts_with('_')
            && !body.ends_with('_')
            && !body.contains("__")
            && body.chars().all(|c| c == '_' || c.is_digit(radix))
    };
    let lower = token.to_ascii_lowercase();
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(body) = lower.strip_prefix(prefix) {
            let body = body.strip_prefix('_').unwrap_or(body);
            if !digits_ok(body, radix) {
                return None;
            }
            let value = u64::from_str_radix(&body.replace('_', ""), radix).ok()?;
            return Some(Value::Number(Number::from(value)));
        }
    }
    if lower.ends_with('j') {
        return None;
    }
    if lower.chars().all(|c| c.is_ascii_digit() || c == '_') {
        if !digits_ok(&lower, 10) {
            return None;
        }
        let plain = lower.replace('_', "");
        // Python refuses leading zeros on a non-zero decimal (`0777`).
        if plain.len() > 1 && plain.starts_with('0') && plain.chars().any(|c| c != '0') {
            return None;
        }
        return plain
            .parse::<u64>()
            .ok()
            .map(|u| Value::Number(Number::from(u)));
    }
    // A float: digits, an optional point and fraction, an optional exponent.
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (lower.as_str(), None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let part_ok = |part: &str| part.is_empty() || digits_ok(part, 10);
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        digits_ok(e, 10)
    });
    let has_digits = !whole.is_empty() || fraction.is_some_and(|f| !f.is_empty());
    if !(part_ok(whole) && fraction.is_none_or(part_ok) && exponent_ok && has_digits)
        || (fraction.is_none() && exponent.is_none())
    {
        return None;
    }
    let value: f64 = lower.replace('_', "").parse().ok()?;
    value
        .is_finite()
        .then(|| Value::Number(Number::from(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Option<String> {
        eval(text).map(|v| serde_json::to_string(&v).expect("json"))
    }

    #[test]
    fn literals_as_python_reads_them() {
        let cases = [
            ("8080", Some("8080")),
            ("-5", Some("-5")),
            ("1_000", Some("1000")),
            ("0x1F", Some("31")),
            ("1.50", Some("1.5")),
            ("1e3", Some("1000.0")),
            (".5", Some("0.5")),
            ("'8080'", Some("\"8080\"")),
            ("\"a\" 'b'", Some("\"ab\"")),
            ("'x y'", Some("\"x y\"")),
            ("True", Some("true")),
            ("None", Some("null")),
            ("[1, 'a']", Some("[1,\"a\"]")),
            ("(1,)", Some("[1]")),
            ("(1)", Some("1")),
            ("{'k': [1]}", Some("{\"k\":[1]}")),
            ("True # comment", Some("true")),
            ("'a\\tb'", Some("\"a\\tb\"")),
            ("r'a\\tb'", Some("\"a\\\\tb\"")),
            ("b'x'", Some("\"x\"")),
            ("...", Some("\"...\"")),
            ("-(1)", Some("-1")),
        ];
        for (text, want) in cases {
            assert_eq!(json(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn what_stays_text() {
        for text in [
            "yes",
            "true",
            "web-01",
            "0777",
            "x-1",
            "hello # c",
            "",
            "1+2",
            "--1",
            "1 2",
            "[1,",
            "f'x'",
            "1j",
            "1__0",
            "08",
        ] {
            assert_eq!(json(text), None, "{text}");
        }
    }
}
