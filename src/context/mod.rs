//! What the model sees: the enclosing scopes of changed code (tree-sitter), related code,
//! filters for files not worth reviewing, secret redaction, and the token budget.

pub mod assemble;
pub mod budget;
pub mod filter;
pub mod imports;
pub mod redact;
pub mod scope;
pub mod test_layout;
