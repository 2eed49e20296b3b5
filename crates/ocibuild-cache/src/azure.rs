//! `type=azblob`: the cache in an Azure Blob Storage container, through `object_store`.
//!
//! Blob names are content-addressed under the `name=` prefix (default `ocibuild-cache`):
//! `<name>/blobs/sha256/<hex>` and `<name>/index/<key>.json`. Writes are conditional creates
//! (`PutMode::Create`, i.e. `If-None-Match: *`); blobs larger than [`SINGLE_PUT_MAX`] are
//! uploaded as a block list under `<name>/uploads/` and copied into place with
//! `If-None-Match: *`. The container is created when missing (`PUT ?restype=container`, signed
//! here with SharedKey or the SAS, or with the bearer token of an Entra identity; a 409 means it
//! exists) — object_store cannot create containers. For `--cache-from` nothing is created: a
//! missing container is an empty cache.
//!
//! ## Endpoint
//!
//! `account_url=` is the account's endpoint: `https://ACCOUNT.blob.core.windows.net`, or
//! path-style `http://HOST:PORT/ACCOUNT` (Azurite, the emulator: `http://127.0.0.1:10000/devstoreaccount1`).
//! The account name is `account_name=`, else the URL's path segment (path-style), else the first
//! label of the host. Without `account_url=`, the endpoint comes from
//! `AZURE_STORAGE_CONNECTION_STRING` (`BlobEndpoint`, or `AccountName` + `EndpointSuffix`), or
//! from `AZURE_STORAGE_ACCOUNT` (`https://ACCOUNT.blob.core.windows.net`).
//!
//! ## Credentials, first match wins
//!
//! 1. the flag: `secret_access_key=` (SharedKey), `sas_token=` or a SAS query on `account_url`;
//! 2. `AZURE_STORAGE_CONNECTION_STRING` (`AccountName`, `AccountKey`, `SharedAccessSignature`,
//!    `BlobEndpoint`, `DefaultEndpointsProtocol`, `EndpointSuffix`, `UseDevelopmentStorage=true`),
//!    used when it names the same account;
//! 3. `AZURE_STORAGE_ACCOUNT` + `AZURE_STORAGE_KEY` (the Azure CLI's names; `AZURE_STORAGE_ACCOUNT_NAME`
//!    and `AZURE_STORAGE_ACCOUNT_KEY` / `AZURE_STORAGE_ACCESS_KEY` too);
//! 4. `AZURE_STORAGE_SAS_TOKEN`;
//! 5. a Microsoft Entra service principal: `AZURE_CLIENT_ID` + `AZURE_TENANT_ID` +
//!    `AZURE_CLIENT_SECRET` (`AZURE_AUTHORITY_HOST` for sovereign clouds);
//! 6. workload identity (AKS, GitHub/Jenkins OIDC federation): `AZURE_CLIENT_ID` + `AZURE_TENANT_ID`
//!    + `AZURE_FEDERATED_TOKEN_FILE`;
//! 7. managed identity (IMDS, or `IDENTITY_ENDPOINT` / `MSI_ENDPOINT` on App Service and Arc), with
//!    `AZURE_CLIENT_ID` selecting a user-assigned identity.
//!
//! object_store's `MicrosoftAzureBuilder::from_env` reads `AZURE_STORAGE_ACCOUNT_NAME`,
//! `AZURE_STORAGE_ACCOUNT_KEY`, the service-principal, federated-token and MSI variables, but not
//! the CLI's `AZURE_STORAGE_ACCOUNT` / `AZURE_STORAGE_KEY` nor connection strings, and it puts
//! keys before SAS tokens before identities in its own order; so the chain above is resolved here
//! and the builder is configured explicitly. Entra identities need the *Storage Blob Data
//! Contributor* role on the container (or account) for `--cache-to`, *Reader* for `--cache-from`.

use std::collections::HashSet;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use hmac::{KeyInit, Mac};
use object_store::azure::{AzureConfigKey, AzureCredential, MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientOptions, CopyMode, CopyOptions, MultipartUpload, ObjectStore,
    ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};
use ocibuild_oci::store::ContentStore;
use ocibuild_oci::{Digest, HashingReader};

use crate::error::CacheError;
use crate::spec::{AzblobSpec, Secret, check_account, normalise_account_url};
use crate::{
    CacheBackend, Fetch, Incoming, MAX_INDEX_BYTES, PutOutcome, check_index_size, check_key,
    read_local_verified,
};

/// Blobs up to this size go up in one conditional `Put Blob`; larger ones as a block list.
pub const SINGLE_PUT_MAX: u64 = 32 * 1024 * 1024;
/// Block size of large uploads.
pub const BLOCK_SIZE: usize = 8 * 1024 * 1024;
/// The storage REST API version of our own requests (container creation); object_store's too.
pub const API_VERSION: &str = "2023-11-03";
/// Azurite's and the old emulator's well-known account (published by Microsoft).
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// The well-known key of [`DEV_ACCOUNT`] (a public constant from Microsoft's docs, not a secret).
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Reads an environment variable (the process's, or a test's map).
pub type EnvLookup = dyn Fn(&str) -> Option<String>;

/// The process environment, empty values ignored.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// How requests are authorised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    SharedKey {
        key: Secret,
    },
    Sas {
        token: Secret,
    },
    ServicePrincipal {
        tenant_id: String,
        client_id: String,
        client_secret: Secret,
        authority_host: Option<String>,
    },
    WorkloadIdentity {
        tenant_id: String,
        client_id: String,
        token_file: String,
        authority_host: Option<String>,
    },
    ManagedIdentity {
        client_id: Option<String>,
        endpoint: Option<String>,
    },
}

