//! The `atlas-promote` command.
#![forbid(unsafe_code)]
fn main() {}
