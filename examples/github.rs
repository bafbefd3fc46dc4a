//! Placeholder until the live example lands.
fn main() {}
