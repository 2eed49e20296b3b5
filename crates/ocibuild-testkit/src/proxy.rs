//! A loopback fault-injecting reverse proxy in front of a (plain HTTP) registry.
//!
//! The client talks to [`FaultProxy::host`] as if it were the registry. Every request is counted
//! (one request per connection: every answer carries `Connection: close`), and the [`FaultPlan`]
//! decides, deterministically from those counts, which requests fail and how:
//!
//! - `reset_every: Some(n)`: the n-th, 2n-th, … request is read and its connection closed without
//!   an answer (the client sees a reset or an empty reply);
//! - `status_every: Some((n, status, retry_after))`: the n-th, 2n-th, … request is answered with
//!   `status` (500, 429, …) and an OCI error envelope, plus `Retry-After` when given, without being
//!   forwarded (its body is read and dropped);
//! - `truncate_blob_every: Some(n)`: the n-th, 2n-th, … `GET …/blobs/sha256:…` (or an object
//!   store's `GET …/blobs/sha256/…`, as the Azure Blob cache names its blobs; counted among blob
//!   GETs only) is forwarded, but only the first half of the body (as the `Content-Length` says)
//!   reaches the client before the connection is closed.
//!
//! When one request matches several rules, reset wins over status, and status over truncation.
//! Everything else is forwarded as is: request bodies (`Content-Length` or chunked) and response
//! bodies are streamed, never held whole in memory. The only rewrite is of `Location` headers that
//! point at the target (they are made to point at the proxy, so uploads keep going through it);
//! the `Host` header is passed on unchanged, so the registry already builds its upload URLs with
//! the proxy's address. `Expect: 100-continue` is answered by the proxy itself.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Which requests fail, counted from the proxy's start (or the last [`FaultProxy::set_plan`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Close the client connection without answering on every Nth request.
    pub reset_every: Option<u32>,
    /// `(n, status, retry_after_seconds)`: answer `status` on every Nth request, not forwarded.
    pub status_every: Option<(u32, u16, Option<u32>)>,
    /// Forward every Nth blob GET but cut its body in half and close.
    pub truncate_blob_every: Option<u32>,
}

/// What the proxy has seen and done since its start (or the last [`FaultProxy::set_plan`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Requests received (each complete request head counts, faulted or not).
    pub requests: u32,
    /// `GET …/blobs/sha256:…` requests received.
    pub blob_gets: u32,
    /// Requests forwarded to the target (truncated ones included).
    pub forwarded: u32,
    /// Connections closed without an answer.
    pub resets: u32,
    /// Injected status answers.
    pub statuses: u32,
    /// Blob bodies cut in half.
    pub truncations: u32,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU32,
    blob_gets: AtomicU32,
    forwarded: AtomicU32,
    resets: AtomicU32,
    statuses: AtomicU32,
    truncations: AtomicU32,
}

#[derive(Debug)]
struct ProxyState {
    target: String,
    host: String,
    plan: Mutex<FaultPlan>,
    counters: Counters,
    log: Mutex<Vec<String>>,
}