impl Auth {
    fn kind(&self) -> &'static str {
        match self {
            Auth::SharedKey { .. } => "shared key",
            Auth::Sas { .. } => "SAS token",
            Auth::ServicePrincipal { .. } => "Entra service principal",
            Auth::WorkloadIdentity { .. } => "Entra workload identity",
            Auth::ManagedIdentity { .. } => "managed identity",
        }
    }

    fn secrets(&self) -> Vec<String> {
        match self {
            Auth::SharedKey { key } => vec![key.expose().to_string()],
            Auth::Sas { token } => {
                let t = token.expose().trim_start_matches('?').to_string();
                let decoded = percent_decode(&t);
                vec![t, decoded]
            }
            Auth::ServicePrincipal { client_secret, .. } => {
                vec![client_secret.expose().to_string()]
            }
            _ => Vec::new(),
        }
    }
}

/// The endpoint, account and credentials, with where they came from (for `describe`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub account_url: String,
    pub account: String,
    pub auth: Auth,
    /// Names the source of the credentials (a flag option or an environment variable), never
    /// their value.
    pub source: String,
}

/// A parsed `AZURE_STORAGE_CONNECTION_STRING`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionString {
    pub account_name: Option<String>,
    pub account_key: Option<Secret>,
    pub sas: Option<Secret>,
    pub blob_endpoint: Option<String>,
    pub protocol: Option<String>,
    pub endpoint_suffix: Option<String>,
}

impl ConnectionString {
    /// Parse `Key=Value;Key=Value` (keys case-insensitive; values may contain `=`).
    /// `UseDevelopmentStorage=true` stands for Azurite's account on `127.0.0.1:10000`.
    pub fn parse(s: &str) -> Result<ConnectionString, String> {
        let mut c = ConnectionString::default();
        let mut dev = false;
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                let shown = if part.len() > 24 {
                    "<a long value>"
                } else {
                    part
                };
                return Err(format!(
                    "`{shown}` is not Key=Value (a connection string looks like DefaultEndpointsProtocol=https;AccountName=NAME;AccountKey=KEY;EndpointSuffix=core.windows.net)"
                ));
            };
            let v = v.trim().to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "accountname" => c.account_name = Some(v),
                "accountkey" => c.account_key = Some(Secret::new(v)),
                "sharedaccesssignature" => c.sas = Some(Secret::new(v)),
                "blobendpoint" => c.blob_endpoint = Some(v),
                "defaultendpointsprotocol" => c.protocol = Some(v.to_ascii_lowercase()),
                "endpointsuffix" => c.endpoint_suffix = Some(v),
                "usedevelopmentstorage" => dev = v.eq_ignore_ascii_case("true"),
                // Queue/Table/File endpoints, DevelopmentStorageProxyUri: not ours.
                _ => {}
            }
        }
        if dev {
            c.account_name
                .get_or_insert_with(|| DEV_ACCOUNT.to_string());
            if c.account_key.is_none() && c.sas.is_none() {
                c.account_key = Some(Secret::new(DEV_ACCOUNT_KEY));
            }
            c.blob_endpoint
                .get_or_insert_with(|| format!("http://127.0.0.1:10000/{DEV_ACCOUNT}"));
        }
        if c.account_key.is_some() && c.account_name.is_none() {
            return Err("it has an AccountKey but no AccountName".into());
        }
        if c.account_key.is_none() && c.sas.is_none() {
            return Err("it has neither AccountKey nor SharedAccessSignature".into());
        }
        Ok(c)
    }

    /// The blob endpoint it names: `BlobEndpoint`, else `PROTOCOL://ACCOUNT.blob.SUFFIX`.
    pub fn endpoint(&self) -> Option<String> {
        if let Some(e) = &self.blob_endpoint {
            return Some(e.trim_end_matches('/').to_string());
        }
        let a = self.account_name.as_ref()?;
        Some(format!(
            "{}://{a}.blob.{}",
            self.protocol.as_deref().unwrap_or("https"),
            self.endpoint_suffix
                .as_deref()
                .unwrap_or("core.windows.net")
        ))
    }
}

/// The account an endpoint names: the path segment (path-style), else the host's first label.
pub fn account_from_url(account_url: &str) -> Option<String> {
    let u = url::Url::parse(account_url).ok()?;
    if let Some(seg) = u
        .path_segments()
        .and_then(|mut s| s.find(|p| !p.is_empty()))
    {
        return Some(seg.to_string());
    }
    match u.host()? {
        url::Host::Domain(d) if d.contains('.') => d.split('.').next().map(str::to_string),
        _ => None,
    }
}

fn cred_error(cache: &str, why: impl Into<String>, hint: impl Into<String>) -> CacheError {
    CacheError::Credentials {
        cache: cache.to_string(),
        why: why.into(),
        hint: hint.into(),
    }
}

const NO_CREDS_HINT: &str = "pass secret_access_key= or sas_token= on the flag, or set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, or AZURE_CLIENT_ID + AZURE_TENANT_ID + AZURE_CLIENT_SECRET / AZURE_FEDERATED_TOKEN_FILE";

