//! Each ecosystem's own version ordering, written natively and checked against the real tools
//! (`dpkg --compare-versions`, Python's `packaging`, npm's `semver`) in differential tests.

pub mod dpkg;
pub mod maven;
pub mod pep440;
pub mod semver;

use std::cmp::Ordering;

/// Compares digit strings of any length numerically (no overflow on 20-digit timestamps).
pub(crate) fn cmp_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}
