//! Azure Key Vault: a [`Signer`] whose private key never leaves the vault, certificates read
//! from the vault, and key creation (`generate-key-pair --kms`).
//!
//! Key names, as cosign and the Azure CLI write them:
//! - `azurekms://NAME.vault.azure.net/KEY[/VERSION]` (cosign's form),
//! - `azurekms://NAME.vault.azure.net/keys/KEY[/VERSION]`,
//! - `https://NAME.vault.azure.net/keys/KEY[/VERSION]` (a key id).
//!
//! Certificates: `azurekv://NAME.vault.azure.net/certificates/CERT[/VERSION]` (or the `https://`
//! certificate id).
//!
//! REST API 7.4: `GET keys/{name}[/{version}]` (the key as a JWK), `POST
//! keys/{name}/{version}/sign` (`{"alg":"ES256","value":base64url(SHA-256 digest)}` →
//! `{"kid","value":base64url(r‖s)}`; `ES384` with a SHA-384 digest for P-384 keys; for RSA keys
//! `RS256` (cosign's RSASSA-PKCS1-v1_5) or `PS256`/`PS384`/`PS512` (notation's RSASSA-PSS, by key
//! size)), `POST keys/{name}/create`,
//! `GET certificates/{name}` (`cer`: the leaf, DER). Authentication follows the vault's challenge: the first request goes
//! without a token, the `401`'s `WWW-Authenticate: Bearer authorization="…", resource="…"` names
//! the Entra resource, and a token for it comes from the same chain the ACR client uses
//! ([`ocibuild_registry::acr::entra_token_for`]). Tokens are never logged nor put in errors.
//!
//! `OCIBUILD_AZURE_KEYVAULT_URL` replaces the vault's base URL (`https://NAME.vault.azure.net`),
//! for tests against a loopback fixture.

use std::sync::Mutex;
use std::time::Duration;

use crate::error::{Result, SignError};
use crate::keys::{Algorithm, Hash, PublicKey, Scheme};
use crate::signer::Signer;
use crate::x509::Cert;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use ocibuild_registry::acr;
use ocibuild_registry::auth::{Env, Secret};
use reqwest::blocking::Client;
use serde_json::{Value, json};

/// The REST API version ocibuild speaks.
pub const API_VERSION: &str = "7.4";
/// The Entra resource of Key Vault (used when the vault's challenge names none).
pub const VAULT_RESOURCE: &str = "https://vault.azure.net";
/// Overrides every vault's base URL (tests).
pub const URL_OVERRIDE_ENV: &str = "OCIBUILD_AZURE_KEYVAULT_URL";

/// What a Key Vault URI names: the vault host, the collection (`keys`, `certificates`), the
/// object's name and version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultObject {
    pub vault: String,
    pub name: String,
    pub version: Option<String>,
}

fn bad(uri: &str, detail: impl Into<String>) -> SignError {
    SignError::Invalid {
        what: uri.to_string(),
        detail: detail.into(),
    }
}

/// Is `s` a Key Vault key name ocibuild understands (`azurekms://`, or an `https://` vault key id)?
pub fn is_key_uri(s: &str) -> bool {
    s.starts_with("azurekms://") || (s.starts_with("https://") && s.contains("/keys/"))
}

/// Is `s` a Key Vault certificate name (`azurekv://…/certificates/NAME`, or an `https://` id)?
pub fn is_cert_uri(s: &str) -> bool {
    s.starts_with("azurekv://") || (s.starts_with("https://") && s.contains("/certificates/"))
}

fn split_uri<'a>(uri: &'a str, schemes: &[&str]) -> Option<(&'a str, Vec<&'a str>)> {
    let rest = schemes.iter().find_map(|s| uri.strip_prefix(s))?;
    let mut parts = rest.split('/').filter(|p| !p.is_empty());
    let host = parts.next()?;
    Some((host, parts.collect()))
}

