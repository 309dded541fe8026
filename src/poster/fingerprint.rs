//! A finding's identity across pushes, so Critic never says the same thing twice on a PR.
//!
//! The fingerprint is the file, the code the finding points at (whitespace-normalised, so
//! re-indentation does not matter), its category and its title (words only, without numbers,
//! which often carry a line number); not the line number, so a finding whose code moved keeps
//! its fingerprint, and not the body, whose wording varies from run to run for the same
//! problem. The title is what tells apart two problems on look-alike lines (two `@Override`
//! lines of one file are the same code).

use sha2::{Digest, Sha256};

/// Whitespace collapsed within each line, blank lines dropped.
pub fn normalise_code(code: &str) -> String {
    code.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lower-case words, without punctuation and without numbers.
pub fn normalise_title(title: &str) -> String {
    title
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !w.chars().all(|c| c.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `quote` says nothing `code` does not: it is part of it, whitespace aside.
pub fn covers(code: &str, quote: &str) -> bool {
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    squeeze(code).contains(&squeeze(quote))
}

/// Hex SHA-256 over path, normalised code, category and normalised title.
pub fn fingerprint(path: &str, code: &str, category: &str, title: &str) -> String {
    digest(&[
        path,
        &normalise_code(code),
        category,
        &normalise_title(title),
    ])
}

/// The fingerprint as it was before titles counted. Findings stored then carry it; matching
/// it too keeps them from being posted again.
pub fn legacy_fingerprint(path: &str, code: &str, category: &str) -> String {
    digest(&[path, &normalise_code(code), category])
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_and_reindented_code_keeps_its_fingerprint() {
        let a = fingerprint("src/a.rs", "    let y = x / 0;\n", "bug", "Divides by zero");
        let b = fingerprint("src/a.rs", "\tlet  y = x / 0;", "bug", "Divides by zero");
        assert_eq!(a, b);
        assert_ne!(
            a,
            fingerprint("src/b.rs", "let y = x / 0;", "bug", "Divides by zero")
        );
        assert_ne!(
            a,
            fingerprint("src/a.rs", "let y = x / 1;", "bug", "Divides by zero")
        );
        assert_ne!(
            a,
            fingerprint("src/a.rs", "let y = x / 0;", "security", "Divides by zero")
        );
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn the_title_tells_apart_findings_on_look_alike_lines() {
        let equals = fingerprint("A.java", "@Override", "bug", "equals without hashCode");
        let to_string = fingerprint(
            "A.java",
            "  @Override",
            "bug",
            "toString leaks the password",
        );
        assert_ne!(equals, to_string);
        // The same title in other case, punctuation or with another line number is the same.
        assert_eq!(
            equals,
            fingerprint("A.java", "@Override", "bug", "Equals without `hashCode`.")
        );
        assert_eq!(
            fingerprint("a.rs", "x", "bug", "Overflow at line 12"),
            fingerprint("a.rs", "x", "bug", "overflow at line 14:")
        );
        assert_ne!(
            fingerprint("a.rs", "x", "bug", "u32 overflow"),
            fingerprint("a.rs", "x", "bug", "u64 overflow"),
            "a word with a digit is a word"
        );
    }

    #[test]
    fn the_legacy_fingerprint_is_the_old_formula() {
        // What the code before titles counted stored for this finding (SHA-256 over
        // "src/a.rs\0let y = x / 0;\0bug\0", its first 16 bytes).
        let stored = "b11c0f33648b5558ed28a0d8955b740b";
        assert_eq!(
            legacy_fingerprint("src/a.rs", "  let y = x / 0;\n", "bug"),
            stored
        );
        assert_ne!(fingerprint("src/a.rs", "let y = x / 0;", "bug", ""), stored);
    }

    #[test]
    fn a_quote_inside_the_code_adds_nothing() {
        assert!(covers(
            "    @Override\n    public int hashCode() {",
            "@Override"
        ));
        assert!(covers("let y = x / 0;", "x/0"));
        assert!(!covers("@Override", "@Override\npublic int hashCode() {"));
    }
}
