//! # ocibuild-debian — Debian packages, natively
//!
//! Distroless bases and toolchain roots are assembled from Debian packages without running a
//! distribution: this crate reads apt sources, fetches and verifies the signed `InRelease` of
//! each suite, parses the `Packages` indexes whose hashes it lists, resolves dependencies, and
//! downloads and unpacks `.deb` files (never running maintainer scripts) into layer trees with
//! distroless-style package records.
//!
//! May depend on `ocibuild-oci` and the HTTP client; must never print or run programs.

pub mod alternatives;
pub mod apt;
pub mod base;
pub mod control;
pub mod deb;
pub mod error;
pub mod fixups;
pub mod resolve;
pub mod unpacked;
pub mod version;

pub use error::DebianError;
