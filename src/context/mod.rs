//! What the model sees: the token budget now; scopes, filters and redaction follow.

pub mod budget;
