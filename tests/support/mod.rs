//! Test support: the fake GitHub, the fake model server and the driver.
#![allow(dead_code)]

pub mod app;
pub mod git;
pub mod github;
pub mod llm;
// The unit tests' helper, the same file: fixtures, real data and PostgreSQL when present.
#[path = "../../src/test_env.rs"]
pub mod test_env;
pub mod wire;

// Seeded faults are the fake GitHub's (`github/faults.rs`); tests name them `support::faults`.
#[allow(unused_imports)]
pub use github::faults;