fn object(uri: &str, host: &str, segs: &[&str], example: &str) -> Result<VaultObject> {
    if host.is_empty() || !host.contains('.') {
        return Err(bad(
            uri,
            format!("the vault host is missing or not a DNS name — expected {example}"),
        ));
    }
    match segs {
        [name] => Ok(VaultObject {
            vault: host.to_string(),
            name: name.to_string(),
            version: None,
        }),
        [name, version] => Ok(VaultObject {
            vault: host.to_string(),
            name: name.to_string(),
            version: Some(version.to_string()),
        }),
        _ => Err(bad(uri, format!("expected {example}"))),
    }
}

/// Parse a key name (see the module's documentation).
pub fn parse_key_uri(uri: &str) -> Result<VaultObject> {
    const EX: &str = "azurekms://NAME.vault.azure.net/KEY[/VERSION], azurekms://NAME.vault.azure.net/keys/KEY[/VERSION] or https://NAME.vault.azure.net/keys/KEY/VERSION";
    let Some((host, segs)) = split_uri(uri, &["azurekms://", "https://"]) else {
        return Err(bad(uri, format!("not a Key Vault key — expected {EX}")));
    };
    let segs: &[&str] = match segs.split_first() {
        Some((&"keys", rest)) => rest,
        _ if uri.starts_with("https://") => {
            return Err(bad(uri, format!("expected {EX}")));
        }
        _ => &segs,
    };
    object(uri, host, segs, EX)
}

/// Parse a certificate name (see the module's documentation).
pub fn parse_cert_uri(uri: &str) -> Result<VaultObject> {
    const EX: &str = "azurekv://NAME.vault.azure.net/certificates/CERT[/VERSION]";
    let Some((host, segs)) = split_uri(uri, &["azurekv://", "https://"]) else {
        return Err(bad(
            uri,
            format!("not a Key Vault certificate — expected {EX}"),
        ));
    };
    match segs.split_first() {
        Some((&"certificates", rest)) => object(uri, host, rest, EX),
        _ => Err(bad(uri, format!("expected {EX}"))),
    }
}

/// A Key Vault client for one vault: its base URL, and a token once the challenge asked for one.
pub struct KeyVault {
    http: Client,
    host: String,
    base: String,
    env: Env,
    token: Mutex<Option<(Secret, String)>>,
}

fn kv_err(host: &str, detail: impl Into<String>) -> SignError {
    SignError::KeyVault {
        vault: host.to_string(),
        detail: detail.into(),
    }
}

/// Does the challenge's `resource` belong to the vault (as the Azure SDKs check): its host is a
/// DNS suffix of the vault host (`vault.azure.net` for `NAME.vault.azure.net`)? Otherwise a
/// server could collect tokens for other services.
fn resource_fits_vault(resource: &str, vault_host: &str) -> bool {
    let Ok(u) = url::Url::parse(resource) else {
        return false;
    };
    let (Some(rh), "https") = (u.host_str(), u.scheme()) else {
        return false;
    };
    let vh = vault_host
        .split(':')
        .next()
        .unwrap_or(vault_host)
        .to_ascii_lowercase();
    let rh = rh.to_ascii_lowercase();
    vh.ends_with(&format!(".{rh}")) && rh.contains('.')
}

/// `key="value"` pairs of a `Bearer` challenge.
fn challenge_params(h: &str) -> Vec<(String, String)> {
    let h = h.trim();
    let h = h
        .strip_prefix("Bearer")
        .or_else(|| h.strip_prefix("bearer"))
        .unwrap_or(h);
    h.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            ))
        })
        .collect()
}

/// The server's error text (`{"error":{"code","message"}}`), short, or nothing.
fn server_message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let e = &v["error"];
    match (e["code"].as_str(), e["message"].as_str()) {
        (Some(c), Some(m)) => format!(": {c}: {m}"),
        (None, Some(m)) | (Some(m), None) => format!(": {m}"),
        _ => String::new(),
    }
}

