//! Wildcard patterns as IAM writes them: `*` matches any run of characters (including `/` and
//! nothing at all), `?` exactly one character, and — in `2012-10-17` policies — `${key}`
//! policy variables replaced by the request's value for that condition key. `${*}`, `${?}`
//! and `${$}` stand for the literal characters, so a policy can name a key containing them.

/// One matchable unit after variables are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyRun,
    OneChar,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Token(Token),
    Variable(String),
}

/// A compiled pattern. Wildcards and variables are each switched on or off at compile time,
/// because `StringEquals` treats `*` literally and `2008-10-17` policies have no variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    pieces: Vec<Piece>,
    has_variables: bool,
}

impl Pattern {
    pub(crate) fn compile(text: &str, wildcards: bool, variables: bool) -> Pattern {
        let mut pieces = Vec::with_capacity(text.len());
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if variables && rest.starts_with("${") {
                if let Some(end) = rest.find('}') {
                    let name = rest[2..end].trim();
                    pieces.push(match name {
                        "*" => Piece::Token(Token::Literal('*')),
                        "?" => Piece::Token(Token::Literal('?')),
                        "$" => Piece::Token(Token::Literal('$')),
                        _ => Piece::Variable(name.to_string()),
                    });
                    rest = &rest[end + 1..];
                    continue;
                }
            }
            pieces.push(Piece::Token(match c {
                '*' if wildcards => Token::AnyRun,
                '?' if wildcards => Token::OneChar,
                _ => Token::Literal(c),
            }));
            rest = &rest[c.len_utf8()..];
        }
        let has_variables = pieces.iter().any(|p| matches!(p, Piece::Variable(_)));
        Pattern {
            pieces,
            has_variables,
        }
    }

    /// Whether `text` matches. `lookup` resolves a policy variable; a variable with no value
    /// makes the pattern match nothing, as AWS does. Case folding applies to both sides.
    pub(crate) fn matches(
        &self,
        text: &str,
        ignore_case: bool,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> bool {
        let mut tokens = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            match piece {
                Piece::Token(Token::Literal(c)) if ignore_case => {
                    tokens.extend(c.to_lowercase().map(Token::Literal))
                }
                Piece::Token(t) => tokens.push(t.clone()),
                Piece::Variable(name) => {
                    let Some(value) = lookup(name) else {
                        return false;
                    };
                    // A substituted value is text, never wildcards.
                    if ignore_case {
                        tokens.extend(value.to_lowercase().chars().map(Token::Literal));
                    } else {
                        tokens.extend(value.chars().map(Token::Literal));
                    }
                }
            }
        }
        let text: Vec<char> = if ignore_case {
            text.to_lowercase().chars().collect()
        } else {
            text.chars().collect()
        };
        glob(&tokens, &text)
    }

    pub(crate) fn has_variables(&self) -> bool {
        self.has_variables
    }

    pub(crate) fn has_wildcards(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Token(Token::AnyRun | Token::OneChar)))
    }
}

/// Linear-time wildcard match with single-star backtracking.
fn glob(pattern: &[Token], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::AnyRun) => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(Token::OneChar) => {
                p += 1;
                t += 1;
                continue;
            }
            Some(Token::Literal(c)) if *c == text[t] => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|tok| *tok == Token::AnyRun)
}

/// Splits an ARN (or ARN pattern) into its six colon-separated parts, the last of which may
/// itself contain colons. Colons inside `${…}` do not split, so `${aws:username}` survives.
pub(crate) fn split_arn(text: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::with_capacity(6);
    let mut start = 0;
    let mut depth = 0usize;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() && parts.len() < 5 {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth > 0 => depth -= 1,
            b':' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if parts.len() < 5 {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    fn m(pattern: &str, text: &str) -> bool {
        Pattern::compile(pattern, true, true).matches(text, false, &none)
    }

    #[test]
    fn star_crosses_slashes_and_question_takes_exactly_one_char() {
        assert!(m("arn:aws:s3:::b/*", "arn:aws:s3:::b/a/b/c"));
        assert!(m("arn:aws:s3:::b/*", "arn:aws:s3:::b/"));
        assert!(!m("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(!m("a?c", "abbc"));
        assert!(m("a*b*c", "aXXbYYbc"));
        assert!(m("*", ""));
        assert!(m("**", "anything"));
        assert!(!m("Photos/*", "photos/x"), "resources are case-sensitive");
        assert!(m("日?", "日本"), "? is one character, not one byte");
    }

    #[test]
    fn variables_are_substituted_literally_and_escapes_work() {
        let p = Pattern::compile("home/${aws:username}/*", true, true);
        let alice = |k: &str| (k == "aws:username").then(|| "al*ce".to_string());
        assert!(p.matches("home/al*ce/x", false, &alice));
        assert!(
            !p.matches("home/alice/x", false, &alice),
            "substituted * is literal"
        );
        assert!(!p.matches("home/al*ce/x", false, &none), "unset variable");
        let lit = Pattern::compile("a${*}b${?}${$}", true, true);
        assert!(lit.matches("a*b?$", false, &none));
        assert!(!lit.matches("axb?$", false, &none));
        let no_vars = Pattern::compile("${aws:username}", true, false);
        assert!(no_vars.matches("${aws:username}", false, &none));
    }

    #[test]
    fn arn_split_keeps_colons_in_resource_and_variables() {
        assert_eq!(
            split_arn("arn:aws:iam::1:user/${aws:username}").unwrap(),
            vec!["arn", "aws", "iam", "", "1", "user/${aws:username}"]
        );
        assert_eq!(split_arn("arn:aws:s3:::b/k:v").unwrap()[5], "b/k:v");
        assert!(split_arn("arn:aws:s3").is_none());
    }
}
