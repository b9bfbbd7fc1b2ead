//! `{{ var }}` templates in gate definitions, expanded from a host's inventory variables.
//! Only plain variable names are supported (no Jinja filters or expressions): a template that
//! uses more is an error at validation, not a surprise at host 37.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
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

    /// Expands with `lookup`; the first missing variable is the error.
    pub fn render<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<String> + 'a,
    ) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(&lookup(v).ok_or_else(|| v.clone())?),
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
        assert_eq!(t.render(|_| None), Err("ansible_host".into()));
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
}
