//! # ocibuild-oci — the OCI core
//!
//! Everything an image is made of, and every place it can be stored on disk: digests, media types,
//! image references and transports, the content store (local CAS), the deterministic layer writer,
//! OCI layout / oci-archive / docker-archive I/O, validation, and safe extraction of layers.
//! [`artifact`] attaches artifacts (signatures, attestations, SBOMs) to an image inside a layout:
//! `artifact::attach` (OCI 1.1 referrer) or `artifact::put_manifest` under a cosign tag.
//!
//! May depend on: plain Rust crates (oci-spec, tar, flate2, zstd, sha2, serde). Must never: touch
//! the network, spawn processes, print to the terminal, or use an async runtime. Layers are never
//! held in memory and never read back to hash them.

pub mod artifact;
pub mod assemble;
pub mod digest;
pub mod error;
pub mod extract;
pub mod failpoint;
pub mod image;
pub mod layer;
pub mod layout;
pub mod limited;
pub mod media;
pub mod reference;
pub mod store;
pub mod suggest;
pub mod validate;
pub mod verify;

pub use digest::{Digest, HashingReader, HashingWriter};
pub use error::{OciError, Result};
pub use image::{Descriptor, Image, ImageSource, Platform};
pub use media::Compression;
