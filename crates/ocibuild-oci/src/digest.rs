//! `sha256:<64 hex>` digests and streaming hashers.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::OciError;

/// A content digest. Only `sha256` is supported; anything else is refused at parse time.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The algorithm part, always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The 64 lower-case hex characters.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Digest of a byte slice.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self::from_raw(Sha256::digest(bytes).as_slice())
    }

    /// Digest of everything a reader yields.
    pub fn of_reader(mut r: impl Read) -> io::Result<(Self, u64)> {
        let mut w = HashingWriter::new(io::sink());
        io::copy(&mut r, &mut w)?;
        let (_, d, n) = w.finish();
        Ok((d, n))
    }

    fn from_raw(raw: &[u8]) -> Self {
        Self {
            hex: hex::encode(raw),
        }
    }

    /// Parse `sha256:<64 lower-case hex>`.
    pub fn parse(s: &str) -> Result<Self, OciError> {
        let bad = |why: &str| OciError::InvalidDigest {
            input: s.to_string(),
            why: why.to_string(),
        };
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| bad("expected `sha256:<64 hex digits>`"))?;
        if algo != "sha256" {
            return Err(bad(&format!(
                "unsupported digest algorithm `{algo}` (only sha256 is supported)"
            )));
        }
        if hex.len() != 64 {
            return Err(bad(&format!(
                "a sha256 digest has 64 hex digits, this one has {}",
                hex.len()
            )));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad(
                "the hex part may only contain 0-9 and a-f (lower case)",
            ));
        }
        Ok(Self {
            hex: hex.to_string(),
        })
    }

    /// Relative path of this blob inside an OCI layout: `blobs/sha256/<hex>`.
    pub fn layout_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex)
    }

    /// The first 12 hex characters, for humans.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(sha256:{})", self.hex)
    }
}

impl FromStr for Digest {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<&Digest> for oci_spec::image::Digest {
    type Error = OciError;
    fn try_from(d: &Digest) -> Result<Self, OciError> {
        oci_spec::image::Digest::from_str(&d.to_string()).map_err(|e| OciError::InvalidDigest {
            input: d.to_string(),
            why: e.to_string(),
        })
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = OciError;
    fn try_from(d: &oci_spec::image::Digest) -> Result<Self, OciError> {
        Self::parse(d.as_ref())
    }
}

/// A writer that hashes (sha256) and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The digest of what has been written so far.
    pub fn current(&self) -> Digest {
        Digest::from_raw(self.hasher.clone().finalize().as_slice())
    }

    /// The inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        let d = Digest::from_raw(self.hasher.finalize().as_slice());
        (self.inner, d, self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes (sha256) and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The digest of what has been read so far.
    pub fn current(&self) -> Digest {
        Digest::from_raw(self.hasher.clone().finalize().as_slice())
    }

    pub fn finish(self) -> (R, Digest, u64) {
        let d = Digest::from_raw(self.hasher.finalize().as_slice());
        (self.inner, d, self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let s = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let d = Digest::parse(s).unwrap();
        assert_eq!(d.to_string(), s);
        assert_eq!(Digest::of_bytes(b""), d);
        assert_eq!(d.short(), "e3b0c44298fc");
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            let e = Digest::parse(bad).unwrap_err();
            assert!(e.to_string().contains("digest"), "{e}");
        }
    }

    #[test]
    fn hashing_writer_and_reader_agree() {
        let data = vec![7u8; 100_000];
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        let (out, d, n) = w.finish();
        assert_eq!(out, data);
        assert_eq!(n, 100_000);
        let mut r = HashingReader::new(&data[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (_, d2, _) = r.finish();
        assert_eq!(d, d2);
        assert_eq!(d, Digest::of_bytes(&data));
    }

    #[test]
    fn converts_to_oci_spec() {
        let d = Digest::of_bytes(b"x");
        let o = oci_spec::image::Digest::try_from(&d).unwrap();
        assert_eq!(o.to_string(), d.to_string());
        assert_eq!(Digest::try_from(&o).unwrap(), d);
    }
}
