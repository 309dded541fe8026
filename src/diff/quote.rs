//! Git's C-style quoting of path names: a name with a control character, a `"`, a `\`, or
//! (with the default `core.quotePath`) a byte above 0x7f is written between double quotes
//! with backslash escapes, e.g. `"a/x\303\251 y"` for `a/xé y`.

/// Decodes the quoted name at the start of `s` (which begins with `"`). Returns the name's
/// bytes and what follows the closing quote, or `None` if the quoting is malformed.
pub(super) fn unquote(s: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut rest = s.strip_prefix(b"\"")?;
    let mut name = Vec::with_capacity(rest.len());
    loop {
        let (&b, tail) = rest.split_first()?;
        rest = tail;
        match b {
            b'"' => return Some((name, rest)),
            b'\\' => {
                let (&e, tail) = rest.split_first()?;
                rest = tail;
                let byte = match e {
                    b'a' => 0x07,
                    b'b' => 0x08,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'v' => 0x0b,
                    b'f' => 0x0c,
                    b'r' => b'\r',
                    b'\\' => b'\\',
                    b'"' => b'"',
                    b'0'..=b'3' => {
                        let (&d2, &d3) = (rest.first()?, rest.get(1)?);
                        if !is_octal(d2) || !is_octal(d3) {
                            return None;
                        }
                        rest = &rest[2..];
                        ((e - b'0') << 6) | ((d2 - b'0') << 3) | (d3 - b'0')
                    }
                    _ => return None,
                };
                name.push(byte);
            }
            _ => name.push(b),
        }
    }
}

/// A whole header value that is one name, quoted or not (`rename from`, `copy to`): quoted
/// names must end at the closing quote.
pub(super) fn name_value(s: &[u8]) -> Option<Vec<u8>> {
    if s.first() == Some(&b'"') {
        let (name, rest) = unquote(s)?;
        rest.is_empty().then_some(name)
    } else {
        Some(s.to_vec())
    }
}

fn is_octal(b: u8) -> bool {
    (b'0'..=b'7').contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_octal_and_named_escapes() {
        let (name, rest) = unquote(br#""a/x\303\251 y\t\"q\"\\" tail"#).expect("valid");
        assert_eq!(name, "a/xé y\t\"q\"\\".as_bytes());
        assert_eq!(rest, b" tail");
    }

    #[test]
    fn rejects_malformed_quoting() {
        for bad in [
            &b"\"open"[..],
            b"\"bad \\q\"",
            b"\"short \\30\"",
            b"\"high \\400\"",
            b"\"end\\",
            b"noquote",
        ] {
            assert_eq!(unquote(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(name_value(b"\"a\" extra"), None);
        assert_eq!(name_value(b"plain name"), Some(b"plain name".to_vec()));
    }
}
