#![recursion_limit = "512"]
//! The integration suite: one binary, so the crate links once.

#[path = "../support/mod.rs"]
mod support;

mod binary;
mod commands;
mod context;
mod crash;
mod deploy;
mod diff_git;
mod eval;
mod eval_tests;
mod fake_github;
mod faults;
mod github_client;
mod layers;
mod learning;
mod llm_anthropic;
mod llm_responses;
mod llm_wire;
mod metrics;
mod pipeline;
mod poster_422;
mod poster_flow;
mod poster_paths;
mod replicas;
mod review;
mod review_cli;
mod review_replies;
mod scenarios;
mod setup;
mod verify;
mod verify_in_ci;
mod webhook;
mod webhook_proxy;