/// Resolve endpoint, account and credentials from the spec and the environment, in the order
/// the module docs give.
pub fn resolve(spec: &AzblobSpec, env: &EnvLookup) -> Result<Resolved, CacheError> {
    let cache = format!("azblob container {}", spec.container);
    let conn = match env("AZURE_STORAGE_CONNECTION_STRING") {
        Some(s) => Some(ConnectionString::parse(&s).map_err(|why| {
            cred_error(
                &cache,
                format!("AZURE_STORAGE_CONNECTION_STRING cannot be used: {why}"),
                "copy the connection string from the portal (Access keys, or a SAS), or unset it",
            )
        })?),
        None => None,
    };
    let env_account = env("AZURE_STORAGE_ACCOUNT").or_else(|| env("AZURE_STORAGE_ACCOUNT_NAME"));

    // The endpoint.
    let account_url = match (
        &spec.account_url,
        conn.as_ref().and_then(|c| c.endpoint()),
        &env_account,
    ) {
        (Some(u), _, _) => u.clone(),
        (None, Some(e), _) => {
            let (u, _) = normalise_account_url(&e).map_err(|why| {
                cred_error(
                    &cache,
                    format!("the connection string's blob endpoint is unusable: {why}"),
                    "fix BlobEndpoint in AZURE_STORAGE_CONNECTION_STRING, or pass account_url=",
                )
            })?;
            u
        }
        (None, None, Some(a)) => format!("https://{a}.blob.core.windows.net"),
        (None, None, None) => {
            return Err(cred_error(
                &cache,
                "no account_url= and no AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT to take the endpoint from",
                "pass account_url=https://ACCOUNT.blob.core.windows.net (or http://127.0.0.1:10000/devstoreaccount1 for Azurite)",
            ));
        }
    };
    let account = spec
        .account_name
        .clone()
        .or_else(|| account_from_url(&account_url))
        .or_else(|| conn.as_ref().and_then(|c| c.account_name.clone()))
        .or_else(|| env_account.clone())
        .ok_or_else(|| {
            cred_error(
                &cache,
                format!("cannot tell the storage account from {account_url}"),
                "add account_name=ACCOUNT to the flag",
            )
        })?;
    check_account(&account)
        .map_err(|why| cred_error(&cache, why, "pass account_name= with the right name"))?;
    let done = |auth: Auth, source: &str| {
        Ok(Resolved {
            account_url: account_url.clone(),
            account: account.clone(),
            auth,
            source: source.to_string(),
        })
    };

    // 1. The flag.
    if let Some(key) = &spec.secret_access_key {
        check_key_b64(key, &cache, "secret_access_key=")?;
        return done(
            Auth::SharedKey { key: key.clone() },
            "secret_access_key option",
        );
    }
    if let Some(t) = &spec.sas_token {
        return done(Auth::Sas { token: t.clone() }, "sas_token option");
    }
    // 2. A connection string for this account.
    if let Some(c) = &conn {
        let same = c.account_name.as_deref().is_none_or(|a| a == account);
        if same {
            if let Some(key) = &c.account_key {
                check_key_b64(key, &cache, "AZURE_STORAGE_CONNECTION_STRING's AccountKey")?;
                return done(
                    Auth::SharedKey { key: key.clone() },
                    "AZURE_STORAGE_CONNECTION_STRING",
                );
            }
            if let Some(t) = &c.sas {
                return done(
                    Auth::Sas { token: t.clone() },
                    "AZURE_STORAGE_CONNECTION_STRING",
                );
            }
        } else {
            tracing::debug!(
                "AZURE_STORAGE_CONNECTION_STRING names another account than {account}: not used"
            );
        }
    }
    // 3. Account + key.
    let env_key = env("AZURE_STORAGE_KEY")
        .or_else(|| env("AZURE_STORAGE_ACCOUNT_KEY"))
        .or_else(|| env("AZURE_STORAGE_ACCESS_KEY"));
    if let Some(k) = env_key
        && env_account.as_deref().is_none_or(|a| a == account)
    {
        let key = Secret::new(k);
        check_key_b64(&key, &cache, "AZURE_STORAGE_KEY")?;
        return done(Auth::SharedKey { key }, "AZURE_STORAGE_KEY");
    }
    // 4. SAS.
    if let Some(t) = env("AZURE_STORAGE_SAS_TOKEN") {
        return done(
            Auth::Sas {
                token: Secret::new(t),
            },
            "AZURE_STORAGE_SAS_TOKEN",
        );
    }
    // 5./6. Entra identities.
    let client_id = env("AZURE_CLIENT_ID");
    let tenant_id = env("AZURE_TENANT_ID");
    let authority_host = env("AZURE_AUTHORITY_HOST");
    if let (Some(c), Some(t)) = (&client_id, &tenant_id) {
        if let Some(s) = env("AZURE_CLIENT_SECRET") {
            return done(
                Auth::ServicePrincipal {
                    tenant_id: t.clone(),
                    client_id: c.clone(),
                    client_secret: Secret::new(s),
                    authority_host,
                },
                "AZURE_CLIENT_ID + AZURE_TENANT_ID + AZURE_CLIENT_SECRET",
            );
        }
        if let Some(f) = env("AZURE_FEDERATED_TOKEN_FILE") {
            return done(
                Auth::WorkloadIdentity {
                    tenant_id: t.clone(),
                    client_id: c.clone(),
                    token_file: f,
                    authority_host,
                },
                "AZURE_FEDERATED_TOKEN_FILE (workload identity)",
            );
        }
    }
    // 7. Managed identity.
    let endpoint = env("IDENTITY_ENDPOINT").or_else(|| env("MSI_ENDPOINT"));
    let source = if endpoint.is_some() {
        "managed identity (IDENTITY_ENDPOINT)"
    } else {
        "managed identity (instance metadata service), as no other credentials were found"
    };
    done(
        Auth::ManagedIdentity {
            client_id,
            endpoint,
        },
        source,
    )
}

