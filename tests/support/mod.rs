//! Test support: the fake GitHub, the fake model server and the driver.
#![allow(dead_code)]

pub mod app;
pub mod faults;
pub mod github;
pub mod llm;
pub mod postgres;
pub mod wire;
