//! The same scenario against each backend, with real peers: a local directory, Azurite (Azure
//! Blob Storage's emulator, from npm) and the CNCF `docker-registry`, each started on a free
//! loopback port by the testkit. A missing peer fails the test with the command to install it.
//!
//! Scenario: runner A pushes blobs (one of them large enough for block/chunked uploads) and an
//! index object; runner B, with an empty content store, reads the index and fetches every blob,
//! verified. `put_index` twice keeps the first object. Two runners writing the same keys and
//! blobs at once both succeed and leave a consistent cache. A blob corrupted inside the backend
//! is `Fetch::Corrupt` and leaves nothing in the store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Barrier};
use std::time::{SystemTime, UNIX_EPOCH};

use ocibuild_cache::{CacheBackend, CacheSpec, Fetch, PutOutcome, open};
use ocibuild_oci::Digest;
use ocibuild_oci::store::ContentStore;
use ocibuild_testkit::TestContext;

/// Deterministic, incompressible bytes, different for every run and seed.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ nonce | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn hex_key(seed: &str) -> String {
    Digest::of_bytes(format!("{seed}-{:?}", SystemTime::now()).as_bytes())
        .hex()
        .to_string()
}

struct Fixture {
    blobs: Vec<(Digest, Vec<u8>)>,
    key: String,
    index: Vec<u8>,
}

fn fixture(large: bool) -> Fixture {
    let mut sizes = vec![0usize, 1, 1000, 300_000];
    if large {
        // above the azblob single-put limit (32 MiB) and the registry's chunk size (16 MiB)
        sizes.push(33 * 1024 * 1024 + 17);
    }
    let blobs: Vec<(Digest, Vec<u8>)> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let b = bytes(*n, i as u64 + 1);
            (Digest::of_bytes(&b), b)
        })
        .collect();
    let index = serde_json::to_vec(&serde_json::json!({
        "kind": "run",
        "layers": blobs.iter().map(|(d, b)| serde_json::json!({"digest": d.to_string(), "size": b.len()})).collect::<Vec<_>>(),
    }))
    .unwrap();
    Fixture {
        blobs,
        key: hex_key("fixture"),
        index,
    }
}

fn store_with(ctx: &TestContext, name: &str, blobs: &[(Digest, Vec<u8>)]) -> ContentStore {
    let s = ContentStore::open(ctx.tmp_dir(name)).unwrap();
    for (d, b) in blobs {
        assert_eq!(s.put_bytes(b).unwrap(), *d);
    }
    s
}

/// Runner A exports, runner B imports into an empty store.
fn roundtrip(ctx: &TestContext, a: &dyn CacheBackend, b: &dyn CacheBackend, fx: &Fixture) {
    let store_a = store_with(ctx, "store-a", &fx.blobs);
    for (d, _) in &fx.blobs {
        a.push_blob(d, &store_a)
            .unwrap_or_else(|e| panic!("{}: push {d}: {e}", a.describe()));
    }
    // pushing again is a no-op
    a.push_blob(&fx.blobs[1].0, &store_a).unwrap();
    assert_eq!(
        a.put_index(&fx.key, &fx.index).unwrap(),
        PutOutcome::Created
    );

    let store_b = ContentStore::open(ctx.tmp_dir("store-b")).unwrap();
    let got = b
        .get_index(&fx.key)
        .unwrap()
        .unwrap_or_else(|| panic!("{}: runner B finds no index for the key", b.describe()));
    assert_eq!(got, fx.index);
    let v: serde_json::Value = serde_json::from_slice(&got).unwrap();
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), fx.blobs.len());
    for l in layers {
        let d = Digest::parse(l["digest"].as_str().unwrap()).unwrap();
        let size = l["size"].as_u64().unwrap();
        assert!(b.has_blob(&d).unwrap(), "{}: has_blob {d}", b.describe());
        assert!(!store_b.has(&d));
        assert_eq!(
            b.fetch_blob(&d, &store_b).unwrap(),
            Fetch::Fetched { bytes: size },
            "{}: fetch {d}",
            b.describe()
        );
        assert!(store_b.has(&d));
        let (back, n) = Digest::of_reader(store_b.open_blob(&d).unwrap()).unwrap();
        assert_eq!((back, n), (d.clone(), size));
        assert_eq!(b.fetch_blob(&d, &store_b).unwrap(), Fetch::Present);
    }
    assert_eq!(store_b.du().unwrap().temp_files, 0);

    // misses are misses, not errors
    let absent = Digest::of_bytes(b"never pushed by anyone");
    assert!(!b.has_blob(&absent).unwrap());
    assert_eq!(b.fetch_blob(&absent, &store_b).unwrap(), Fetch::Missing);
    assert_eq!(b.get_index(&hex_key("absent")).unwrap(), None);

    // a second put of the key keeps the first object
    assert_eq!(
        a.put_index(&fx.key, b"{\"other\":true}").unwrap(),
        PutOutcome::AlreadyExists
    );
    assert_eq!(b.get_index(&fx.key).unwrap().unwrap(), fx.index);

    // bad keys are refused before any request
    assert!(a.get_index("../etc/passwd").is_err());
    assert!(a.put_index("ABC", b"{}").is_err());
}

