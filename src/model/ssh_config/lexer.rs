//! Splitting one ssh_config line into its keyword and arguments as OpenSSH does: the keyword
//! ends at whitespace or one `=`; arguments are words with `"`/`'` quoting and `\` escapes;
//! a word starting with `#` ends the line.

/// The keyword (as written) and its arguments, or `None` for a blank or comment line.
pub(super) fn line(text: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let text = text.trim_start();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let end = text
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(text.len());
    let keyword = &text[..end];
    if keyword.is_empty() {
        return Err("missing keyword before '='".to_owned());
    }
    let mut rest = text[end..].trim_start();
    if let Some(after) = rest.strip_prefix('=') {
        rest = after.trim_start();
    }
    Ok(Some((keyword.to_owned(), words(rest)?)))
}

/// OpenSSH's `argv_split` with comments ending the line.
fn words(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return Ok(out);
        };
        if first == '#' {
            return Ok(out);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _) => match chars.peek() {
                    Some(&next @ ('\\' | '"' | '\'' | ' ')) if quote.is_none() || next != ' ' => {
                        word.push(next);
                        chars.next();
                    }
                    _ => word.push('\\'),
                },
                (c, None) if c.is_whitespace() => break,
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                (c, _) => word.push(c),
            }
        }
        if quote.is_some() {
            return Err("unterminated quote".to_owned());
        }
        out.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::line;

    fn split(text: &str) -> Option<(String, Vec<String>)> {
        line(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn keywords_values_quotes_and_comments() {
        assert_eq!(split("   # comment"), None);
        assert_eq!(split(""), None);
        let pair =
            |k: &str, v: &[&str]| Some((k.to_owned(), v.iter().map(|s| (*s).to_owned()).collect()));
        assert_eq!(split("Port 22"), pair("Port", &["22"]));
        assert_eq!(split("Port=22"), pair("Port", &["22"]));
        assert_eq!(split("  Port = 22 # x"), pair("Port", &["22"]));
        assert_eq!(
            split("IdentityFile \"/a b/c\" 'd e' f\\ g"),
            pair("IdentityFile", &["/a b/c", "d e", "f g"])
        );
        assert_eq!(split("Host a#b"), pair("Host", &["a#b"]));
        assert!(line("HostName \"abc").is_err());
    }
}