fn chain_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

impl KeyVault {
    /// A client for the vault at `host` (`NAME.vault.azure.net`); `env` holds the credential
    /// variables and `OCIBUILD_AZURE_KEYVAULT_URL`.
    pub fn new(host: &str, env: Env) -> Result<Self> {
        let base = env
            .get(URL_OVERRIDE_ENV)
            .map(|v| v.trim().trim_end_matches('/').to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| format!("https://{host}"));
        let mut b = Client::builder()
            .user_agent(concat!("ocibuild/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(120));
        if base.starts_with("http://127.") || base.starts_with("http://localhost") {
            b = b.no_proxy();
        }
        let http = b
            .build()
            .map_err(|e| kv_err(host, format!("setting up HTTPS: {e}")))?;
        Ok(Self {
            http,
            host: host.to_string(),
            base,
            env,
            token: Mutex::new(None),
        })
    }

    /// The process environment, as the credential chain reads it.
    pub fn process_env() -> Env {
        std::env::vars().collect()
    }

    fn cached(&self) -> Option<Secret> {
        self.token
            .lock()
            .ok()
            .and_then(|t| t.as_ref().map(|(s, _)| s.clone()))
    }

    fn source(&self) -> String {
        self.token
            .lock()
            .ok()
            .and_then(|t| t.as_ref().map(|(_, s)| s.clone()))
            .unwrap_or_default()
    }

    fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        token: Option<&Secret>,
    ) -> Result<reqwest::blocking::Response> {
        let mut req = self
            .http
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        if let Some(t) = token {
            req = req.bearer_auth(t.expose());
        }
        req.send().map_err(|e| {
            kv_err(
                &self.host,
                format!(
                    "cannot reach {}: {} — check the vault name and the network (HTTPS_PROXY)",
                    self.base,
                    chain_text(&e.without_url())
                ),
            )
        })
    }

    /// Get a token for the resource the challenge names.
    fn authenticate(&self, challenge: &str) -> Result<Secret> {
        let params = challenge_params(challenge);
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let resource = param("resource")
            .or_else(|| param("scope").map(|s| s.trim_end_matches("/.default").to_string()))
            .unwrap_or_else(|| VAULT_RESOURCE.to_string());
        if !resource_fits_vault(&resource, &self.host) {
            return Err(kv_err(
                &self.host,
                format!(
                    "the vault's challenge asks for a token for {resource}, which is not a Key Vault resource of this vault's \
                     domain — refused, no token was sent (check the vault name)"
                ),
            ));
        }
        let mut env = self.env.clone();
        // The tenant of the vault, when the credentials do not name one.
        if let Some(tenant) = param("authorization")
            .or_else(|| param("authorization_uri"))
            .and_then(|a| {
                a.trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .map(str::to_string)
            })
            .filter(|t| !t.is_empty() && !t.contains(':'))
        {
            env.entry("AZURE_TENANT_ID".into()).or_insert(tenant);
        }
        match acr::entra_token_for(&self.http, &env, &resource) {
            Ok((t, source)) => {
                tracing::debug!(vault = %self.host, source = %source, "Key Vault token obtained");
                if let Ok(mut g) = self.token.lock() {
                    *g = Some((t.token.clone(), source));
                }
                Ok(t.token)
            }
            Err(attempts) => {
                let mut s = format!(
                    "the vault asks for a Microsoft Entra token for {resource}, and none was found; tried:"
                );
                for a in attempts {
                    s.push_str(&format!("\n  - {}: {}", a.source, a.outcome));
                }
                s.push_str(
                    "\nset AZURE_ACCESS_TOKEN, or AZURE_CLIENT_ID + AZURE_CLIENT_SECRET + AZURE_TENANT_ID (service principal), \
                     or AZURE_FEDERATED_TOKEN_FILE + AZURE_CLIENT_ID + AZURE_TENANT_ID (workload identity), run on Azure with a \
                     managed identity, or run `az login`",
                );
                Err(kv_err(&self.host, s))
            }
        }
    }

    /// One REST call: unauthenticated first (or with the token the challenge got earlier); a 401
    /// challenge gets a token and the call is retried once.
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value> {
        let url = format!("{}/{path}?api-version={API_VERSION}", self.base);
        let mut token = self.cached();
        let mut resp = self.send(method.clone(), &url, body, token.as_ref())?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED && token.is_none() {
            let challenge = resp
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("")
                .to_string();
            token = Some(self.authenticate(&challenge)?);
            resp = self.send(method, &url, body, token.as_ref())?;
        }
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        let msg = server_message(&text);
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(kv_err(
                &self.host,
                format!(
                    "{what}: the vault refused the Microsoft Entra token from {} (HTTP {}{msg}) — \
                     check that this identity may use the key (role Key Vault Crypto User, or an access \
                     policy with get and sign; Key Vault Certificate User for certificates) and that the \
                     token is for the vault's tenant",
                    self.source(),
                    status.as_u16()
                ),
            ));
        }
        if !status.is_success() {
            let hint = if status == reqwest::StatusCode::NOT_FOUND {
                " — check the name and version"
            } else {
                ""
            };
            return Err(kv_err(
                &self.host,
                format!("{what}: HTTP {}{msg}{hint}", status.as_u16()),
            ));
        }
        serde_json::from_str(&text)
            .map_err(|_| kv_err(&self.host, format!("{what}: the answer is not JSON")))
    }
}

