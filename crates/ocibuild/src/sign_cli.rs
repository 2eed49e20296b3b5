//! Flags of the signing commands, as cosign users know them.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReferrersMode {
    /// cosign's tags: sha256-<hex>.sig / .att, appended to
    #[default]
    Legacy,
    /// OCI 1.1 referrers: an artifact manifest whose subject is the image
    #[value(name = "oci-1-1")]
    Oci11,
}

/// Which signature format `sign` / `verify` make and check.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SignatureKind {
    /// cosign's simple-signing signatures
    #[default]
    Cosign,
    /// Notary Project signatures (notation): an X.509 chain, stored as an OCI 1.1 referrer
    Notation,
}

/// The envelope of a Notary Project signature.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EnvelopeKind {
    /// application/jose+json
    #[default]
    Jws,
    /// application/cose (COSE_Sign1)
    Cose,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Writes PREFIX.key (cosign's encrypted format, mode 0600) and PREFIX.pub. The password comes from\nCOSIGN_PASSWORD, else it is asked on the terminal.\n\nExample:\n  COSIGN_PASSWORD=… ocibuild generate-key-pair --output-key-prefix cosign"
)]
pub struct GenerateKeyPairArgs {
    /// Write PREFIX.key and PREFIX.pub
    #[arg(long, default_value = "cosign", value_name = "PREFIX")]
    pub output_key_prefix: PathBuf,
    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
    /// Create the key in a key-management service instead (azurekms://NAME.vault.azure.net/KEY:
    /// an EC P-256 key in Azure Key Vault); only PREFIX.pub is written
    #[arg(long, value_name = "URI")]
    pub kms: Option<String>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  ocibuild sign --key cosign.key docker://127.0.0.1:5000/app:1\n  ocibuild sign --key cosign.key -a ci=jenkins oci:out:app --sign-container-identity reg.example/app\n  ocibuild sign --format notation --key signer.key --cert signer-chain.pem docker://127.0.0.1:5000/app:1\n  ocibuild sign --key azurekms://NAME.vault.azure.net/KEY docker://127.0.0.1:5000/app:1"
)]
pub struct SignArgs {
    /// Private key: cosign's encrypted key (password from COSIGN_PASSWORD or a prompt), a PEM
    /// PKCS#8 ECDSA P-256/P-384, RSA or Ed25519 key, or a key in Azure Key Vault
    /// (azurekms://NAME.vault.azure.net/KEY[/VERSION]). notation signs ES256, ES384 or
    /// PS256/PS384/PS512 as the key calls for
    #[arg(long, value_name = "FILE|URI")]
    pub key: PathBuf,
    /// An annotation for the signature payload's `optional` section (repeatable)
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Where signatures go: legacy (the sha256-<hex>.sig tag) or oci-1-1 (a referrer)
    #[arg(long, value_enum, default_value_t = ReferrersMode::Legacy)]
    pub registry_referrers_mode: ReferrersMode,
    /// Also sign each manifest of a multi-platform index (cosign's --recursive)
    #[arg(long)]
    pub recursive: bool,
    /// The docker-reference the payload names [default: the image's repository; for a layout,
    /// its tag]
    #[arg(long, value_name = "NAME")]
    pub sign_container_identity: Option<String>,
    /// Accepted for cosign compatibility (there is nothing to confirm: no transparency log)
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// cosign's transparency-log upload: only `false` is accepted (ocibuild signs without a log)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub tlog_upload: Option<bool>,
    /// The signature format: cosign, or notation (Notary Project; needs --cert)
    #[arg(long, value_enum, default_value_t = SignatureKind::Cosign)]
    pub format: SignatureKind,
    /// notation: the envelope format
    #[arg(long, value_enum, default_value_t = EnvelopeKind::Jws)]
    pub signature_format: EnvelopeKind,
    /// notation: the signing certificate chain (PEM, leaf first, then its CAs), or a certificate
    /// in Azure Key Vault (azurekv://NAME.vault.azure.net/certificates/CERT[/VERSION])
    #[arg(long, value_name = "FILE|URI")]
    pub cert: Option<PathBuf>,
    /// notation: the CA certificates (PEM) that complete a --cert read from Azure Key Vault
    #[arg(long, value_name = "FILE")]
    pub cert_chain: Option<PathBuf>,
    /// notation: how long the signature is valid (`24h`, `7d`, `1h30m`) [default: no expiry]
    #[arg(long, value_name = "DURATION")]
    pub expiry: Option<String>,
    /// notation: metadata signed into the payload (repeatable; notation's --user-metadata)
    #[arg(short = 'm', long = "user-metadata", value_name = "KEY=VALUE")]
    pub user_metadata: Vec<String>,
    /// docker://REGISTRY/REPO[:TAG|@DIGEST] or oci:DIR[:TAG]
    pub image: String,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Exit codes: 0 a valid signature exists, 3 none does (the reasons are printed), 1 verification\ncould not run.\n\nExamples:\n  ocibuild verify --key cosign.pub docker://127.0.0.1:5000/app:1\n  ocibuild verify --format notation --trust-policy trustpolicy.json --trust-store truststore docker://127.0.0.1:5000/app:1"
)]
pub struct VerifyArgs {
    /// Public key (PEM; cosign format), or an Azure Key Vault key (azurekms://…)
    #[arg(long, value_name = "FILE|URI")]
    pub key: Option<PathBuf>,
    /// The signature format: cosign (with --key), or notation (with a trust policy and store)
    #[arg(long, value_enum, default_value_t = SignatureKind::Cosign)]
    pub format: SignatureKind,
    /// notation: the trust policy [default: ~/.config/notation/trustpolicy.oci.json, else
    /// trustpolicy.json]
    #[arg(long, value_name = "FILE")]
    pub trust_policy: Option<PathBuf>,
    /// notation: the trust store directory (x509/ca/NAME/*.pem, …) [default:
    /// ~/.config/notation/truststore]
    #[arg(long, value_name = "DIR")]
    pub trust_store: Option<PathBuf>,
    /// notation: the registry scope (REGISTRY/REPOSITORY) a layout image is verified as
    #[arg(long, value_name = "REGISTRY/REPOSITORY")]
    pub scope: Option<String>,
    /// Require this annotation in the payload (repeatable)
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Also require the payload's docker-reference to be the image's repository
    #[arg(long)]
    pub check_reference: bool,
    /// Accepted for cosign compatibility: ocibuild never consults a transparency log
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub insecure_ignore_tlog: Option<bool>,
    /// docker://REGISTRY/REPO[:TAG|@DIGEST] or oci:DIR[:TAG]
    pub image: String,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Types: slsaprovenance1, slsaprovenance, cyclonedx, spdx, spdxjson, vuln, openvex, custom, or a predicate type URI.\n\nExample:\n  ocibuild attest --key cosign.key --type cyclonedx --predicate sbom.cdx.json docker://127.0.0.1:5000/app:1"
)]
pub struct AttestArgs {
    /// Private key (as for `sign`)
    #[arg(long, value_name = "FILE|URI")]
    pub key: PathBuf,
    /// The predicate type
    #[arg(long = "type", default_value = "custom", value_name = "TYPE")]
    pub predicate_type: String,
    /// The predicate (JSON; for `custom` any text)
    #[arg(long, value_name = "FILE")]
    pub predicate: PathBuf,
    /// Where attestations go: legacy (the sha256-<hex>.att tag) or oci-1-1 (a referrer)
    #[arg(long, value_enum, default_value_t = ReferrersMode::Legacy)]
    pub registry_referrers_mode: ReferrersMode,
    /// Accepted for cosign compatibility
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// cosign's transparency-log upload: only `false` is accepted (ocibuild signs without a log)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub tlog_upload: Option<bool>,
    /// docker://REGISTRY/REPO[:TAG|@DIGEST] or oci:DIR[:TAG]
    pub image: String,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Exit codes: 0 a valid attestation exists, 3 none does, 1 verification could not run.\n\nExample:\n  ocibuild verify-attestation --key cosign.pub --type slsaprovenance1 docker://127.0.0.1:5000/app:1"
)]
pub struct VerifyAttestationArgs {
    /// Public key (PEM), or an Azure Key Vault key (azurekms://…)
    #[arg(long, value_name = "FILE|URI")]
    pub key: PathBuf,
    /// Only attestations of this predicate type [default: any]
    #[arg(long = "type", value_name = "TYPE")]
    pub predicate_type: Option<String>,
    /// Accepted for cosign compatibility: ocibuild never consults a transparency log
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub insecure_ignore_tlog: Option<bool>,
    /// docker://REGISTRY/REPO[:TAG|@DIGEST] or oci:DIR[:TAG]
    pub image: String,
}