impl ProxyState {
    fn plan(&self) -> FaultPlan {
        self.plan.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn note(&self, line: String) {
        if let Ok(mut log) = self.log.lock() {
            log.push(line);
        }
    }
}

/// A running fault proxy; stops accepting on drop (connections in flight finish on their own).
#[derive(Debug)]
pub struct FaultProxy {
    /// `127.0.0.1:PORT` of the proxy.
    pub host: String,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<ProxyState>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Start a proxy on a free loopback port in front of `target_host` (`127.0.0.1:PORT` of a plain
/// HTTP registry).
pub fn start_fault_proxy(target_host: &str, plan: FaultPlan) -> FaultProxy {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("fault proxy: cannot bind 127.0.0.1:0: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("fault proxy: no local address: {e}"))
        .port();
    let host = format!("127.0.0.1:{port}");
    let state = Arc::new(ProxyState {
        target: target_host.to_string(),
        host: host.clone(),
        plan: Mutex::new(plan),
        counters: Counters::default(),
        log: Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let state = Arc::clone(&state);
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || {
                accept_loop(&listener, &stop, |conn| {
                    let state = Arc::clone(&state);
                    std::thread::spawn(move || {
                        if let Err(e) = handle(conn, &state) {
                            state.note(format!("connection error: {e}"));
                        }
                    });
                });
            })
            .unwrap_or_else(|e| panic!("fault proxy: cannot spawn its thread: {e}"))
    };
    FaultProxy {
        url: format!("http://{host}"),
        host,
        state,
        stop,
        thread: Some(thread),
    }
}

impl FaultProxy {
    /// The counters so far.
    pub fn faults(&self) -> FaultCounts {
        let c = &self.state.counters;
        FaultCounts {
            requests: c.requests.load(Ordering::SeqCst),
            blob_gets: c.blob_gets.load(Ordering::SeqCst),
            forwarded: c.forwarded.load(Ordering::SeqCst),
            resets: c.resets.load(Ordering::SeqCst),
            statuses: c.statuses.load(Ordering::SeqCst),
            truncations: c.truncations.load(Ordering::SeqCst),
        }
    }

    /// Replace the plan and reset every counter (request numbering starts again at 1).
    pub fn set_plan(&self, plan: FaultPlan) {
        if let Ok(mut p) = self.state.plan.lock() {
            *p = plan;
        }
        let c = &self.state.counters;
        for a in [
            &c.requests,
            &c.blob_gets,
            &c.forwarded,
            &c.resets,
            &c.statuses,
            &c.truncations,
        ] {
            a.store(0, Ordering::SeqCst);
        }
    }

    /// One line per request (`#N METHOD TARGET -> what happened`), for failure messages.
    pub fn log(&self) -> Vec<String> {
        self.state.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The registry the proxy forwards to.
    pub fn target(&self) -> &str {
        &self.state.target
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        stop_accept_loop(&self.host, &self.stop, self.thread.take());
    }
}

fn every(n: Option<u32>, count: u32) -> bool {
    n.is_some_and(|n| n > 0 && count > 0 && count.is_multiple_of(n))
}

fn handle(client: TcpStream, state: &ProxyState) -> io::Result<()> {
    let timeout = Some(Duration::from_secs(300));
    client.set_read_timeout(timeout)?;
    client.set_write_timeout(timeout)?;
    let mut cr = BufReader::with_capacity(64 * 1024, client.try_clone()?);
    let mut cw = client;
    // A TLS ClientHello (clients that try HTTPS first, as containers/image does with
    // --tls-verify=false): close at once so they fall back to HTTP; not counted as a request.
    if cr.fill_buf()?.first() == Some(&0x16) {
        state.note("TLS handshake refused (plain HTTP only)".to_string());
        let _ = cw.shutdown(Shutdown::Both);
        return Ok(());
    }
    let Some(mut head) = read_head(&mut cr)? else {
        return Ok(());
    };
    let (method, target) = head.method_target();
    let path = target.split('?').next().unwrap_or("");
    let c = &state.counters;
    let n = c.requests.fetch_add(1, Ordering::SeqCst) + 1;
    // a registry's `/v2/…/blobs/sha256:<hex>`, or a cache's `…/blobs/sha256/<hex>` object
    let is_blob_get = method == "GET" && path.contains("/blobs/sha256");
    let blob_n = if is_blob_get {
        c.blob_gets.fetch_add(1, Ordering::SeqCst) + 1
    } else {
        0
    };
    let plan = state.plan();
    let what = format!("#{n} {method} {target}");
    let expects_continue = head
        .get("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));

    if every(plan.reset_every, n) {
        c.resets.fetch_add(1, Ordering::SeqCst);
        state.note(format!("{what} -> reset"));
        // Dropping unread input makes the kernel answer with RST, which is what we want.
        let _ = cw.shutdown(Shutdown::Both);
        return Ok(());
    }
    if let Some((every_n, status, retry_after)) = plan.status_every
        && every(Some(every_n), n)
    {
        c.statuses.fetch_add(1, Ordering::SeqCst);
        state.note(format!("{what} -> injected {status}"));
        if !expects_continue {
            forward_body(&head, &mut cr, &mut io::sink())?;
        }
        let code = if status == 429 {
            "TOOMANYREQUESTS"
        } else {
            "UNKNOWN"
        };
        let body = format!(
            r#"{{"errors":[{{"code":"{code}","message":"fault injected by the test proxy","detail":null}}]}}"#
        );
        let mut extra = String::new();
        if let Some(s) = retry_after {
            extra.push_str(&format!("Retry-After: {s}\r\n"));
        }
        let body = if method == "HEAD" { "" } else { body.as_str() };
        write_simple_response(&mut cw, status, &extra, "application/json", body.as_bytes())?;
        let _ = cw.shutdown(Shutdown::Both);
        return Ok(());
    }
    let truncate = is_blob_get && every(plan.truncate_blob_every, blob_n);

    if expects_continue {
        head.remove("expect");
        cw.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        cw.flush()?;
    }
    let upstream = connect(&state.target)?;
    upstream.set_read_timeout(timeout)?;
    upstream.set_write_timeout(timeout)?;
    let mut uw = BufWriter::with_capacity(64 * 1024, upstream.try_clone()?);
    let mut forwarded = head.clone();
    forwarded.remove("connection");
    forwarded.remove("proxy-connection");
    forwarded.remove("keep-alive");
    forwarded
        .headers
        .push(("Connection".into(), "close".into()));
    forwarded.write_to(&mut uw)?;
    forward_body(&head, &mut cr, &mut uw)?;
    uw.flush()?;
    c.forwarded.fetch_add(1, Ordering::SeqCst);

    let mut ur = BufReader::with_capacity(64 * 1024, upstream);
    let mut resp = loop {
        let Some(resp) = read_head(&mut ur)? else {
            state.note(format!("{what} -> the target closed without answering"));
            return Ok(());
        };
        // interim answers (we removed Expect, so only unsolicited ones) are dropped
        if !resp.start.starts_with("HTTP/1.1 1") && !resp.start.starts_with("HTTP/1.0 1") {
            break resp;
        }
    };
    let status = resp.start.split(' ').nth(1).unwrap_or("").to_string();
    for prefix in [
        format!("http://{}", state.target),
        format!("//{}", state.target),
    ] {
        if let Some(loc) = resp.get("location").map(str::to_string)
            && let Some(rest) = loc.strip_prefix(&prefix)
        {
            let new = format!(
                "{}{}{rest}",
                &prefix[..prefix.len() - state.target.len()],
                state.host
            );
            resp.set("location", &new);
        }
    }
    resp.remove("connection");
    resp.remove("keep-alive");
    resp.headers.push(("Connection".into(), "close".into()));
    let mut cbw = BufWriter::with_capacity(64 * 1024, cw.try_clone()?);
    resp.write_to(&mut cbw)?;
    cbw.flush()?;
    drop(cbw);

    if truncate && (status == "200" || status == "206") {
        let len = resp
            .get("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let keep = len.map_or(1024, |l| l / 2);
        let sent = io::copy(&mut (&mut ur).take(keep), &mut cw)?;
        c.truncations.fetch_add(1, Ordering::SeqCst);
        state.note(format!(
            "{what} -> {status}, truncated after {sent} of {} bytes",
            len.map_or("?".to_string(), |l| l.to_string())
        ));
    } else {
        // The target closes after its answer (we asked it to), so the body ends at EOF.
        let sent = io::copy(&mut ur, &mut cw)?;
        state.note(format!("{what} -> {status} ({sent} body bytes)"));
    }
    cw.flush()?;
    let _ = cw.shutdown(Shutdown::Both);
    Ok(())
}

fn connect(target: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{target}: no address"));
    for addr in target.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(10)) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Copy the request body that `head` announces from `r` to `w`: chunked (copied with its framing)
/// or `Content-Length` bytes; none otherwise.
fn forward_body<R: BufRead, W: Write>(head: &Head, r: &mut R, w: &mut W) -> io::Result<()> {
    let chunked = head
        .get("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        copy_chunked(r, w)
    } else if let Some(len) = head.content_length() {
        let copied = io::copy(&mut r.take(len), w)?;
        if copied < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("request body ended after {copied} of {len} bytes"),
            ));
        }
        Ok(())
    } else {
        Ok(())
    }
}

fn copy_chunked<R: BufRead, W: Write>(r: &mut R, w: &mut W) -> io::Result<()> {
    loop {
        let line = read_line(r)?;
        w.write_all(&line)?;
        let text = String::from_utf8_lossy(&line);
        let size_text = text
            .trim()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let size = u64::from_str_radix(&size_text, 16).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad chunk size {text:?}"),
            )
        })?;
        if size == 0 {
            // trailers, then the empty line
            loop {
                let t = read_line(r)?;
                w.write_all(&t)?;
                if t == b"\r\n" || t == b"\n" {
                    return Ok(());
                }
            }
        }
        let want = size + 2; // data and CRLF
        let copied = io::copy(&mut r.take(want), w)?;
        if copied < want {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunked request body ended early",
            ));
        }
    }
}