/// Two runners write the same keys and blobs at once: both succeed; each key ends up with one
/// of the two objects, and every blob reads back verified.
fn concurrent_writers(
    ctx: &TestContext,
    w1: &dyn CacheBackend,
    w2: &dyn CacheBackend,
    reader: &dyn CacheBackend,
    exactly_one_create: bool,
) {
    let blobs: Vec<(Digest, Vec<u8>)> = (0..6)
        .map(|i| {
            let b = bytes(50_000 + i * 7, 100 + i as u64);
            (Digest::of_bytes(&b), b)
        })
        .collect();
    let keys: Vec<String> = (0..5).map(|i| hex_key(&format!("race-{i}"))).collect();
    let s1 = store_with(ctx, "race-1", &blobs);
    let s2 = store_with(ctx, "race-2", &blobs);
    let barrier = Arc::new(Barrier::new(2));
    let run = |w: &dyn CacheBackend, s: &ContentStore, who: u8| {
        barrier.wait();
        let mut outcomes = Vec::new();
        for (d, _) in &blobs {
            w.push_blob(d, s)
                .unwrap_or_else(|e| panic!("writer {who}: push {d}: {e}"));
        }
        for k in &keys {
            let body = format!("{{\"writer\":{who},\"key\":\"{k}\"}}");
            outcomes.push(
                w.put_index(k, body.as_bytes())
                    .unwrap_or_else(|e| panic!("writer {who}: put_index: {e}")),
            );
        }
        outcomes
    };
    let (r1, r2) = std::thread::scope(|sc| {
        let h1 = sc.spawn(|| run(w1, &s1, 1));
        let h2 = sc.spawn(|| run(w2, &s2, 2));
        (h1.join().unwrap(), h2.join().unwrap())
    });
    let fresh = ContentStore::open(ctx.tmp_dir("race-reader")).unwrap();
    for (i, k) in keys.iter().enumerate() {
        let got = reader
            .get_index(k)
            .unwrap()
            .expect("an index after the race");
        let v: serde_json::Value = serde_json::from_slice(&got).unwrap();
        assert_eq!(v["key"].as_str(), Some(k.as_str()));
        let writer = v["writer"].as_u64().unwrap();
        assert!(writer == 1 || writer == 2);
        let created = [r1[i], r2[i]]
            .iter()
            .filter(|o| **o == PutOutcome::Created)
            .count();
        if exactly_one_create {
            assert_eq!(created, 1, "key {k}: {:?} / {:?}", r1[i], r2[i]);
            let winner = if r1[i] == PutOutcome::Created { 1 } else { 2 };
            assert_eq!(writer, winner, "the object kept is the one created");
        } else {
            assert!(created >= 1);
        }
    }
    for (d, b) in &blobs {
        assert_eq!(
            reader.fetch_blob(d, &fresh).unwrap(),
            Fetch::Fetched {
                bytes: b.len() as u64
            }
        );
    }
}

