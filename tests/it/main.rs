#![recursion_limit = "512"]
//! The integration suite: one binary, so the crate links once.

#[path = "../support/mod.rs"]
mod support;

mod binary;
mod commands;
mod context;
mod diff_git;
mod fake_github;
mod github_client;
mod llm_anthropic;
mod llm_responses;
mod llm_wire;
mod poster_422;
mod poster_flow;
mod review;
mod review_replies;
mod scenarios;
mod webhook;