fn read_line<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r.take(64 * 1024).read_until(b'\n', &mut line)?;
    if n == 0 || line.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed inside an HTTP line",
        ));
    }
    Ok(line)
}

// ---------------------------------------------------------------------------------------------
// Minimal HTTP/1.1 pieces shared with the token server
// ---------------------------------------------------------------------------------------------

/// A request or response head: the start line and the headers in order.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) start: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl Head {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn remove(&mut self, name: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    fn set(&mut self, name: &str, value: &str) {
        for (k, v) in &mut self.headers {
            if k.eq_ignore_ascii_case(name) {
                *v = value.to_string();
            }
        }
    }

    pub(crate) fn method_target(&self) -> (String, String) {
        let mut it = self.start.split(' ');
        (
            it.next().unwrap_or("").to_string(),
            it.next().unwrap_or("").to_string(),
        )
    }

    pub(crate) fn content_length(&self) -> Option<u64> {
        self.get("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
    }

    fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        write!(w, "{}\r\n", self.start)?;
        for (k, v) in &self.headers {
            write!(w, "{k}: {v}\r\n")?;
        }
        w.write_all(b"\r\n")
    }
}

/// Read a head; `None` when the peer closed before sending anything.
pub(crate) fn read_head<R: BufRead>(r: &mut R) -> io::Result<Option<Head>> {
    let mut start: Option<String> = None;
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut total = 0usize;
    loop {
        let mut line = Vec::new();
        let n = r.take(64 * 1024).read_until(b'\n', &mut line)?;
        if n == 0 {
            if start.is_none() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside an HTTP head",
            ));
        }
        total += n;
        if total > 256 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "HTTP head too large",
            ));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        match &start {
            None if text.is_empty() => continue, // stray CRLF between messages
            None => start = Some(text.to_string()),
            Some(_) if text.is_empty() => break,
            Some(_) => {
                if let Some((k, v)) = text.split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
        }
    }
    Ok(start.map(|start| Head { start, headers }))
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// A complete answer with `Content-Length` and `Connection: close`; `extra_headers` are
/// CRLF-terminated lines.
pub(crate) fn write_simple_response<W: Write>(
    w: &mut W,
    status: u16,
    extra_headers: &str,
    content_type: &str,
    body: &[u8],
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra_headers}\r\n",
        reason(status),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()
}

/// Accept connections until `stop` is set, handing each to `on_conn`.
pub(crate) fn accept_loop(
    listener: &TcpListener,
    stop: &AtomicBool,
    mut on_conn: impl FnMut(TcpStream),
) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match conn {
            Ok(c) => on_conn(c),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Set `stop`, wake the accept loop with a connection of our own, and join its thread.
pub(crate) fn stop_accept_loop(host: &str, stop: &AtomicBool, thread: Option<JoinHandle<()>>) {
    stop.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect(host);
    if let Some(t) = thread {
        let _ = t.join();
    }
}
