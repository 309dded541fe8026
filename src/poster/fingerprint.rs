//! A finding's identity across pushes, so Critic never says the same thing twice on a PR.
//!
//! The fingerprint is the file, the code the finding points at (whitespace-normalised, so
//! re-indentation does not matter) and its category; not the line number, so a finding whose
//! code moved keeps its fingerprint, and not the model's wording, which varies from run to
//! run for the same problem.

use sha2::{Digest, Sha256};

/// Whitespace collapsed within each line, blank lines dropped.
pub fn normalise_code(code: &str) -> String {
    code.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Hex SHA-256 over path, normalised code and category.
pub fn fingerprint(path: &str, code: &str, category: &str) -> String {
    let mut h = Sha256::new();
    for part in [path, &normalise_code(code), category] {
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
        let a = fingerprint("src/a.rs", "    let y = x / 0;\n", "bug");
        let b = fingerprint("src/a.rs", "\tlet  y = x / 0;", "bug");
        assert_eq!(a, b);
        assert_ne!(a, fingerprint("src/b.rs", "let y = x / 0;", "bug"));
        assert_ne!(a, fingerprint("src/a.rs", "let y = x / 1;", "bug"));
        assert_ne!(a, fingerprint("src/a.rs", "let y = x / 0;", "security"));
        assert_eq!(a.len(), 32);
    }
}