fn check_key_b64(key: &Secret, cache: &str, what: &str) -> Result<(), CacheError> {
    match STANDARD.decode(key.expose().trim()) {
        Ok(k) if !k.is_empty() => Ok(()),
        _ => Err(cred_error(
            cache,
            format!("{what} is not a base64 storage account key"),
            "copy key1 or key2 from the storage account's Access keys",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// SharedKey signing (for the one request object_store cannot make: creating the container)
// ---------------------------------------------------------------------------------------------

/// The SharedKey string-to-sign for a request (service version 2015-02-21 and later): the verb,
/// the eleven standard headers (`Content-Length` empty when 0), the `x-ms-` headers sorted by
/// name, and the canonicalised resource `/ACCOUNT/PATH` plus each query parameter as
/// `\nname:value[,value]`, names lower-cased and sorted.
pub fn string_to_sign(
    method: &str,
    content_length: u64,
    content_type: &str,
    ms_headers: &[(&str, &str)],
    account: &str,
    url: &url::Url,
) -> String {
    let len = if content_length == 0 {
        String::new()
    } else {
        content_length.to_string()
    };
    let mut s = format!("{method}\n\n\n{len}\n\n{content_type}\n\n\n\n\n\n\n");
    let mut hs: Vec<(String, String)> = ms_headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .filter(|(k, _)| k.starts_with("x-ms-"))
        .collect();
    hs.sort();
    for (k, v) in hs {
        s.push_str(&format!("{k}:{v}\n"));
    }
    s.push('/');
    s.push_str(account);
    s.push_str(url.path());
    let mut params: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (k, v) in url.query_pairs() {
        params
            .entry(k.to_ascii_lowercase())
            .or_default()
            .push(v.into_owned());
    }
    for (k, mut vs) in params {
        vs.sort();
        s.push_str(&format!("\n{k}:{}", vs.join(",")));
    }
    s
}

/// Base64 HMAC-SHA256 of `string_to_sign` under the base64 account key.
pub fn sign(key_b64: &Secret, string_to_sign: &str) -> Result<String, String> {
    let key = STANDARD
        .decode(key_b64.expose().trim())
        .map_err(|_| "the account key is not base64".to_string())?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key)
        .map_err(|_| "the account key cannot key an HMAC".to_string())?;
    mac.update(string_to_sign.as_bytes());
    Ok(STANDARD.encode(mac.finalize().into_bytes()))
}

/// An RFC 1123 date (`Fri, 26 Jun 2015 23:39:12 GMT`), as `x-ms-date` wants it.
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // civil_from_days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WD[days.rem_euclid(7) as usize],
        d,
        MO[(m - 1).clamp(0, 11) as usize],
        y,
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Remove every known secret, and any SAS signature (`sig=…`), from a message.
pub fn scrub(msg: &str, secrets: &[String]) -> String {
    let mut out = msg.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s.as_str(), "<redacted>");
    }
    // `sig=VALUE` up to the next separator, whatever its encoding.
    let mut res = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("sig=") {
        let preceded_ok = i == 0
            || !rest[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        res.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        if preceded_ok {
            let end = rest
                .find(['&', ' ', '"', '\'', ')', '>', '\n', ',', ';'])
                .unwrap_or(rest.len());
            res.push_str("<redacted>");
            rest = &rest[end..];
        }
    }
    res.push_str(rest);
    res
}

// ---------------------------------------------------------------------------------------------
// The backend
// ---------------------------------------------------------------------------------------------

/// An Azure Blob Storage cache.
pub struct AzureCache {
    rt: tokio::runtime::Runtime,
    store: MicrosoftAzure,
    prefix: String,
    describe: String,
    secrets: Vec<String>,
    /// No credentials were found and the managed identity is tried as a last resort.
    fallback_identity: bool,
    corrupt: Mutex<HashSet<Digest>>,
}

impl std::fmt::Debug for AzureCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureCache")
            .field("describe", &self.describe)
            .finish_non_exhaustive()
    }
}