/// The public key of a Key Vault JWK.
fn jwk_public(jwk: &Value, what: &str) -> std::result::Result<PublicKey, String> {
    let kty = jwk["kty"].as_str().unwrap_or("");
    let crv = jwk["crv"].as_str().unwrap_or("");
    let ec_point = |size: usize| {
        let coord = |k: &str| {
            jwk[k]
                .as_str()
                .and_then(|v| B64URL.decode(v.trim_end_matches('=')).ok())
                .filter(|v| v.len() == size)
                .ok_or_else(|| format!("{what}: the JWK's `{k}` is not a {crv} coordinate"))
        };
        let mut sec1 = vec![4u8];
        sec1.extend(coord("x")?);
        sec1.extend(coord("y")?);
        Ok::<_, String>(sec1)
    };
    match (kty, crv) {
        ("EC" | "EC-HSM", "P-256") => {
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&ec_point(32)?)
                .map_err(|e| format!("{what}: the JWK is not a P-256 point: {e}"))?;
            Ok(PublicKey::EcdsaP256(vk))
        }
        ("EC" | "EC-HSM", "P-384") => {
            let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(&ec_point(48)?)
                .map_err(|e| format!("{what}: the JWK is not a P-384 point: {e}"))?;
            Ok(PublicKey::EcdsaP384(vk))
        }
        ("RSA" | "RSA-HSM", _) => {
            let part = |k: &str| {
                jwk[k]
                    .as_str()
                    .and_then(|v| B64URL.decode(v.trim_end_matches('=')).ok())
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("{what}: the JWK has no base64url `{k}`"))
            };
            let n = rsa::BigUint::from_bytes_be(&part("n")?);
            let e = rsa::BigUint::from_bytes_be(&part("e")?);
            let k = rsa::RsaPublicKey::new(n, e)
                .map_err(|e| format!("{what}: the JWK is not an RSA public key: {e}"))?;
            Ok(PublicKey::Rsa(Box::new(k)))
        }
        _ => Err(format!(
            "{what} is a {kty} key{} — ocibuild signs with Key Vault EC P-256 (ES256), EC P-384 (ES384) and RSA \
             (RS256 for cosign, PS256/PS384/PS512 for notation) keys; create one with \
             `ocibuild generate-key-pair --kms azurekms://VAULT.vault.azure.net/NAME` or \
             `az keyvault key create --kty EC --curve P-256`",
            if crv.is_empty() {
                String::new()
            } else {
                format!(" on curve {crv}")
            }
        )),
    }
}

