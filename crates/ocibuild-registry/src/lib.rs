//! # ocibuild-registry — the OCI distribution client
//!
//! Pull, push and copy images and artifacts against any OCI registry (ACR first), with every kind
//! of authentication users have: anonymous, Basic, Bearer token challenges, `~/.docker/config.json`
//! with credential helpers, containers' `auth.json`, and Azure Container Registry's Entra ID
//! exchange built in.
//!
//! Artifacts attached to images (signatures, attestations, SBOMs): [`artifacts::Target`] is one
//! handle on a registry repository or an OCI layout; `Target::put_blob` then `Target::attach`
//! attaches an artifact manifest to a subject (OCI 1.1 referrers, with the tag-schema fallback),
//! `Target::put_manifest` with a cosign tag (`sha256-<hex>.sig/.att/.sbom`) stores cosign's form,
//! and [`artifacts::carry`] copies all of them along with an image (`copy`, `push`).
//!
//! Uses reqwest's blocking client (its tokio runtime stays inside reqwest); parallelism is a
//! bounded set of threads. May depend on `ocibuild-oci`; must never print, and never let a
//! credential or token reach a log line or an error message.

pub mod acr;
pub mod artifacts;
pub mod auth;
pub mod client;
pub mod config;
pub mod copy;
pub mod error;
pub mod tls;

pub use error::RegistryError;
