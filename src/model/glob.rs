//! Shell globs as anchored regexes, the way Python's `fnmatch` (and so Ansible) reads them.

/// Translates a shell glob to an anchored regex, as Python's
/// `fnmatch.translate` does: `*` is any run, `?` any one character, `[...]`
/// a class (`[!...]` negated, `]` first is literal), an unclosed `[` is
/// literal, and everything else matches itself.
pub fn glob_to_regex(glob: &str) -> String {
    let chars: Vec<char> = glob.chars().collect();
    let mut regex = String::from("(?s)^");
    let mut index = 0;
    let mut after_star = false;
    while let Some(&char) = chars.get(index) {
        index += 1;
        match char {
            '*' if after_star => continue,
            '*' => regex.push_str(".*"),
            '?' => regex.push('.'),
            '[' => match glob_class(&chars, index) {
                Some((class, next)) => {
                    regex.push_str(&class);
                    index = next;
                }
                None => regex.push_str(&escape(char)),
            },
            _ => regex.push_str(&escape(char)),
        }
        after_star = char == '*';
    }
    regex.push('$');
    regex
}

/// Translates the class opening just before `start`; returns the regex and
/// the index after the closing `]`, or None when the class is not closed.
fn glob_class(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut index = start;
    let negated = chars.get(index) == Some(&'!');
    if negated {
        index += 1;
    }
    let body_start = index;
    if chars.get(index) == Some(&']') {
        index += 1;
    }
    let close = index + chars.get(index..)?.iter().position(|c| *c == ']')?;
    let body = &chars[body_start..close];
    let mut items = String::new();
    let mut at = 0;
    while let Some(&low) = body.get(at) {
        match (body.get(at + 1), body.get(at + 2)) {
            (Some('-'), Some(&high)) => {
                // Python drops a reversed range; it matches nothing.
                if low <= high {
                    items.push_str(&format!("{}-{}", escape(low), escape(high)));
                }
                at += 3;
            }
            _ => {
                items.push_str(&escape(low));
                at += 1;
            }
        }
    }
    let class = match (items.is_empty(), negated) {
        (true, false) => "[a&&b]".to_owned(),
        (true, true) => ".".to_owned(),
        (false, false) => format!("[{items}]"),
        (false, true) => format!("[^{items}]"),
    };
    Some((class, close + 1))
}

/// A regex for one literal character, safe inside and outside classes.
fn escape(char: char) -> String {
    if char.is_ascii_alphanumeric() {
        char.to_string()
    } else {
        format!("\\x{{{:x}}}", u32::from(char))
    }
}