/// A key in Azure Key Vault, behind the [`Signer`] trait.
pub struct KeyVaultSigner {
    kv: KeyVault,
    key: VaultObject,
    uri: String,
    version: String,
    public: PublicKey,
}

impl KeyVaultSigner {
    /// Look the key up (`GET keys/{name}[/{version}]`) and pin its version.
    pub fn open(uri: &str, env: Env) -> Result<Self> {
        let key = parse_key_uri(uri)?;
        let kv = KeyVault::new(&key.vault, env)?;
        let path = match &key.version {
            Some(v) => format!("keys/{}/{v}", key.name),
            None => format!("keys/{}", key.name),
        };
        let what = format!("key {}", key.name);
        let bundle = kv.call(
            reqwest::Method::GET,
            &path,
            None,
            &format!("reading {what}"),
        )?;
        let jwk = &bundle["key"];
        let public = jwk_public(jwk, &what).map_err(|d| kv_err(&key.vault, d))?;
        let version = match &key.version {
            Some(v) => v.clone(),
            None => jwk["kid"]
                .as_str()
                .and_then(|k| k.trim_end_matches('/').rsplit('/').next())
                .filter(|v| !v.is_empty() && *v != key.name)
                .map(str::to_string)
                .ok_or_else(|| {
                    kv_err(
                        &key.vault,
                        format!("{what}: the answer has no `kid` with a version"),
                    )
                })?,
        };
        Ok(Self {
            kv,
            key,
            uri: uri.to_string(),
            version,
            public,
        })
    }
}

impl Signer for KeyVaultSigner {
    fn sign_as(&self, scheme: Scheme, message: &[u8]) -> Result<Vec<u8>> {
        let what = format!("signing with key {}/{}", self.key.name, self.version);
        // Key Vault's algorithms: ES256 on P-256, ES384 on P-384, RS*/PS* on RSA keys
        let fits = matches!(
            (&self.public, scheme),
            (PublicKey::EcdsaP256(_), Scheme::Ecdsa(Hash::Sha256))
                | (PublicKey::EcdsaP384(_), Scheme::Ecdsa(Hash::Sha384))
                | (PublicKey::Rsa(_), Scheme::RsaPkcs1(_) | Scheme::RsaPss(_))
        );
        let Some(hash) = scheme.hash().filter(|_| fits) else {
            return Err(kv_err(
                &self.key.vault,
                format!(
                    "{what}: Key Vault does not sign {scheme} with a {} key",
                    self.public.algorithm()
                ),
            ));
        };
        let body = json!({"alg": scheme.jose(), "value": B64URL.encode(hash.digest(message))});
        let path = format!("keys/{}/{}/sign", self.key.name, self.version);
        let v = self
            .kv
            .call(reqwest::Method::POST, &path, Some(&body), &what)?;
        let raw = v["value"]
            .as_str()
            .and_then(|s| B64URL.decode(s.trim_end_matches('=')).ok())
            .ok_or_else(|| {
                kv_err(
                    &self.key.vault,
                    format!("{what}: the answer has no base64url `value`"),
                )
            })?;
        let der = if let Scheme::Ecdsa(_) = scheme {
            // Key Vault answers ECDSA as raw r‖s; the Signer gives ASN.1 DER (cosign's format)
            self.public.ecdsa_raw_to_der(&raw).ok_or_else(|| {
                kv_err(
                    &self.key.vault,
                    format!(
                        "{what}: the signature is not an {scheme} r‖s pair ({} bytes)",
                        raw.len()
                    ),
                )
            })?
        } else {
            raw
        };
        // a signature the key's public half does not verify must not be stored
        if !self.public.verify_as(scheme, message, &der) {
            return Err(kv_err(
                &self.key.vault,
                format!("{what}: the vault's signature does not verify with the key's public key"),
            ));
        }
        Ok(der)
    }
    fn public_key(&self) -> Result<PublicKey> {
        Ok(self.public.clone())
    }
    fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }
    fn describe(&self) -> String {
        format!("Azure Key Vault key {}", self.uri)
    }
}