/// A blob corrupted inside the backend is a verified miss: nothing enters the store.
fn corrupt_is_a_miss(
    ctx: &TestContext,
    writer: &dyn CacheBackend,
    reader: &dyn CacheBackend,
    corrupt: &dyn Fn(&Digest, &[u8]),
    repairable: bool,
) {
    let data = bytes(70_000, 999);
    let d = Digest::of_bytes(&data);
    let src = store_with(ctx, "corrupt-src", &[(d.clone(), data.clone())]);
    writer.push_blob(&d, &src).unwrap();
    corrupt(&d, &data);
    let fresh = ContentStore::open(ctx.tmp_dir("corrupt-dst")).unwrap();
    match reader.fetch_blob(&d, &fresh).unwrap() {
        Fetch::Corrupt { why } => {
            assert!(why.contains("hashes to"), "{why}");
            assert!(why.contains(&d.to_string()), "{why}");
        }
        other => panic!("{}: expected Corrupt, got {other:?}", reader.describe()),
    }
    assert!(!fresh.has(&d), "a corrupt blob entered the store");
    let du = fresh.du().unwrap();
    assert_eq!((du.blobs, du.temp_files), (0, 0));
    if repairable {
        // The runner that found it corrupt rebuilt it and exports it again: the verified copy
        // replaces the corrupt one.
        reader.push_blob(&d, &src).unwrap();
        let again = ContentStore::open(ctx.tmp_dir("corrupt-again")).unwrap();
        assert_eq!(
            writer.fetch_blob(&d, &again).unwrap(),
            Fetch::Fetched {
                bytes: data.len() as u64
            }
        );
    }
}

fn flip(data: &[u8]) -> Vec<u8> {
    let mut bad = data.to_vec();
    for i in (0..bad.len()).step_by(997) {
        bad[i] ^= 0x5a;
    }
    bad
}

// ---------------------------------------------------------------------------------------------

#[test]
fn local_backend_scenario() {
    let ctx = TestContext::new();
    let dir = ctx.tmp_dir("shared-cache");
    let to = CacheSpec::parse(&format!("type=local,dest={}", dir.display()), true).unwrap();
    let from = CacheSpec::parse(&format!("type=local,src={}", dir.display()), false).unwrap();
    let a = open(&to, None).unwrap();
    let b = open(&from, None).unwrap();
    assert!(a.describe().contains(&dir.display().to_string()));
    roundtrip(&ctx, a.as_ref(), b.as_ref(), &fixture(true));

    let w2 = open(&to, None).unwrap();
    concurrent_writers(&ctx, a.as_ref(), w2.as_ref(), b.as_ref(), true);

    let blob_dir = dir.join("blobs/sha256");
    corrupt_is_a_miss(
        &ctx,
        a.as_ref(),
        b.as_ref(),
        &|d, data| std::fs::write(blob_dir.join(d.hex()), flip(data)).unwrap(),
        true,
    );
    assert_eq!(
        std::fs::read_dir(dir.join("tmp")).unwrap().count(),
        0,
        "temp files left in the cache dir"
    );

    // importing from a directory that does not exist is an empty cache
    let none = CacheSpec::parse(
        &format!("type=local,src={}", ctx.path("no-such-dir").display()),
        false,
    )
    .unwrap();
    let n = open(&none, None).unwrap();
    assert_eq!(n.get_index(&hex_key("x")).unwrap(), None);
    let s = ContentStore::open(ctx.tmp_dir("none")).unwrap();
    assert_eq!(
        n.fetch_blob(&Digest::of_bytes(b"x"), &s).unwrap(),
        Fetch::Missing
    );
}

