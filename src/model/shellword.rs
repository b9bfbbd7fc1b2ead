//! Where each `{{ var }}` stands in the shell line of a `command` or `local` gate.
//!
//! ngfleet expands every template in those lines as exactly one quoted shell word
//! ([`Template::render_shell`]), so the spec author writes `test -d {{ docroot }}`, never
//! `test -d "{{ docroot }}"`. A quoted word keeps a value literal only where the shell removes
//! quotes once and reads no further: not inside the author's own quotes (the value's quotes
//! would end them), not in backquotes (their backslash pass rewrites the word), not in
//! arithmetic (`$(( ))`, bash's `(( ))` and `[[ ]]` evaluate the text, `$( )` included), not in
//! a here-document (quotes are not removed there), not in a comment (a newline in the value
//! would end it), and not right after `\` or `$`. This module finds templates in such places so
//! validation can refuse them. Pure: it reads only the template's text.
//!
//! It is a lexer of the author's shell, good enough for the constructs a gate line uses; it
//! guards the author against misplacing a template, while the quoting itself is what keeps
//! inventory values from being read as shell.

use super::template::{Part, Template};

/// A place where a quoted word would not stay one literal word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    SingleQuotes,
    DoubleQuotes,
    Backquotes,
    Arithmetic,
    DoubleBrackets,
    HereDocument,
    Comment,
    AfterBackslash,
    AfterDollar,
}

impl Place {
    fn explain(self) -> &'static str {
        match self {
            Place::SingleQuotes => {
                "is inside single quotes: drop the quotes, ngfleet quotes each expansion as one shell word"
            }
            Place::DoubleQuotes => {
                "is inside double quotes: drop the quotes, ngfleet quotes each expansion as one shell word"
            }
            Place::Backquotes => {
                "is inside backquotes, which undo ngfleet's quoting of each expansion: use `$( … )`"
            }
            Place::Arithmetic => {
                "is inside an arithmetic expression, where the shell would evaluate the value as code: compare with `test` instead"
            }
            Place::DoubleBrackets => {
                "is inside `[[ … ]]`, where bash may evaluate the value as arithmetic code: use `test` or `[ … ]`"
            }
            Place::HereDocument => {
                "is in a here-document, where quotes are not removed: pass it as an argument instead"
            }
            Place::Comment => "is in a comment, which a value with a newline would end: remove it",
            Place::AfterBackslash => {
                "follows a backslash, which would break ngfleet's quoting of the expansion: remove the backslash"
            }
            Place::AfterDollar => {
                "follows `$`: remove the `$`, ngfleet puts the value itself there as one shell word"
            }
        }
    }
}

/// A template in a place where its quoted value would not stay one literal word.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{{{{ {var} }}}}` {}", place.explain())]
pub struct Misplaced {
    pub var: String,
    pub place: Place,
}

/// Every template of `line` that stands where one quoted shell word would not stay literal, in
/// order.
pub fn misplaced(line: &Template) -> Vec<Misplaced> {
    let items: Vec<Item<'_>> = line
        .parts()
        .flat_map(|p| match p {
            Part::Text(t) => t.chars().map(Item::Char).collect::<Vec<_>>(),
            Part::Var(v) => vec![Item::Var(v)],
        })
        .collect();
    let mut lexer = Lexer {
        items,
        at: 0,
        frames: vec![Frame::Top],
        word_start: true,
        heredocs: Vec::new(),
        found: Vec::new(),
    };
    lexer.run();
    lexer.found
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item<'a> {
    Char(char),
    Var(&'a str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    /// Plain shell text.
    Top,
    /// `$( … )`, with the depth of parentheses opened inside it.
    Subst(u32),
    /// bash's `[[ … ]]`.
    DoubleBrackets,
    SingleQuotes,
    DoubleQuotes,
    Backquotes,
    /// `$(( … ))` or `(( … ))`, with the depth of parentheses opened inside it.
    Arithmetic(u32),
}

/// A here-document whose body starts at the next newline.
struct HereDoc {
    delimiter: String,
    strip_tabs: bool,
}

struct Lexer<'a> {
    items: Vec<Item<'a>>,
    at: usize,
    frames: Vec<Frame>,
    /// Whether the next character starts a word (for `#`, `[[`, `((`).
    word_start: bool,
    heredocs: Vec<HereDoc>,
    found: Vec<Misplaced>,
}