impl AzureCache {
    /// Resolve credentials, build the client and, for export, create the container if needed.
    pub fn open(spec: &AzblobSpec, for_export: bool, env: &EnvLookup) -> Result<Self, CacheError> {
        let r = resolve(spec, env)?;
        let describe = format!(
            "azblob {}/{}/{} ({} from {})",
            r.account_url,
            spec.container,
            spec.name,
            r.auth.kind(),
            r.source
        );
        let secrets = r.auth.secrets();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| CacheError::Runtime {
                cache: describe.clone(),
                source,
            })?;
        let http = r.account_url.starts_with("http://");
        let mut b = MicrosoftAzureBuilder::new()
            .with_account(&r.account)
            .with_container_name(&spec.container)
            .with_endpoint(r.account_url.clone())
            .with_allow_http(http)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(http)
                    .with_connect_timeout(Duration::from_secs(20))
                    .with_timeout(Duration::from_secs(300)),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 5,
                retry_timeout: Duration::from_secs(120),
            });
        b = match &r.auth {
            Auth::SharedKey { key } => b.with_access_key(key.expose()),
            Auth::Sas { token } => b.with_config(
                AzureConfigKey::SasKey,
                token.expose().trim_start_matches('?'),
            ),
            Auth::ServicePrincipal {
                tenant_id,
                client_id,
                client_secret,
                authority_host,
            } => {
                let mut b = b
                    .with_config(AzureConfigKey::CredentialType, "client_secret")
                    .with_client_id(client_id)
                    .with_tenant_id(tenant_id)
                    .with_client_secret(client_secret.expose());
                if let Some(h) = authority_host {
                    b = b.with_authority_host(h);
                }
                b
            }
            Auth::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
                authority_host,
            } => {
                let mut b = b
                    .with_config(AzureConfigKey::CredentialType, "workload_identity")
                    .with_client_id(client_id)
                    .with_tenant_id(tenant_id)
                    .with_federated_token_file(token_file);
                if let Some(h) = authority_host {
                    b = b.with_authority_host(h);
                }
                b
            }
            Auth::ManagedIdentity {
                client_id,
                endpoint,
            } => {
                let mut b = b.with_config(AzureConfigKey::CredentialType, "managed_identity");
                if let Some(c) = client_id {
                    b = b.with_client_id(c);
                }
                if let Some(e) = endpoint {
                    b = b.with_msi_endpoint(e);
                }
                b
            }
        };
        let store = b.build().map_err(|e| CacheError::Azure {
            cache: describe.clone(),
            op: "setting up the client".into(),
            detail: scrub(&error_chain(&e), &secrets),
            hint: Some("check account_url= and the credentials".into()),
        })?;
        let cache = AzureCache {
            rt,
            store,
            prefix: spec.name.clone(),
            describe,
            secrets,
            fallback_identity: matches!(r.auth, Auth::ManagedIdentity { endpoint: None, .. }),
            corrupt: Mutex::new(HashSet::new()),
        };
        if for_export {
            cache.ensure_container(&r, &spec.container)?;
        }
        Ok(cache)
    }

    fn blob_path(&self, d: &Digest) -> ObjPath {
        ObjPath::from(format!("{}/blobs/sha256/{}", self.prefix, d.hex()))
    }

    fn index_path(&self, key: &str) -> ObjPath {
        ObjPath::from(format!("{}/index/{key}.json", self.prefix))
    }

    fn err(&self, op: impl Into<String>, e: &object_store::Error) -> CacheError {
        let hint = match e {
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => Some(
                "the credentials were refused or lack permission: a key or SAS must allow read, write, create and delete on the container; an Entra identity needs the Storage Blob Data Contributor role".to_string(),
            ),
            _ if self.fallback_identity => Some(format!(
                "no credentials were found, so the instance metadata service's managed identity was tried; {NO_CREDS_HINT}"
            )),
            _ if error_chain(e).contains("onnect") => Some(format!(
                "is {} reachable from here? check account_url=",
                self.describe.split(' ').nth(1).unwrap_or("the account")
            )),
            _ => None,
        };
        CacheError::Azure {
            cache: self.describe.clone(),
            op: op.into(),
            detail: scrub(&error_chain(e), &self.secrets),
            hint,
        }
    }

    fn mark_corrupt(&self, d: &Digest, bad: bool) {
        if let Ok(mut s) = self.corrupt.lock() {
            if bad {
                s.insert(d.clone());
            } else {
                s.remove(d);
            }
        }
    }

    /// `PUT {account_url}/{container}?restype=container`; 201 and 409 are both fine.
    fn ensure_container(&self, r: &Resolved, container: &str) -> Result<(), CacheError> {
        let fail = |detail: String, hint: Option<String>| CacheError::Azure {
            cache: self.describe.clone(),
            op: format!("creating the container {container}"),
            detail: scrub(&detail, &self.secrets),
            hint,
        };
        let mut url = url::Url::parse(&format!("{}/{container}", r.account_url))
            .map_err(|e| fail(e.to_string(), None))?;
        url.query_pairs_mut().append_pair("restype", "container");
        let date = http_date(SystemTime::now());
        let mut client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(20))
            .timeout(Duration::from_secs(60));
        if url
            .host_str()
            .is_some_and(ocibuild_registry::client::is_loopback)
        {
            client = client.no_proxy();
        }
        let client = client.build().map_err(|e| fail(e.to_string(), None))?;
        let mut authz: Option<String> = None;
        match &r.auth {
            Auth::SharedKey { key } => {
                let sts = string_to_sign(
                    "PUT",
                    0,
                    "",
                    &[("x-ms-date", &date), ("x-ms-version", API_VERSION)],
                    &r.account,
                    &url,
                );
                let sig = sign(key, &sts).map_err(|e| fail(e, None))?;
                authz = Some(format!("SharedKey {}:{sig}", r.account));
            }
            Auth::Sas { token } => {
                let q = format!(
                    "restype=container&{}",
                    token.expose().trim_start_matches('?')
                );
                url.set_query(Some(&q));
            }
            _ => {
                let cred = self
                    .rt
                    .block_on(async { self.store.credentials().get_credential().await })
                    .map_err(|e| {
                        fail(
                            error_chain(&e),
                            Some(if self.fallback_identity {
                                format!("no credentials were found, so the instance metadata service's managed identity was tried; {NO_CREDS_HINT}")
                            } else {
                                format!(
                                    "getting a token with {} failed; check the identity's settings",
                                    r.source
                                )
                            }),
                        )
                    })?;
                if let AzureCredential::BearerToken(t) = cred.as_ref() {
                    authz = Some(format!("Bearer {t}"));
                }
            }
        }
        let mut req = client
            .put(url.as_str())
            .header("x-ms-date", &date)
            .header("x-ms-version", API_VERSION)
            .header("content-length", "0");
        if let Some(a) = authz {
            let mut hv = reqwest::header::HeaderValue::from_str(&a)
                .map_err(|_| fail("the authorization header is not valid".into(), None))?;
            hv.set_sensitive(true);
            req = req.header(reqwest::header::AUTHORIZATION, hv);
        }
        let resp = self.rt.block_on(async { req.send().await }).map_err(|e| {
            let mut d = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                d.push_str(&format!(": {s}"));
                src = s.source();
            }
            fail(
                d,
                Some(format!(
                    "is {} reachable from here? check account_url=",
                    r.account_url
                )),
            )
        })?;
        let status = resp.status().as_u16();
        let code = resp
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        match status {
            201 => {
                tracing::info!(cache = %self.describe, "created the container {container}");
                Ok(())
            }
            409 => Ok(()),
            // Allowed to use the container but not to create one (a container-scoped SAS, a
            // role on the container): it may well exist; the first write will say if not. A
            // shared key may do anything in its account, so a 403 means the key is wrong.
            403 if code != "AuthenticationFailed" && !matches!(r.auth, Auth::SharedKey { .. }) => {
                tracing::debug!(cache = %self.describe, code, "not allowed to create the container; assuming it exists");
                Ok(())
            }
            _ => {
                let body = self
                    .rt
                    .block_on(async { resp.text().await })
                    .unwrap_or_default();
                let body: String = body.chars().take(300).collect();
                Err(fail(
                    format!("{status} {code} {body}"),
                    Some(if status == 403 {
                        format!(
                            "the {} from {} was refused: check that it belongs to account {}",
                            r.auth.kind(),
                            r.source,
                            r.account
                        )
                    } else {
                        "check account_url= and container=".to_string()
                    }),
                ))
            }
        }
    }

    async fn upload_large(
        &self,
        d: &Digest,
        store: &ContentStore,
        replace: bool,
    ) -> Result<(), CacheError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| t.subsec_nanos());
        let tmp = ObjPath::from(format!(
            "{}/uploads/{}.{}-{nanos:x}",
            self.prefix,
            d.hex(),
            std::process::id()
        ));
        let f = store.open_blob(d)?;
        let mut r = HashingReader::new(f);
        let mut up = self
            .store
            .put_multipart(&tmp)
            .await
            .map_err(|e| self.err(format!("starting the upload of blob {d}"), &e))?;
        loop {
            let mut buf = Vec::with_capacity(BLOCK_SIZE);
            let n = (&mut r)
                .take(BLOCK_SIZE as u64)
                .read_to_end(&mut buf)
                .map_err(|e| {
                    CacheError::Store(ocibuild_oci::OciError::Io {
                        op: "read",
                        path: store.blob_path(d),
                        source: e,
                    })
                })?;
            if n == 0 {
                break;
            }
            if let Err(e) = up.put_part(PutPayload::from(buf)).await {
                let _ = up.abort().await;
                return Err(self.err(format!("uploading a block of blob {d}"), &e));
            }
        }
        let (_, got, _) = r.finish();
        if got != *d {
            let _ = up.abort().await;
            return Err(CacheError::LocalBlobCorrupt {
                digest: d.to_string(),
                why: format!("its content hashes to {got}"),
            });
        }
        up.complete()
            .await
            .map_err(|e| self.err(format!("committing the blocks of blob {d}"), &e))?;
        let dest = self.blob_path(d);
        let mode = if replace {
            CopyMode::Overwrite
        } else {
            CopyMode::Create
        };
        let res = self
            .store
            .copy_opts(
                &tmp,
                &dest,
                CopyOptions {
                    mode,
                    ..Default::default()
                },
            )
            .await;
        let _ = self.store.delete(&tmp).await;
        match res {
            Ok(()) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(self.err(format!("moving blob {d} into place"), &e)),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut d = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !d.contains(&t) {
            d.push_str(&format!(": {t}"));
        }
        src = s.source();
    }
    d
}