/// How `build --sign` signs: cosign's format with a key, or a Notary Project signature with a
/// key and its certificate chain.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignWith {
    /// cosign's simple-signing signature (`sha256-<hex>.sig`) with `--key`
    Cosign,
    /// a Notary Project signature (notation; an OCI 1.1 referrer) with `--key` and `--cert`
    Notation,
}

/// `ocibuild build`'s signing flags: sign every `oci:`/`docker://` output as it is written, and
/// attach signed attestations (the SBOM, SLSA provenance).
#[derive(Args, Debug, Clone)]
pub struct BuildSignArgs {
    /// Sign the built image in every oci: and docker:// output as it is written (`--sign` alone
    /// is `--sign=cosign`: cosign's format, with --key; `--sign=notation`: a Notary Project
    /// signature, with --key and --cert)
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "cosign", value_name = "FORMAT")]
    pub sign: Option<SignWith>,
    /// The private key for --sign: cosign's encrypted key (password from COSIGN_PASSWORD or a
    /// prompt), a PEM PKCS#8 ECDSA P-256/P-384, RSA or Ed25519 key, or an Azure Key Vault key
    /// (azurekms://NAME.vault.azure.net/KEY)
    #[arg(long = "key", value_name = "FILE|URI", requires = "sign")]
    pub key: Option<PathBuf>,
    /// --sign=notation: the signing certificate chain of --key (PEM, leaf first), or a Key Vault
    /// certificate (azurekv://NAME.vault.azure.net/certificates/NAME)
    #[arg(long = "cert", value_name = "FILE|URI", requires = "sign")]
    pub cert: Option<PathBuf>,
    /// --sign=notation: CA certificates (PEM) appended to the --cert chain
    #[arg(long = "cert-chain", value_name = "FILE", requires = "cert")]
    pub cert_chain: Option<PathBuf>,
    /// --sign=notation: the envelope, jws (application/jose+json) or cose (application/cose)
    #[arg(
        long = "signature-format",
        value_enum,
        value_name = "FORMAT",
        requires = "sign"
    )]
    pub signature_format: Option<EnvelopeKind>,
    /// An annotation for the signature payload (repeatable), as `sign -a`
    #[arg(long = "sign-annotation", value_name = "KEY=VALUE", requires = "sign")]
    pub sign_annotations: Vec<String>,
    /// Where the signature and attestations go: legacy (cosign's sha256-<hex>.sig/.att tags) or
    /// oci-1-1 (referrers)
    #[arg(long = "sign-referrers-mode", value_enum, default_value_t = ReferrersMode::Legacy, value_name = "MODE")]
    pub referrers_mode: ReferrersMode,
    /// Attach the --sbom documents as signed in-toto attestations (`cosign attest --type
    /// cyclonedx|spdx`); needs --sign and --sbom
    #[arg(long, requires_all = ["sign", "sbom"])]
    pub attest_sbom: bool,
    /// Attach a signed SLSA v1 provenance attestation made from the build record (`cosign attest
    /// --type slsaprovenance1`): bases, toolchain roots, lockfiles, the source and context by
    /// digest, the parameters without secret values; needs --sign. buildx's `--provenance=false`
    /// and `mode=min|max` are accepted (both modes give the same predicate)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "true|false|mode=min|mode=max",
          value_parser = ["true", "false", "1", "0", "mode=min", "mode=max"])]
    pub provenance: Option<String>,
    /// Also write the provenance predicate (JSON) to this file
    #[arg(long, value_name = "FILE", requires = "provenance")]
    pub provenance_file: Option<PathBuf>,
    /// The provenance's builder id: a URI naming the build platform (a CI job's URL)
    /// [default: https://ocibuild.dev/builder/v1]
    #[arg(long, value_name = "URI", env = "OCIBUILD_BUILDER_ID")]
    pub builder_id: Option<String>,
}

impl BuildSignArgs {
    /// Whether `--provenance` asks for a provenance (`--provenance`, `=true`, `=1`, `=mode=…`).
    pub fn provenance(&self) -> bool {
        matches!(
            self.provenance.as_deref(),
            Some("true" | "1" | "mode=min" | "mode=max")
        )
    }
}