impl<'a> Lexer<'a> {
    fn peek(&self, ahead: usize) -> Option<Item<'a>> {
        self.items.get(self.at + ahead).copied()
    }

    fn char_at(&self, ahead: usize) -> Option<char> {
        match self.peek(ahead) {
            Some(Item::Char(c)) => Some(c),
            _ => None,
        }
    }

    fn frame(&self) -> Frame {
        self.frames.last().copied().unwrap_or(Frame::Top)
    }

    fn report(&mut self, var: &str, place: Place) {
        self.found.push(Misplaced {
            var: var.to_owned(),
            place,
        });
    }

    /// Where a template at the current point would be misplaced, if it would.
    fn var_place(&self) -> Option<Place> {
        if self.frames.contains(&Frame::Backquotes) {
            return Some(Place::Backquotes);
        }
        if self
            .frames
            .iter()
            .any(|f| matches!(f, Frame::Arithmetic(_)))
        {
            return Some(Place::Arithmetic);
        }
        match self.frame() {
            Frame::SingleQuotes => Some(Place::SingleQuotes),
            Frame::DoubleQuotes => Some(Place::DoubleQuotes),
            Frame::DoubleBrackets => Some(Place::DoubleBrackets),
            _ => None,
        }
    }

    fn run(&mut self) {
        while let Some(item) = self.peek(0) {
            match item {
                Item::Var(v) => {
                    if let Some(place) = self.var_place() {
                        self.report(v, place);
                    }
                    self.at += 1;
                    self.word_start = false;
                }
                Item::Char(c) => match self.frame() {
                    Frame::SingleQuotes => {
                        if c == '\'' {
                            self.frames.pop();
                        }
                        self.at += 1;
                    }
                    Frame::DoubleQuotes => self.double_quoted(c),
                    Frame::Backquotes => self.backquoted(c),
                    Frame::Arithmetic(depth) => self.arithmetic(c, depth),
                    Frame::Top | Frame::Subst(_) | Frame::DoubleBrackets => self.plain(c),
                },
            }
        }
    }

    /// `\` escapes the next item; a template there is misplaced.
    fn escaped(&mut self) {
        match self.peek(1) {
            Some(Item::Var(v)) => {
                self.report(v, Place::AfterBackslash);
                self.at += 2;
            }
            Some(Item::Char(_)) => self.at += 2,
            None => self.at += 1,
        }
    }

    /// `$(`, `$((` or `$` before a template; false when `$` is just a character here.
    fn dollar(&mut self) -> bool {
        match (self.peek(1), self.char_at(2)) {
            (Some(Item::Char('(')), Some('(')) => {
                self.frames.push(Frame::Arithmetic(0));
                self.at += 3;
                self.word_start = false;
                true
            }
            (Some(Item::Char('(')), _) => {
                self.frames.push(Frame::Subst(0));
                self.at += 2;
                self.word_start = true;
                true
            }
            (Some(Item::Var(v)), _) => {
                self.report(v, Place::AfterDollar);
                self.at += 2;
                self.word_start = false;
                true
            }
            _ => false,
        }
    }

    fn double_quoted(&mut self, c: char) {
        match c {
            '\\' => return self.escaped(),
            '"' => {
                self.frames.pop();
            }
            '`' => self.frames.push(Frame::Backquotes),
            '$' if self.dollar() => return,
            _ => {}
        }
        self.at += 1;
    }

    fn backquoted(&mut self, c: char) {
        match c {
            '\\' => return self.escaped(),
            '`' => {
                self.frames.pop();
            }
            _ => {}
        }
        self.at += 1;
    }

    fn arithmetic(&mut self, c: char, depth: u32) {
        match c {
            '\\' => return self.escaped(),
            '`' => self.frames.push(Frame::Backquotes),
            '$' if self.dollar() => return,
            '(' => self.set_frame(Frame::Arithmetic(depth + 1)),
            ')' if depth > 0 => self.set_frame(Frame::Arithmetic(depth - 1)),
            ')' => {
                self.frames.pop();
                if self.char_at(1) == Some(')') {
                    self.at += 1;
                }
            }
            _ => {}
        }
        self.at += 1;
    }

    fn set_frame(&mut self, frame: Frame) {
        if let Some(last) = self.frames.last_mut() {
            *last = frame;
        }
    }

    /// Unquoted text: the top level, `$( … )` and `[[ … ]]`.
    fn plain(&mut self, c: char) {
        let word_start = self.word_start;
        self.word_start = matches!(
            c,
            ' ' | '\t' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>'
        );
        match c {
            '\\' => return self.escaped(),
            '\'' => self.frames.push(Frame::SingleQuotes),
            '"' => self.frames.push(Frame::DoubleQuotes),
            '`' => self.frames.push(Frame::Backquotes),
            '$' if self.dollar() => return,
            '#' if word_start => return self.comment(),
            '\n' => {
                self.at += 1;
                return self.heredoc_bodies();
            }
            '<' if self.char_at(1) == Some('<') && self.char_at(2) == Some('<') => {
                // A here-string (`<<<`): a plain word follows.
                self.at += 3;
                return;
            }
            '<' if self.char_at(1) == Some('<') => return self.heredoc_operator(),
            '(' if word_start && self.char_at(1) == Some('(') => {
                self.frames.push(Frame::Arithmetic(0));
                self.at += 2;
                return;
            }
            '[' if word_start && self.char_at(1) == Some('[') && self.blank_at(2) => {
                self.frames.push(Frame::DoubleBrackets);
                self.at += 2;
                return;
            }
            ']' if word_start
                && self.frame() == Frame::DoubleBrackets
                && self.char_at(1) == Some(']') =>
            {
                self.frames.pop();
                self.at += 2;
                return;
            }
            '(' => {
                if let Frame::Subst(depth) = self.frame() {
                    self.set_frame(Frame::Subst(depth + 1));
                }
            }
            ')' => match self.frame() {
                Frame::Subst(0) => {
                    self.frames.pop();
                    self.word_start = false;
                }
                Frame::Subst(depth) => self.set_frame(Frame::Subst(depth - 1)),
                _ => {}
            },
            _ => {}
        }
        self.at += 1;
    }

    fn blank_at(&self, ahead: usize) -> bool {
        matches!(self.char_at(ahead), Some(' ' | '\t' | '\n'))
    }

    /// From an unquoted `#` at the start of a word to the end of the line.
    fn comment(&mut self) {
        while let Some(item) = self.peek(0) {
            match item {
                Item::Char('\n') => break,
                Item::Var(v) => self.report(v, Place::Comment),
                Item::Char(_) => {}
            }
            self.at += 1;
        }
    }

    /// `<<WORD` or `<<-WORD`: notes the delimiter (quotes removed); a template in it is
    /// misplaced (it would be part of the here-document's syntax).
    fn heredoc_operator(&mut self) {
        self.at += 2;
        let strip_tabs = self.char_at(0) == Some('-');
        if strip_tabs {
            self.at += 1;
        }
        while matches!(self.char_at(0), Some(' ' | '\t')) {
            self.at += 1;
        }
        let mut delimiter = String::new();
        while let Some(item) = self.peek(0) {
            match item {
                Item::Char(' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')') => break,
                Item::Char('\'' | '"' | '\\') => {}
                Item::Char(c) => delimiter.push(c),
                Item::Var(v) => self.report(v, Place::HereDocument),
            }
            self.at += 1;
        }
        self.word_start = false;
        self.heredocs.push(HereDoc {
            delimiter,
            strip_tabs,
        });
    }

    /// After a newline: the bodies of the here-documents opened on the line just ended.
    fn heredoc_bodies(&mut self) {
        self.word_start = true;
        for doc in std::mem::take(&mut self.heredocs) {
            loop {
                let mut line = String::new();
                let mut vars = Vec::new();
                let mut ended = false;
                while let Some(item) = self.peek(0) {
                    self.at += 1;
                    match item {
                        Item::Char('\n') => {
                            ended = true;
                            break;
                        }
                        Item::Char(c) => line.push(c),
                        Item::Var(v) => {
                            vars.push(v);
                            line.push('\u{0}');
                        }
                    }
                }
                let text = if doc.strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line.as_str()
                };
                if vars.is_empty() && text == doc.delimiter {
                    break;
                }
                for v in vars {
                    self.report(v, Place::HereDocument);
                }
                if !ended {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(line: &str) -> Vec<(String, Place)> {
        let t: Template = line.parse().expect("valid template");
        misplaced(&t)
            .into_iter()
            .map(|m| (m.var, m.place))
            .collect()
    }

    fn one(line: &str) -> Option<Place> {
        let found = places(line);
        assert!(found.len() <= 1, "{line}: {found:?}");
        found.first().map(|(_, p)| *p)
    }

    #[test]
    fn plain_words_are_fine() {
        for line in [
            "test -d {{ dir }}",
            "test -n {{ a }} && test {{ a }} = {{ b }}",
            "ls -- {{ dir }}/index.html --root={{ dir }}",
            "printf '%s\\n' {{ a }} \"$HOME\" > {{ out }}",
            "echo 'it''s' {{ a }} \"quoted \\\" still\" {{ b }}",
            "test \"$(cat {{ file }})\" = ok",
            "x=$(printf %s {{ a }}) && test -n \"$x\"",
            "case {{ a }} in (x) true;; *) false;; esac",
            "test -f {{ a }} # a comment about it",
            "cat <<EOF\nfixed text\nEOF\ntest -n {{ a }}",
            "cat <<-'END'\n\tliteral $x\n\tEND\nls {{ dir }}",
            "[ -n {{ a }} ] && echo ${x:-y} {{ b }}",
            "echo a#b {{ a }}",
            "grep -q x <<< {{ a }}",
        ] {
            assert_eq!(places(line), [], "{line}");
        }
    }

    #[test]
    fn quoted_templates_are_misplaced() {
        assert_eq!(
            places("test -n \"{{ docroot }}\" && ls '{{ dir }}/x'"),
            [
                ("docroot".to_owned(), Place::DoubleQuotes),
                ("dir".to_owned(), Place::SingleQuotes),
            ]
        );
        assert_eq!(one("echo \"a $(ls) {{ x }}\""), Some(Place::DoubleQuotes));
        assert_eq!(one("echo \"\\\"{{ x }}\""), Some(Place::DoubleQuotes));
        assert_eq!(one("echo 'a\" {{ x }}'"), Some(Place::SingleQuotes));
    }

    #[test]
    fn other_unsafe_places_are_misplaced() {
        for (line, place) in [
            ("echo `cat {{ f }}`", Place::Backquotes),
            ("echo \"`cat {{ f }}`\"", Place::Backquotes),
            ("echo $(( {{ n }} + 1 ))", Place::Arithmetic),
            ("echo $(( $(echo {{ n }}) + 1 ))", Place::Arithmetic),
            ("(( {{ n }} > 1 ))", Place::Arithmetic),
            ("[[ {{ n }} -eq 1 ]]", Place::DoubleBrackets),
            ("cat <<EOF\nvalue {{ v }}\nEOF", Place::HereDocument),
            ("cat <<{{ v }}\nx\n", Place::HereDocument),
            ("true # {{ v }}", Place::Comment),
            ("#{{ v }}", Place::Comment),
            ("echo \\{{ v }}", Place::AfterBackslash),
            ("echo ${{ v }}", Place::AfterDollar),
            ("echo \"${{ v }}\"", Place::AfterDollar),
        ] {
            assert_eq!(one(line), Some(place), "{line}");
        }
    }

    #[test]
    fn lexing_resumes_after_each_construct() {
        for line in [
            "echo `date` {{ a }}",
            "echo $(( 1 + (2 * 3) )) {{ a }}",
            "[[ -n x ]] && test -n {{ a }}",
            "echo \"$(echo \"in\")\" {{ a }}",
            "cat <<EOF\nx\nEOF\necho {{ a }}",
            "true # comment\necho {{ a }}",
            "echo 'x' {{ a }} \"y\" {{ b }}",
            "echo $( (cd / && pwd) ) {{ a }}",
        ] {
            assert_eq!(places(line), [], "{line}");
        }
    }

    #[test]
    fn the_message_names_the_template_and_the_fix() {
        let t: Template = "test -n \"{{ docroot }}\"".parse().expect("valid");
        assert_eq!(
            misplaced(&t)[0].to_string(),
            "`{{ docroot }}` is inside double quotes: drop the quotes, ngfleet quotes each expansion as one shell word"
        );
    }
}