/// `generate-key-pair --kms`: create an EC P-256 key (`POST keys/{name}/create`); its public key.
pub fn create_key(uri: &str, env: Env) -> Result<PublicKey> {
    let key = parse_key_uri(uri)?;
    if key.version.is_some() {
        return Err(bad(
            uri,
            "a new key gets its version from the vault — name it without one",
        ));
    }
    let kv = KeyVault::new(&key.vault, env)?;
    let body = json!({"kty": "EC", "crv": "P-256", "key_ops": ["sign", "verify"]});
    let what = format!("creating key {}", key.name);
    let bundle = kv.call(
        reqwest::Method::POST,
        &format!("keys/{}/create", key.name),
        Some(&body),
        &what,
    )?;
    jwk_public(&bundle["key"], &what).map_err(|d| kv_err(&key.vault, d))
}

/// A certificate's chain from the vault: the leaf (`GET certificates/{name}[/{version}]`,
/// `cer`), then `extra` (the CAs, from `--cert-chain`), else the CAs stored with it in the
/// certificate's secret when that is PEM (as notation's azure-kv plugin reads them).
pub fn certificate_chain(uri: &str, env: Env, extra: Vec<Cert>) -> Result<Vec<Cert>> {
    let c = parse_cert_uri(uri)?;
    let kv = KeyVault::new(&c.vault, env)?;
    let path = match &c.version {
        Some(v) => format!("certificates/{}/{v}", c.name),
        None => format!("certificates/{}", c.name),
    };
    let what = format!("reading certificate {}", c.name);
    let bundle = kv.call(reqwest::Method::GET, &path, None, &what)?;
    let der = bundle["cer"]
        .as_str()
        .and_then(|s| B64.decode(s).ok())
        .ok_or_else(|| kv_err(&c.vault, format!("{what}: the answer has no base64 `cer`")))?;
    let leaf = Cert::from_der(&der, uri)?;
    let mut chain = vec![leaf];
    if !extra.is_empty() {
        chain.extend(extra);
        return Ok(chain);
    }
    // the secret holds the whole chain when the certificate was imported or issued as PEM
    let secret_path = bundle["sid"].as_str().and_then(|sid| {
        sid.split_once("/secrets/")
            .map(|(_, p)| format!("secrets/{p}"))
    });
    if let Some(sp) = secret_path {
        let what = format!("reading the chain of certificate {} (its secret)", c.name);
        match kv.call(reqwest::Method::GET, &sp, None, &what) {
            Ok(s) if s["contentType"].as_str() == Some("application/x-pem-file") => {
                // the secret holds the private key too: keep only the certificates
                let pem = certificate_blocks(s["value"].as_str().unwrap_or_default());
                if let Ok(all) = Cert::from_pem_bundle(pem.as_bytes(), &what) {
                    let leaf_tp = chain[0].thumbprint();
                    chain.extend(all.into_iter().filter(|x| x.thumbprint() != leaf_tp));
                }
            }
            Ok(_) => tracing::debug!(
                "the certificate's secret is not PEM; the chain is the leaf and --cert-chain"
            ),
            Err(e) => tracing::debug!("no chain from the certificate's secret: {e}"),
        }
    }
    Ok(chain)
}

