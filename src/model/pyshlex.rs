//! Python's `shlex.split(line, comments=True)` (POSIX mode), which Ansible's INI inventory uses
//! to cut a host line into words: quotes group and are removed, `\` escapes, and `#` starts a
//! comment anywhere, even inside a word.

use thiserror::Error;

/// Why a line could not be split.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ShlexError {
    #[error("no closing quotation")]
    NoClosingQuotation,
    #[error("no escaped character")]
    NoEscapedCharacter,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Between,
    Word,
    Quote(char),
    Escape(Escaped),
}

/// The state an escape returns to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Escaped {
    Word,
    DoubleQuote,
}

/// Each word with the character offset where it starts.
pub fn split(line: &str) -> Result<Vec<(String, usize)>, ShlexError> {
    let mut words = Vec::new();
    let mut token = String::new();
    let mut start = 0;
    let mut quoted = false;
    let mut state = State::Between;
    let mut emit = |token: &mut String, quoted: &mut bool, start: usize| {
        if !token.is_empty() || *quoted {
            words.push((std::mem::take(token), start));
        }
        *quoted = false;
    };
    for (at, c) in line.chars().enumerate() {
        match state {
            State::Between => match c {
                ' ' | '\t' | '\r' | '\n' => {}
                '#' => break,
                '\\' => {
                    start = at;
                    state = State::Escape(Escaped::Word);
                }
                '\'' | '"' => {
                    start = at;
                    state = State::Quote(c);
                }
                _ => {
                    start = at;
                    token.push(c);
                    state = State::Word;
                }
            },
            State::Quote(q) => {
                quoted = true;
                if c == q {
                    state = State::Word;
                } else if c == '\\' && q == '"' {
                    state = State::Escape(Escaped::DoubleQuote);
                } else {
                    token.push(c);
                }
            }
            State::Escape(back) => {
                if back == Escaped::DoubleQuote && c != '\\' && c != '"' {
                    token.push('\\');
                }
                token.push(c);
                state = match back {
                    Escaped::Word => State::Word,
                    Escaped::DoubleQuote => State::Quote('"'),
                };
            }
            State::Word => match c {
                ' ' | '\t' | '\r' | '\n' => {
                    emit(&mut token, &mut quoted, start);
                    state = State::Between;
                }
                '#' => {
                    state = State::Between;
                    break;
                }
                '\'' | '"' => state = State::Quote(c),
                '\\' => state = State::Escape(Escaped::Word),
                _ => token.push(c),
            },
        }
    }
    match state {
        State::Quote(_) => return Err(ShlexError::NoClosingQuotation),
        State::Escape(_) => return Err(ShlexError::NoEscapedCharacter),
        State::Word | State::Between => emit(&mut token, &mut quoted, start),
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split(line)
            .expect("splits")
            .into_iter()
            .map(|(w, _)| w)
            .collect()
    }

    #[test]
    fn as_python_splits() {
        assert_eq!(words("web-01 a=1  b='x y'"), ["web-01", "a=1", "b=x y"]);
        assert_eq!(words("h x=\"8080\" # c"), ["h", "x=8080"]);
        assert_eq!(words("h x=a#b"), ["h", "x=a"]);
        assert_eq!(words("h e= q=''"), ["h", "e=", "q="]);
        assert_eq!(words("h x=\"a\\\"b\\n\""), ["h", "x=a\"b\\n"]);
        assert_eq!(words("h x=a\\ b"), ["h", "x=a b"]);
        assert_eq!(words("# all comment"), Vec::<String>::new());
        assert_eq!(split("h x='a"), Err(ShlexError::NoClosingQuotation));
        assert_eq!(split("h x=\\"), Err(ShlexError::NoEscapedCharacter));
        assert_eq!(split("a  bb").expect("splits")[1].1, 3);
    }
}