impl CacheBackend for AzureCache {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn get_index(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        check_key(key)?;
        let path = self.index_path(key);
        self.rt.block_on(async {
            let r = match self.store.get(&path).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(self.err(format!("reading the index object of {key}"), &e)),
            };
            if r.meta.size > MAX_INDEX_BYTES {
                tracing::warn!(cache = %self.describe, key, "index object larger than {MAX_INDEX_BYTES} bytes: treated as a miss");
                return Ok(None);
            }
            match r.bytes().await {
                Ok(b) => Ok(Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.err(format!("reading the index object of {key}"), &e)),
            }
        })
    }

    fn put_index(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome, CacheError> {
        ocibuild_oci::failpoint::hit("cache-export");
        check_key(key)?;
        check_index_size(key, bytes)?;
        let path = self.index_path(key);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let res = self.rt.block_on(self.store.put_opts(
            &path,
            PutPayload::from(bytes.to_vec()),
            opts,
        ));
        match res {
            Ok(_) => Ok(PutOutcome::Created),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(PutOutcome::AlreadyExists),
            Err(e) => Err(self.err(format!("writing the index object of {key}"), &e)),
        }
    }

    fn has_blob(&self, d: &Digest) -> Result<bool, CacheError> {
        match self.rt.block_on(self.store.head(&self.blob_path(d))) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err(format!("checking blob {d}"), &e)),
        }
    }

    fn fetch_blob(&self, d: &Digest, store: &ContentStore) -> Result<Fetch, CacheError> {
        if store.has(d) {
            store.touch(d);
            return Ok(Fetch::Present);
        }
        let path = self.blob_path(d);
        let r = self.rt.block_on(async {
            let res = match self.store.get(&path).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Ok(Fetch::Missing),
                Err(e) => return Err(self.err(format!("downloading blob {d}"), &e)),
            };
            let mut inc = Incoming::new(store, d, format!("blob {d} from {}", self.describe))?;
            let mut s = res.into_stream();
            while let Some(chunk) = s.next().await {
                let chunk = chunk.map_err(|e| self.err(format!("downloading blob {d}"), &e))?;
                inc.write(&chunk)?;
            }
            inc.finish()
        })?;
        self.mark_corrupt(d, matches!(r, Fetch::Corrupt { .. }));
        Ok(r)
    }

    fn push_blob(&self, d: &Digest, store: &ContentStore) -> Result<(), CacheError> {
        let Some(size) = store.size(d) else {
            // open_blob's error names the store and the digest.
            store.open_blob(d)?;
            return Ok(());
        };
        let path = self.blob_path(d);
        let known_bad = self.corrupt.lock().map(|s| s.contains(d)).unwrap_or(false);
        let replace = match self.rt.block_on(self.store.head(&path)) {
            Ok(meta) if meta.size == size && !known_bad => return Ok(()),
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => return Err(self.err(format!("checking blob {d}"), &e)),
        };
        if size > SINGLE_PUT_MAX {
            self.rt.block_on(self.upload_large(d, store, replace))?;
        } else {
            let bytes = read_local_verified(d, store)?;
            let mode = if replace {
                PutMode::Overwrite
            } else {
                PutMode::Create
            };
            let res = self.rt.block_on(self.store.put_opts(
                &path,
                PutPayload::from(bytes),
                PutOptions {
                    mode,
                    ..Default::default()
                },
            ));
            match res {
                Ok(_)
                | Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {}
                Err(e) => return Err(self.err(format!("uploading blob {d}"), &e)),
            }
        }
        if replace {
            self.mark_corrupt(d, false);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    fn spec(s: &str) -> AzblobSpec {
        match crate::CacheSpec::parse(s, true).unwrap().backend {
            crate::Backend::Azblob(a) => a,
            other => panic!("{other:?}"),
        }
    }

    /// Microsoft's "Authorize with Shared Key" example (Blob service, version 2015-02-21):
    /// the documented string-to-sign, and its HMAC under the published emulator key as computed
    /// independently with `openssl dgst -sha256 -mac HMAC`.
    #[test]
    fn shared_key_matches_the_documented_example() {
        let url = url::Url::parse(
            "https://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=metadata&timeout=20",
        )
        .unwrap();
        let sts = string_to_sign(
            "GET",
            0,
            "",
            &[
                ("x-ms-version", "2015-02-21"),
                ("x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"),
            ],
            "myaccount",
            &url,
        );
        assert_eq!(
            sts,
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2015-02-21\n/myaccount/mycontainer\ncomp:metadata\nrestype:container\ntimeout:20"
        );
        assert_eq!(
            sign(&Secret::new(DEV_ACCOUNT_KEY), &sts).unwrap(),
            "1u9lui2jDxj0+fpbHjQ5m5NnastJRSYM+PSmfi8TXx4="
        );
        assert!(sign(&Secret::new("not base64!"), &sts).is_err());
    }

    #[test]
    fn path_style_resource_and_content_length() {
        let url =
            url::Url::parse("http://127.0.0.1:10000/devstoreaccount1/c?restype=container").unwrap();
        let sts = string_to_sign("PUT", 12, "text/plain", &[], DEV_ACCOUNT, &url);
        assert_eq!(
            sts,
            "PUT\n\n\n12\n\ntext/plain\n\n\n\n\n\n\n/devstoreaccount1/devstoreaccount1/c\nrestype:container"
        );
    }

    #[test]
    fn http_dates() {
        let at = |s: u64| http_date(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(1_435_361_952), "Fri, 26 Jun 2015 23:39:12 GMT");
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(at(951_825_600), "Tue, 29 Feb 2000 12:00:00 GMT");
    }

    #[test]
    fn connection_strings() {
        let c = ConnectionString::parse(
            "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=a2V5a2V5==;EndpointSuffix=core.chinacloudapi.cn",
        )
        .unwrap();
        assert_eq!(c.account_name.as_deref(), Some("acct1"));
        assert_eq!(c.account_key.as_ref().unwrap().expose(), "a2V5a2V5==");
        assert_eq!(
            c.endpoint().as_deref(),
            Some("https://acct1.blob.core.chinacloudapi.cn")
        );
        let c = ConnectionString::parse(
            "BlobEndpoint=http://127.0.0.1:10001/devstoreaccount1/;SharedAccessSignature=sv=2022-11-02&sig=x%2By",
        )
        .unwrap();
        assert_eq!(
            c.endpoint().as_deref(),
            Some("http://127.0.0.1:10001/devstoreaccount1")
        );
        assert_eq!(c.sas.as_ref().unwrap().expose(), "sv=2022-11-02&sig=x%2By");
        let c = ConnectionString::parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(c.account_key.as_ref().unwrap().expose(), DEV_ACCOUNT_KEY);
        assert_eq!(
            c.endpoint().as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        assert!(ConnectionString::parse("AccountKey=abc=").is_err());
        assert!(ConnectionString::parse("AccountName=a").is_err());
        let e =
            ConnectionString::parse("AccountName=a;SECRETVALUEWITHOUTEQUALSSIGN123").unwrap_err();
        assert!(!e.contains("SECRETVALUE"), "{e}");
    }

    #[test]
    fn accounts_from_urls() {
        assert_eq!(
            account_from_url("https://acct.blob.core.windows.net").as_deref(),
            Some("acct")
        );
        assert_eq!(
            account_from_url("http://127.0.0.1:10000/devstoreaccount1").as_deref(),
            Some("devstoreaccount1")
        );
        assert_eq!(account_from_url("http://127.0.0.1:10000"), None);
        assert_eq!(account_from_url("http://azurite:10000"), None);
    }

    #[test]
    fn credential_order() {
        let s = spec(
            "type=azblob,account_url=https://acct.blob.core.windows.net,container=cache,secret_access_key=a2V5",
        );
        let full = env_of(&[
            (
                "AZURE_STORAGE_CONNECTION_STRING",
                "AccountName=acct;AccountKey=Y29ubg==",
            ),
            ("AZURE_STORAGE_ACCOUNT", "acct"),
            ("AZURE_STORAGE_KEY", "ZW52"),
            ("AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=abc"),
            ("AZURE_CLIENT_ID", "cid"),
            ("AZURE_TENANT_ID", "tid"),
            ("AZURE_CLIENT_SECRET", "csecret"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
        ]);
        let r = resolve(&s, &full).unwrap();
        assert_eq!(r.account, "acct");
        assert_eq!(r.source, "secret_access_key option");
        assert_eq!(
            r.auth,
            Auth::SharedKey {
                key: Secret::new("a2V5")
            }
        );

        let s = spec("type=azblob,account_url=https://acct.blob.core.windows.net,container=cache");
        let r = resolve(&s, &full).unwrap();
        assert_eq!(r.source, "AZURE_STORAGE_CONNECTION_STRING");
        assert_eq!(
            r.auth,
            Auth::SharedKey {
                key: Secret::new("Y29ubg==")
            }
        );

        let no_conn = env_of(&[
            ("AZURE_STORAGE_ACCOUNT", "acct"),
            ("AZURE_STORAGE_KEY", "ZW52"),
            ("AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=abc"),
            ("AZURE_CLIENT_ID", "cid"),
            ("AZURE_TENANT_ID", "tid"),
        ]);
        assert_eq!(resolve(&s, &no_conn).unwrap().source, "AZURE_STORAGE_KEY");

        let sas = env_of(&[("AZURE_STORAGE_SAS_TOKEN", "?sv=1&sig=abc")]);
        assert_eq!(
            resolve(&s, &sas).unwrap().auth,
            Auth::Sas {
                token: Secret::new("?sv=1&sig=abc")
            }
        );

        let sp = env_of(&[
            ("AZURE_CLIENT_ID", "cid"),
            ("AZURE_TENANT_ID", "tid"),
            ("AZURE_CLIENT_SECRET", "csecret"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
        ]);
        assert!(matches!(
            resolve(&s, &sp).unwrap().auth,
            Auth::ServicePrincipal { .. }
        ));
        let wi = env_of(&[
            ("AZURE_CLIENT_ID", "cid"),
            ("AZURE_TENANT_ID", "tid"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
        ]);
        assert!(matches!(
            resolve(&s, &wi).unwrap().auth,
            Auth::WorkloadIdentity { .. }
        ));
        let mi = env_of(&[("AZURE_CLIENT_ID", "cid")]);
        assert_eq!(
            resolve(&s, &mi).unwrap().auth,
            Auth::ManagedIdentity {
                client_id: Some("cid".into()),
                endpoint: None
            }
        );
        // a key for another account is not used
        let other = env_of(&[
            ("AZURE_STORAGE_ACCOUNT", "other"),
            ("AZURE_STORAGE_KEY", "ZW52"),
        ]);
        assert!(matches!(
            resolve(&s, &other).unwrap().auth,
            Auth::ManagedIdentity { .. }
        ));
    }

    #[test]
    fn endpoint_from_the_environment() {
        let s = spec("type=azblob,container=cache");
        let e = resolve(&s, &env_of(&[])).unwrap_err().to_string();
        assert!(e.contains("account_url="), "{e}");
        let r = resolve(
            &s,
            &env_of(&[(
                "AZURE_STORAGE_CONNECTION_STRING",
                "UseDevelopmentStorage=true",
            )]),
        )
        .unwrap();
        assert_eq!(r.account_url, "http://127.0.0.1:10000/devstoreaccount1");
        assert_eq!(r.account, DEV_ACCOUNT);
        let r = resolve(
            &s,
            &env_of(&[
                ("AZURE_STORAGE_ACCOUNT", "acct"),
                ("AZURE_STORAGE_KEY", "ZW52"),
            ]),
        )
        .unwrap();
        assert_eq!(r.account_url, "https://acct.blob.core.windows.net");
        let e = resolve(
            &spec("type=azblob,container=cache,account_url=http://azurite:10000"),
            &env_of(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("account_name="), "{e}");
        let bad = resolve(
            &s,
            &env_of(&[(
                "AZURE_STORAGE_CONNECTION_STRING",
                "AccountName=acct;AccountKey=!!notbase64SECRET",
            )]),
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("base64") && !bad.contains("SECRET"), "{bad}");
    }

    #[test]
    fn scrubbing() {
        let secrets = vec!["S3cr3tK3y==".to_string()];
        let m = scrub(
            "error sending request for url (http://h/c/b?sv=2022&sig=abc%2Bdef&se=1): key S3cr3tK3y== refused",
            &secrets,
        );
        assert!(!m.contains("abc%2Bdef") && !m.contains("S3cr3tK3y"), "{m}");
        assert!(m.contains("sig=<redacted>&se=1"), "{m}");
        assert_eq!(scrub("design=ok", &[]), "design=ok");
        let a = Auth::Sas {
            token: Secret::new("sv=1&sig=a%2Bb"),
        };
        let s = a.secrets();
        assert!(s.contains(&"sv=1&sig=a+b".to_string()), "{s:?}");
    }
}