/// The `CERTIFICATE` blocks of a PEM text, without any other block (a private key).
fn certificate_blocks(pem: &str) -> String {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = String::new();
    let mut rest = pem;
    while let Some(i) = rest.find(BEGIN) {
        let Some(j) = rest[i..].find(END) else { break };
        out.push_str(&rest[i..i + j + END.len()]);
        out.push('\n');
        rest = &rest[i + j + END.len()..];
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn key_uris_in_every_form() {
        let want = |v: Option<&str>| VaultObject {
            vault: "kv-oversight.vault.azure.net".into(),
            name: "image-signing".into(),
            version: v.map(str::to_string),
        };
        assert_eq!(
            parse_key_uri("azurekms://kv-oversight.vault.azure.net/image-signing").unwrap(),
            want(None)
        );
        assert_eq!(
            parse_key_uri("azurekms://kv-oversight.vault.azure.net/keys/image-signing").unwrap(),
            want(None)
        );
        assert_eq!(
            parse_key_uri("azurekms://kv-oversight.vault.azure.net/image-signing/abc123").unwrap(),
            want(Some("abc123"))
        );
        assert_eq!(
            parse_key_uri("https://kv-oversight.vault.azure.net/keys/image-signing/abc123")
                .unwrap(),
            want(Some("abc123"))
        );
        assert!(parse_key_uri("azurekms://kv/a/b/c/d").is_err());
        assert!(parse_key_uri("https://kv.vault.azure.net/secrets/x").is_err());
        assert!(is_key_uri("azurekms://x.vault.azure.net/k"));
        assert!(!is_key_uri("cosign.key"));
        let c = parse_cert_uri("azurekv://kv.vault.azure.net/certificates/signer").unwrap();
        assert_eq!(
            (c.vault.as_str(), c.name.as_str()),
            ("kv.vault.azure.net", "signer")
        );
        assert!(parse_cert_uri("azurekv://kv.vault.azure.net/keys/signer").is_err());
    }

    #[test]
    fn only_the_vaults_own_resource_gets_a_token() {
        assert!(resource_fits_vault(
            "https://vault.azure.net",
            "kv.vault.azure.net"
        ));
        assert!(resource_fits_vault(
            "https://vault.azure.net/",
            "KV.Vault.Azure.Net"
        ));
        assert!(resource_fits_vault(
            "https://vault.azure.cn",
            "kv.vault.azure.cn"
        ));
        assert!(!resource_fits_vault(
            "https://management.azure.com",
            "kv.vault.azure.net"
        ));
        assert!(!resource_fits_vault(
            "http://vault.azure.net",
            "kv.vault.azure.net"
        ));
        assert!(!resource_fits_vault(
            "https://azure.net.evil.example",
            "kv.vault.azure.net"
        ));
        assert!(!resource_fits_vault("https://net", "kv.vault.azure.net"));
    }

    #[test]
    fn jwks_of_p384_keys_are_read_and_other_curves_refused() {
        let sk = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let p = sk.verifying_key().to_encoded_point(false);
        let jwk = json!({"kty": "EC-HSM", "crv": "P-384",
            "x": B64URL.encode(p.x().unwrap()), "y": B64URL.encode(p.y().unwrap())});
        let k = jwk_public(&jwk, "key k").unwrap();
        assert_eq!(k.algorithm(), Algorithm::EcdsaP384Sha384);
        assert_eq!(k.default_scheme().jose(), "ES384");
        let short = json!({"kty": "EC", "crv": "P-384",
            "x": B64URL.encode([1u8; 32]), "y": B64URL.encode([1u8; 32])});
        assert!(jwk_public(&short, "key k").is_err());
        let e = jwk_public(
            &json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}),
            "key k",
        )
        .unwrap_err();
        assert!(e.contains("P-521") && e.contains("ES384"), "{e}");
    }

    #[test]
    fn challenges_name_the_resource_and_tenant() {
        let p = challenge_params(
            r#"Bearer authorization="https://login.microsoftonline.com/72f988bf", resource="https://vault.azure.net""#,
        );
        assert!(p.contains(&("resource".into(), "https://vault.azure.net".into())));
        assert!(p.contains(&(
            "authorization".into(),
            "https://login.microsoftonline.com/72f988bf".into()
        )));
    }
}