mod azblob {
    use super::*;
    use object_store::azure::MicrosoftAzureBuilder;
    use object_store::path::Path as ObjPath;
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
    use ocibuild_cache::azure::AzureCache;
    use ocibuild_cache::{AzblobSpec, Backend};
    use ocibuild_testkit::azurite::{Azurite, DEV_ACCOUNT, DEV_ACCOUNT_KEY, start_azurite};

    fn azblob_spec(s: &str, for_export: bool) -> AzblobSpec {
        match CacheSpec::parse(s, for_export).unwrap().backend {
            Backend::Azblob(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// An object_store client of its own, to tamper with the container behind the cache's back.
    fn raw_store(az: &Azurite, container: &str) -> object_store::azure::MicrosoftAzure {
        MicrosoftAzureBuilder::new()
            .with_account(DEV_ACCOUNT)
            .with_access_key(DEV_ACCOUNT_KEY)
            .with_container_name(container)
            .with_endpoint(az.account_url.clone())
            .with_allow_http(true)
            .build()
            .unwrap()
    }

    #[test]
    fn azblob_backend_scenario_against_azurite() {
        let ctx = TestContext::new();
        let az = start_azurite(&ctx);
        let container = "ci-cache-a";
        // Runner A: the key on the flag; the container does not exist yet and is created.
        let to = CacheSpec::parse(
            &format!(
                "type=azblob,account_url={},container={container},name=team/app,secret_access_key={DEV_ACCOUNT_KEY},mode=max",
                az.account_url
            ),
            true,
        )
        .unwrap();
        let a = open(&to, None).unwrap_or_else(|e| panic!("{e}\n--- azurite ---\n{}", az.log()));
        assert!(!a.describe().contains(DEV_ACCOUNT_KEY), "{}", a.describe());
        assert!(
            a.describe().contains("secret_access_key option"),
            "{}",
            a.describe()
        );
        // Runner B: no secret on the flag, the credentials from AZURE_STORAGE_CONNECTION_STRING.
        let conn = az.connection_string();
        let env = move |k: &str| (k == "AZURE_STORAGE_CONNECTION_STRING").then(|| conn.clone());
        let b_spec = azblob_spec(
            &format!("type=azblob,container={container},name=team/app"),
            false,
        );
        let b = AzureCache::open(&b_spec, false, &env).unwrap();
        assert!(
            b.describe().contains("AZURE_STORAGE_CONNECTION_STRING"),
            "{}",
            b.describe()
        );
        roundtrip(&ctx, a.as_ref(), &b, &fixture(true));

        // content-addressed names under the prefix
        let raw = raw_store(&az, container);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let d0 = Digest::of_bytes(b"");
        rt.block_on(raw.head(&ObjPath::from(format!(
            "team/app/blobs/sha256/{}",
            d0.hex()
        ))))
        .unwrap();

        let w2 = open(&to, None).unwrap();
        concurrent_writers(&ctx, a.as_ref(), w2.as_ref(), &b, true);

        let corrupt = |d: &Digest, data: &[u8]| {
            let p = ObjPath::from(format!("team/app/blobs/sha256/{}", d.hex()));
            rt.block_on(raw.put(&p, PutPayload::from(flip(data))))
                .unwrap();
        };
        corrupt_is_a_miss(&ctx, a.as_ref(), &b, &corrupt, true);

        // no upload leftovers
        let leftovers: Vec<_> = rt.block_on(async {
            use futures_util::StreamExt;
            raw.list(Some(&ObjPath::from("team/app/uploads")))
                .collect::<Vec<_>>()
                .await
        });
        assert!(leftovers.is_empty(), "{leftovers:?}");
        drop(az);
    }

    #[test]
    fn azblob_import_from_a_missing_container_is_a_miss_and_bad_keys_fail_clearly() {
        let ctx = TestContext::new();
        let az = start_azurite(&ctx);
        // import never creates the container; everything is a miss
        let from = azblob_spec(
            &format!(
                "type=azblob,account_url={},container=never-made,secret_access_key={DEV_ACCOUNT_KEY}",
                az.account_url
            ),
            false,
        );
        let c = AzureCache::open(&from, false, &no_env).unwrap();
        let s = ContentStore::open(ctx.tmp_dir("s")).unwrap();
        assert_eq!(c.get_index(&hex_key("k")).unwrap(), None);
        assert_eq!(
            c.fetch_blob(&Digest::of_bytes(b"x"), &s).unwrap(),
            Fetch::Missing
        );
        assert!(!c.has_blob(&Digest::of_bytes(b"x")).unwrap());

        // a wrong key: a clear error that names what to check, and never the key
        let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
        let to = CacheSpec::parse(
            &format!(
                "type=azblob,account_url={},container=wrong-key,secret_access_key={wrong}",
                az.account_url
            ),
            true,
        )
        .unwrap();
        let e = match open(&to, None) {
            Ok(c) => panic!("{}: opened with a wrong key", c.describe()),
            Err(e) => e,
        };
        let msg = e.to_string();
        eprintln!("wrong key: {msg}");
        assert!(!msg.contains(wrong), "{msg}");
        assert!(msg.contains("403"), "{msg}");
        assert!(msg.contains("creating the container wrong-key"), "{msg}");
        assert!(
            msg.contains("check that it belongs to account devstoreaccount1"),
            "{msg}"
        );
        drop(az);
    }

    /// An account SAS for the development account, signed as Microsoft documents it
    /// (service version 2019-12-12: account, permissions, services, resource types, start,
    /// expiry, IP, protocol, version, each followed by a newline).
    fn account_sas() -> String {
        let (sp, ss, srt, se, spr, sv) = (
            "rwdlacup",
            "b",
            "sco",
            "2099-01-01T00:00:00Z",
            "https,http",
            "2019-12-12",
        );
        let sts = format!("{DEV_ACCOUNT}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n{spr}\n{sv}\n");
        let sig = ocibuild_cache::azure::sign(&ocibuild_cache::Secret::new(DEV_ACCOUNT_KEY), &sts)
            .unwrap();
        let enc: String = sig
            .chars()
            .map(|c| match c {
                '+' => "%2B".to_string(),
                '/' => "%2F".to_string(),
                '=' => "%3D".to_string(),
                c => c.to_string(),
            })
            .collect();
        format!("sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={se}&spr={spr}&sig={enc}")
    }

    #[test]
    fn azblob_with_a_sas_token_on_the_flag_and_in_the_environment() {
        let ctx = TestContext::new();
        let az = start_azurite(&ctx);
        let sas = account_sas();
        let sig = sas.split("sig=").nth(1).unwrap().to_string();
        // Runner A: the SAS as a query on account_url; the container is created with it.
        let to = CacheSpec::parse(
            &format!(
                "type=azblob,\"account_url={}?{sas}\",container=sas-cache",
                az.account_url
            ),
            true,
        )
        .unwrap();
        assert!(!to.to_string().contains(&sig), "{to}");
        let a = open(&to, None).unwrap_or_else(|e| panic!("{e}\n--- azurite ---\n{}", az.log()));
        assert!(a.describe().contains("SAS token"), "{}", a.describe());
        assert!(!a.describe().contains(&sig), "{}", a.describe());
        // Runner B: AZURE_STORAGE_SAS_TOKEN.
        let env = {
            let sas = sas.clone();
            move |k: &str| (k == "AZURE_STORAGE_SAS_TOKEN").then(|| sas.clone())
        };
        let b = AzureCache::open(
            &azblob_spec(
                &format!(
                    "type=azblob,account_url={},container=sas-cache",
                    az.account_url
                ),
                false,
            ),
            false,
            &env,
        )
        .unwrap();
        assert!(
            b.describe().contains("AZURE_STORAGE_SAS_TOKEN"),
            "{}",
            b.describe()
        );
        roundtrip(&ctx, a.as_ref(), &b, &fixture(false));

        // a SAS whose signature is wrong: refused, and the error shows no signature
        let bad = sas.replace(&sig, "AAAA%2BBBBBCCCCDDDDEEEEFFFFGGGGHHHHIIIIJJJJKKK%3D");
        let c = AzureCache::open(
            &azblob_spec(
                &format!(
                    "type=azblob,\"account_url={}?{bad}\",container=sas-cache",
                    az.account_url
                ),
                false,
            ),
            false,
            &no_env,
        )
        .unwrap();
        let e = c.get_index(&hex_key("k")).unwrap_err().to_string();
        assert!(e.contains("403"), "{e}");
        assert!(!e.contains("AAAA") && !e.contains(&sig), "{e}");
        drop(az);
    }
}

mod registry {
    use super::*;
    use ocibuild_registry::client::{Registry, RegistryOptions};
    use ocibuild_testkit::registry::{RegistryOptions as PeerOptions, start_registry};

    #[test]
    fn registry_backend_scenario_against_docker_registry() {
        let ctx = TestContext::new();
        let peer = start_registry(&ctx, PeerOptions::default());
        let client = Registry::new(RegistryOptions::default());
        let spec = |export: bool| {
            CacheSpec::parse(
                &format!(
                    "type=registry,ref={}/cache/app:buildcache,mode=max",
                    peer.host
                ),
                export,
            )
            .unwrap()
        };
        // runner A with the build's client, runner B with its own
        let a = open(&spec(true), Some(&client)).unwrap();
        let b = open(&spec(false), None).unwrap();
        let fx = fixture(true);
        roundtrip(&ctx, a.as_ref(), b.as_ref(), &fx);

        // the layout: an artifact manifest under <tag>-<key[..32]>
        let (m, _, _) = client
            .get_manifest(
                &peer.host,
                "cache/app",
                &format!("buildcache-{}", &fx.key[..32]),
            )
            .unwrap();
        let m: serde_json::Value = serde_json::from_slice(&m).unwrap();
        assert_eq!(
            m["artifactType"],
            ocibuild_cache::registry::ARTIFACT_TYPE,
            "{m}"
        );
        assert_eq!(
            m["annotations"][ocibuild_cache::registry::KEY_ANNOTATION],
            fx.key.as_str()
        );
        // the index layer, then every blob the index names
        assert_eq!(
            m["layers"].as_array().unwrap().len(),
            1 + fx.blobs.len(),
            "{m}"
        );

        let w2 = open(&spec(true), None).unwrap();
        concurrent_writers(&ctx, a.as_ref(), w2.as_ref(), b.as_ref(), false);

        // Corruption inside the registry's storage (the API verifies uploads, so bit rot on its
        // disk is the way a registry serves a bad blob): same length, other bytes.
        let storage = peer.storage.clone();
        let corrupt = |d: &Digest, data: &[u8]| {
            let p = storage.join(format!(
                "docker/registry/v2/blobs/sha256/{}/{}/data",
                &d.hex()[..2],
                d.hex()
            ));
            assert!(p.is_file(), "no blob data at {}", p.display());
            std::fs::write(&p, flip(data)).unwrap();
        };
        corrupt_is_a_miss(&ctx, a.as_ref(), b.as_ref(), &corrupt, false);

        // A blob deleted through the registry API is a miss.
        let data = bytes(5000, 4242);
        let d = Digest::of_bytes(&data);
        let src = store_with(&ctx, "del-src", &[(d.clone(), data)]);
        a.push_blob(&d, &src).unwrap();
        assert!(b.has_blob(&d).unwrap());
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "DELETE",
            ])
            .arg(format!("{}/v2/cache/app/blobs/{d}", peer.url))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "202",
            "{}",
            peer.log()
        );
        let fresh = ContentStore::open(ctx.tmp_dir("del-dst")).unwrap();
        assert_eq!(b.fetch_blob(&d, &fresh).unwrap(), Fetch::Missing);
        assert!(!fresh.has(&d));
        drop(peer);
    }
}
