//! atlas-promote: trunk-based release policies as code.
//!
//! This facade re-exports [`atlas_promote_core`]; depend on it alone.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use atlas_promote_core::*;

/// The CircleCI backend (feature `circleci`).
#[cfg(feature = "circleci")]
pub use atlas_promote_circleci as circleci;

/// The GitHub backend (feature `github`).
#[cfg(feature = "github")]
pub use atlas_promote_github as github;

/// The SQLite and PostgreSQL stores (features `sqlite`, `postgres`).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use atlas_promote_sql as sql;

// The README's Rust examples are compiled (and the runnable ones run) as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
