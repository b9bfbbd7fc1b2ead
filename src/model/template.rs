//! `{{ var }}` templates in gate definitions, expanded from a host's inventory variables.
//! Only plain variable names are supported (no Jinja filters or expressions): a template that
//! uses more is an error at validation, not a surprise at host 37.
//!
//! Two expansions: [`Template::render`] puts each value in as it is (URLs, host names and paths,
//! which are parsed or passed as one argument, never given to a shell), and
//! [`Template::render_shell`] puts each value in as exactly one quoted shell word (the lines of
//! `command` and `local` gates). Where a shell word may stand in a line is checked by
//! `super::shellword`.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

/// One piece of a template, in order: literal text, or a variable to expand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// Why a template could not be expanded with a host's variables.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("no variable `{0}`")]
    Missing(String),
    #[error("variable `{0}` contains a NUL byte, which no shell word can carry")]
    Nul(String),
}

/// A string with `{{ name }}` placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

impl Template {
    /// The variable names used, in order of first use.
    pub fn vars(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in &self.pieces {
            if let Piece::Var(v) = p
                && !out.contains(&v.as_str())
            {
                out.push(v);
            }
        }
        out
    }

    pub fn is_plain(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Text(_)))
    }

    /// The pieces in order.
    pub fn parts(&self) -> impl Iterator<Item = Part<'_>> {
        self.pieces.iter().map(|p| match p {
            Piece::Text(t) => Part::Text(t),
            Piece::Var(v) => Part::Var(v),
        })
    }

    /// Expands with `lookup`, each value as it is; the first missing variable is the error.
    /// Never for text a shell will read: see [`Template::render_shell`].
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<String, RenderError> {
        self.expand(|v| lookup(v).ok_or_else(|| RenderError::Missing(v.to_owned())))
    }

    /// Expands with `lookup` for a shell: the text around the templates is the spec author's
    /// shell code, and each value becomes exactly one quoted word (`'/var/www; touch x'`), so
    /// nothing in a value is ever read as shell syntax. A value with a NUL byte is refused: no
    /// shell word can carry one.
    pub fn render_shell(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<String, RenderError> {
        self.expand(|v| {
            let value = lookup(v).ok_or_else(|| RenderError::Missing(v.to_owned()))?;
            shlex::try_quote(&value)
                .map(|word| word.into_owned())
                .map_err(|_| RenderError::Nul(v.to_owned()))
        })
    }

    fn expand(
        &self,
        value: impl Fn(&str) -> Result<String, RenderError>,
    ) -> Result<String, RenderError> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(&value(v)?),
            }
        }
        Ok(out)
    }
}

impl FromStr for Template {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| TemplateError::Unclosed(s.to_owned()))?;
            let name = after[..end].trim();
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(TemplateError::Expression(after[..end].trim().to_owned()));
            }
            pieces.push(Piece::Var(name.to_owned()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template {
            source: s.to_owned(),
            pieces,
        })
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed `{{{{` in {0:?}")]
    Unclosed(String),
    #[error("only plain variables are supported in templates, found `{{{{ {0} }}}}`")]
    Expression(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables() {
        let t: Template = "https://{{ ansible_host }}:{{port}}/x"
            .parse()
            .expect("valid");
        assert_eq!(t.vars(), ["ansible_host", "port"]);
        let got = t.render(|v| match v {
            "ansible_host" => Some("10.0.0.1".into()),
            "port" => Some("8443".into()),
            _ => None,
        });
        assert_eq!(got, Ok("https://10.0.0.1:8443/x".into()));
        assert_eq!(
            t.render(|_| None),
            Err(RenderError::Missing("ansible_host".into()))
        );
        assert!("plain".parse::<Template>().expect("valid").is_plain());
    }

    #[test]
    fn rejects_expressions_and_unclosed() {
        assert_eq!(
            "{{ x | default('a') }}"
                .parse::<Template>()
                .unwrap_err()
                .to_string(),
            "only plain variables are supported in templates, found `{{ x | default('a') }}`"
        );
        assert_eq!(
            "a {{ b".parse::<Template>().unwrap_err().to_string(),
            "unclosed `{{` in \"a {{ b\""
        );
    }

    /// Values that are shell syntax, each with a marker file it would create if a shell read it.
    fn nasty(dir: &std::path::Path) -> Vec<String> {
        let m = |n: &str| dir.join(n).display().to_string();
        vec![
            format!("/var/www; touch {}", m("semicolon")),
            format!("$(touch {})", m("subst")),
            format!("`touch {}`", m("backquote")),
            format!("x && touch {} || touch {}", m("and"), m("or")),
            format!("a'b; touch {}; '", m("quote")),
            format!("a\"b; touch {}; \"", m("dquote")),
            format!("x\ntouch {}", m("newline")),
            format!("> {}", m("redirect")),
            "with space".into(),
            "".into(),
            "*".into(),
            "~root".into(),
            "$HOME ${x:-y}".into(),
            "back\\slash".into(),
            "-n".into(),
            "!bang ^caret #hash {a,b} [x]".into(),
            "tab\there cr\rhere".into(),
            "ünïcødé ✓".into(),
            "web-03;touch${IFS}/tmp/x".into(),
        ]
    }

    /// Each value, expanded for a shell, reaches a real `sh -c` as exactly one word, verbatim,
    /// and nothing in it runs.
    #[test]
    fn shell_expansions_are_one_word_each_and_never_run() {
        let dir = tempfile::tempdir().expect("tmp");
        let t: Template = "set -- {{ v }}; printf '%s|%s' \"$#\" \"$1\""
            .parse()
            .expect("valid");
        for value in nasty(dir.path()) {
            let line = t.render_shell(|_| Some(value.clone())).expect("quotable");
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&line)
                .output()
                .expect("sh runs");
            assert!(out.status.success(), "{line}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("1|{value}"),
                "{line}"
            );
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(left.is_empty(), "a value ran as shell: {left:?}");
    }

    #[test]
    fn shell_expansion_quotes_only_values() {
        let t: Template = "test -d {{ dir }} && ls -- {{ dir }}/{{ file }}"
            .parse()
            .expect("valid");
        let got = t.render_shell(|v| match v {
            "dir" => Some("/srv/my docs".into()),
            "file" => Some("index.html".into()),
            _ => None,
        });
        assert_eq!(
            got.as_deref(),
            Ok("test -d '/srv/my docs' && ls -- '/srv/my docs'/index.html")
        );
        assert_eq!(
            t.render_shell(|v| (v == "dir").then(|| "a\0b".to_owned())),
            Err(RenderError::Nul("dir".into()))
        );
        assert_eq!(
            t.render_shell(|v| (v == "dir").then(|| "/d".to_owned())),
            Err(RenderError::Missing("file".into()))
        );
        // The plain expansion leaves values as they are (for URLs and paths).
        assert_eq!(
            t.render(|_| Some("a b".into())).as_deref(),
            Ok("test -d a b && ls -- a b/a b")
        );
    }
}
