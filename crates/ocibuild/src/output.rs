//! Rendering: logs, progress lines and errors. Libraries never print; this module does.

use std::io::{IsTerminal, Write};

use ocibuild_oci::OciError;
use serde_json::json;

use crate::cli::Progress;

/// How a step is named in human lines: a Dockerfile step's label carries its `[stage N/M]`; a
/// builder's step is `step NAME`.
fn step_label(name: &str) -> String {
    if name.starts_with('[') {
        name.to_string()
    } else {
        format!("step {name}")
    }
}

/// The lines of a failed step's output that its error does not repeat (the error carries the
/// last 30).
pub fn failed_output_prefix(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[..lines.len().saturating_sub(30)].join("\n")
}

pub fn init_logging(verbose: u8, _progress: Progress) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("OCIBUILD_LOG").unwrap_or_else(|_| {
        // rustls' platform verifier logs every rejected certificate at ERROR; our error says it.
        tracing_subscriber::EnvFilter::new(format!("{level},rustls_platform_verifier=off"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // colours only for a terminal (and never with NO_COLOR): logs piped into a file or
        // a CI log stay plain text
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .without_time()
        .try_init();
}

/// The JSON of the events of [`KEPT_EVENTS`] kinds since [`keep_events`] (for `build --summary`,
/// which renders the build's checks, scan, SBOMs, outputs and naive-image size from them).
static EVENT_LOG: std::sync::Mutex<Option<Vec<serde_json::Value>>> = std::sync::Mutex::new(None);

/// The event kinds kept (not step output, which can be long); `platform` tells a
/// multi-platform build, whose rows name their platform.
const KEPT_EVENTS: &[&str] = &["check", "scan", "sbom", "output", "size", "platform"];

/// Keep the JSON of the [`KEPT_EVENTS`] from now on ([`kept_events`]).
pub fn keep_events() {
    if let Ok(mut log) = EVENT_LOG.lock() {
        log.get_or_insert_with(Vec::new);
    }
}

/// The events kept since [`keep_events`] (none if it was not called).
pub fn kept_events() -> Vec<serde_json::Value> {
    EVENT_LOG
        .lock()
        .ok()
        .and_then(|l| l.clone())
        .unwrap_or_default()
}

/// Progress events of a command, rendered to stderr as the user asked: `tty` draws a bar per
/// blob in flight and a spinner per running step, `plain` prints one line per event (with
/// timings), `json` one JSON object per line (`docs/progress-events.md`). The one renderer of
/// both build frontends ([`Reporter::engine`]) and of the other commands' events.
pub struct Reporter {
    mode: Progress,
    bars: Option<indicatif::MultiProgress>,
    active: std::sync::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
    /// Steps running now, each with what shows it is still running (see [`Reporter::step_started`]).
    running: std::sync::Mutex<std::collections::HashMap<String, Running>>,
    /// Print a step's whole output when it ends (see [`Reporter::show_step_output`]).
    step_output: bool,
}

/// A running step's heartbeat: a spinner with the elapsed time and the step's last output line
/// on a terminal, else a thread that says every [`heartbeat`] that the step is still running,
/// with its last line. Dropping it stops both.
struct Running {
    bar: Option<indicatif::ProgressBar>,
    /// The last line the step printed (read by the plain heartbeat).
    last: std::sync::Arc<std::sync::Mutex<String>>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The longest output line shown beside a spinner or a heartbeat (the rest is cut with `…`).
const SHOWN_LINE: usize = 100;

/// `line` without control characters, cut at [`SHOWN_LINE`] characters.
fn shown_line(line: &str) -> String {
    let clean: String = line
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() > SHOWN_LINE {
        let mut cut: String = clean.chars().take(SHOWN_LINE - 1).collect();
        cut.push('…');
        cut
    } else {
        clean
    }
}

/// How often a plain or JSON heartbeat says a step is still running: 15 s, or
/// `$OCIBUILD_HEARTBEAT` seconds (fractions allowed).
fn heartbeat() -> std::time::Duration {
    std::env::var("OCIBUILD_HEARTBEAT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.1)
        .map(std::time::Duration::from_secs_f64)
        .unwrap_or(std::time::Duration::from_secs(15))
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        // closing the channel wakes the thread at once
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Reporter {
    pub fn new(mode: Progress) -> Self {
        let mode = match mode {
            Progress::Auto if std::io::stderr().is_terminal() => Progress::Tty,
            Progress::Auto => Progress::Plain,
            m => m,
        };
        let bars = (mode == Progress::Tty && std::io::stderr().is_terminal())
            .then(indicatif::MultiProgress::new);
        Self {
            mode,
            bars,
            active: std::sync::Mutex::new(std::collections::HashMap::new()),
            running: std::sync::Mutex::new(std::collections::HashMap::new()),
            step_output: true,
        }
    }

    /// Whether a finished step's whole output is printed (stderr), and for a failed step the
    /// part its error leaves out: the Dockerfile frontend does, as `docker build --progress
    /// plain` does (not in JSON mode unless `-v`); zero-config builds only with `-v`.
    pub fn show_step_output(mut self, show: bool) -> Self {
        self.step_output = show;
        self
    }

    /// The mode events are rendered in (`Auto` resolved).
    pub fn mode(&self) -> Progress {
        self.mode
    }

    /// Render one engine event — the same rendering for both frontends.
    pub fn engine(&self, e: ocibuild_engine::Event) {
        use ocibuild_engine::Event;
        match e {
            Event::Phase(p) => self.event(&p, json!({"event": "phase", "phase": p})),
            Event::Note(n) => self.event(&n, json!({"event": "note", "message": n})),
            Event::Warning(w) => self.event(
                &format!("warning: {w}"),
                json!({"event": "warning", "message": w}),
            ),
            Event::StepStarted { name, argv } => {
                let label = step_label(&name);
                let human = if name.starts_with('[') || argv.is_empty() {
                    label.clone()
                } else {
                    format!("{label}: {}", argv.join(" "))
                };
                self.event(
                    &human,
                    json!({"event": "step", "name": name, "argv": argv}),
                );
                self.step_started(&label);
            }
            Event::StepOutput { name, line } => self.step_output(&name, &line),
            Event::StepCached { name, from } => self.event(
                &format!("CACHED {}", step_label(&name).trim_start_matches("step ")),
                json!({"event": "step-cached", "name": name, "from": from}),
            ),
            Event::StepFinished {
                name,
                status,
                seconds,
                output,
            } => {
                let label = step_label(&name);
                self.step_finished(&label);
                // A failed step is reported once, by the build's error (which carries the
                // step, its exit status and the end of its output): only the part of a long
                // output the error leaves out is printed here, and no "done" line.
                if status != 0 {
                    let shown = failed_output_prefix(&output);
                    if self.step_output && !shown.is_empty() {
                        eprintln!("{}", shown.trim_end());
                    }
                    if self.mode == Progress::Json {
                        self.event(
                            &name,
                            json!({"event": "step-failed", "name": name, "status": status, "seconds": seconds}),
                        );
                    }
                    return;
                }
                if self.step_output && !output.is_empty() {
                    self.print(output.trim_end());
                }
                self.event(
                    &format!("{label}: exit 0, done in {seconds:.2} s"),
                    json!({"event": "step-done", "name": name, "status": status, "seconds": seconds}),
                )
            }
            Event::Layer {
                name,
                digest,
                size,
                reused,
            } => self.event(
                &format!(
                    "layer {name}: {digest} {}{}",
                    human_size(size),
                    if reused { " (reused)" } else { "" }
                ),
                json!({"event": "layer", "name": name, "digest": digest, "size": size, "reused": reused}),
            ),
            Event::Platform(p) => self.event(
                &format!("platform {p}"),
                json!({"event": "platform", "platform": p}),
            ),
            Event::Reason(r) => self.event(
                &format!("why: {r}"),
                json!({"event": "explain", "reason": r}),
            ),
            Event::Plan(plan) => self.event(
                &format!(
                    "plan: toolchain {} {} → runtime {}:{}; {}; layers {}",
                    plan.toolchain.profile,
                    plan.toolchain.version,
                    plan.runtime.profile,
                    plan.runtime.variant,
                    plural(plan.steps.len(), "step"),
                    plan.layers
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                json!({"event": "plan", "plan": plan}),
            ),
            Event::BuildCached => self.event(
                "nothing changed: the image is the one built before (--no-cache runs the steps again)",
                json!({"event": "cache", "hit": true}),
            ),
            Event::Runtime {
                profile,
                variant,
                digest,
            } => self.event(
                &format!("runtime base {profile}:{variant} ({digest})"),
                json!({"event": "runtime", "profile": profile, "variant": variant, "digest": digest}),
            ),
            Event::Image { record, seconds } => self.image_done(&record, seconds),
            Event::Report(text) => eprint!("{text}"),
            Event::Checked {
                checks,
                passed,
                findings,
                platform,
                digest,
            } => self.event(
                &format!(
                    "check: {checks} checks, {}",
                    if passed { "passed" } else { "FAILED" }
                ),
                json!({"event": "check", "passed": passed, "findings": findings, "platform": platform, "digest": digest}),
            ),
            Event::SbomCatalogued {
                components,
                seconds,
                from_record,
            } => self.event(
                &format!(
                    "catalogued {components} components in {seconds:.2}s ({})",
                    if from_record {
                        "from the build record and the layers"
                    } else {
                        "from the layers"
                    }
                ),
                json!({"event": "sbom-catalogued", "components": components, "seconds": seconds, "build_record": from_record}),
            ),
            Event::Scanned {
                packages,
                passed,
                platform,
            } => self.event(
                &format!(
                    "scan: {packages} packages, {}",
                    if passed {
                        "clean"
                    } else {
                        "vulnerabilities at or above the threshold"
                    }
                ),
                json!({"event": "scan", "packages": packages, "passed": passed, "platform": platform}),
            ),
            Event::SbomWritten {
                path,
                artifact_type,
                platform,
            } => self.event(
                &format!("wrote the SBOM {}", path.display()),
                json!({"event": "sbom", "path": path.display().to_string(), "artifactType": artifact_type, "platform": platform}),
            ),
            Event::ProvenanceWritten { path } => self.event(
                &format!("wrote the provenance {}", path.display()),
                json!({"event": "provenance", "path": path.display().to_string()}),
            ),
            Event::Output {
                location,
                digest,
                platforms,
            } => self.event(
                &if platforms.is_empty() {
                    format!("wrote {location}")
                } else {
                    format!("wrote {location} (an index of {})", platforms.join(","))
                },
                json!({"event": "output", "location": location, "digest": digest}),
            ),
            Event::SbomAttached {
                location,
                file,
                artifact_type,
                digest,
                tag,
            } => match (tag, digest) {
                (Some(tag), _) => self.event(
                    &format!("attached the SBOM to {location} as {tag} (cosign's tag form)"),
                    json!({"event": "sbom-attached", "location": location, "tag": tag}),
                ),
                (None, digest) => self.event(
                    &format!(
                        "attached {file} to {location} ({})",
                        digest.as_deref().unwrap_or_default()
                    ),
                    json!({"event": "sbom-attached", "location": location, "artifactType": artifact_type, "digest": digest}),
                ),
            },
            Event::Signed {
                location,
                digest,
                signature,
                tag,
                envelope,
            } => match envelope {
                Some(envelope) => self.event(
                    &format!("signed {location} ({digest}): notation {envelope} referrer {signature}"),
                    json!({"event": "signed", "location": location, "digest": digest, "signature": signature, "tag": null, "format": "notation", "envelope": envelope}),
                ),
                None => self.event(
                    &format!(
                        "signed {location} ({digest}): {}",
                        tag.clone()
                            .unwrap_or_else(|| format!("referrer {signature}"))
                    ),
                    json!({"event": "signed", "location": location, "digest": digest, "signature": signature, "tag": tag, "format": "cosign"}),
                ),
            },
            Event::Attested {
                location,
                what,
                predicate_type,
                digest,
                attestation,
                tag,
            } => self.event(
                &format!(
                    "attested {location}: {what} ({predicate_type}) in {}",
                    tag.clone()
                        .unwrap_or_else(|| format!("referrer {attestation}"))
                ),
                json!({"event": "attested", "location": location, "digest": digest, "predicateType": predicate_type, "attestation": attestation, "tag": tag}),
            ),
            Event::NoOutput { what } => self.event(
                &format!(
                    "no --output or --push: the {what} is only in the content store; add --output oci:DIR:TAG or -t NAME --push"
                ),
                json!({"event": "warning", "message": "no output"}),
            ),
            Event::Blob {
                digest,
                size,
                outcome,
            } => self.event(
                &format!(
                    "{} {digest} ({})",
                    match outcome.as_str() {
                        "existed" => "exists",
                        "uploaded" => "pushed",
                        o => o,
                    },
                    human_size(size)
                ),
                json!({"event": "blob", "digest": digest, "size": size, "outcome": outcome}),
            ),
            Event::Bytes {
                digest,
                done,
                total,
            } => self.bytes(&digest, done, total),
            Event::NaiveSize { compressed, naive } => {
                let pct = 100.0 * (1.0 - compressed as f64 / naive.max(1) as f64);
                self.event(
                    &format!(
                        "size: {} compressed vs {} for the naive single-stage image: {pct:.1}% smaller",
                        human_size(compressed),
                        human_size(naive)
                    ),
                    json!({"event": "size", "compressed": compressed, "naive": naive, "reduction_percent": pct}),
                )
            }
        }
    }

    /// The image a build made: its digest, size, layers and steps (the `image` event).
    pub fn image_done(&self, record: &ocibuild_record::BuildRecord, seconds: f64) {
        let (ran, cached) = record.step_counts();
        let digest = record.digest().map(|d| d.to_string()).unwrap_or_default();
        let size: u64 = record
            .images
            .iter()
            .flat_map(|i| i.layers.iter())
            .map(|l| l.descriptor.size)
            .sum();
        let layers: usize = record.images.iter().map(|i| i.layers.len()).sum();
        self.event(
            &format!(
                "image {digest}: {} compressed, {}; {} ran, {cached} cached, in {seconds:.2} s",
                human_size(size),
                plural(layers, "layer"),
                plural(ran, "step"),
            ),
            json!({"event": "image", "digest": digest, "size": size, "layers": layers, "ran": ran, "cached": cached, "seconds": seconds}),
        );
    }

    /// Text printed as it is (a step's output), above the bars on a terminal.
    fn print(&self, text: &str) {
        match &self.bars {
            Some(m) => {
                let _ = m.println(text);
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    /// A line a running step printed: beside its spinner on a terminal, with its next heartbeat
    /// when plain, a `step-output` event with `--progress json`.
    fn step_output(&self, name: &str, line: &str) {
        if self.mode == Progress::Json {
            let _ = writeln!(
                std::io::stderr().lock(),
                "{}",
                json!({"event": "step-output", "name": name, "line": line})
            );
            return;
        }
        let label = step_label(name);
        let Ok(r) = self.running.lock() else { return };
        let Some(run) = r.get(&label) else { return };
        let shown = shown_line(line);
        if shown.is_empty() {
            return;
        }
        if let Some(b) = &run.bar {
            // drawn at the spinner's next tick: a chatty step costs no redraws
            b.set_message(shown);
        } else if let Ok(mut last) = run.last.lock() {
            *last = shown;
        }
    }

    /// A step started: until [`Reporter::step_finished`], show that it is running — a spinner
    /// with its elapsed time on a terminal; plain, a line every 15 s (`NAME: still running
    /// (45 s)`); JSON, a `step-running` event as often — so a long compile or install is never
    /// a silent wait.
    pub fn step_started(&self, name: &str) {
        let running = if let Some(m) = &self.bars {
            let b = m.add(indicatif::ProgressBar::new_spinner());
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} {prefix} {elapsed} {wide_msg:.dim}",
            ) {
                b.set_style(style);
            }
            b.set_prefix(name.to_string());
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            Running {
                bar: Some(b),
                last: Default::default(),
                stop: None,
                thread: None,
            }
        } else {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let (name, json) = (name.to_string(), self.mode == Progress::Json);
            let t0 = std::time::Instant::now();
            let every = heartbeat();
            let last: std::sync::Arc<std::sync::Mutex<String>> = Default::default();
            let seen = last.clone();
            let thread = std::thread::spawn(move || {
                // wakes every heartbeat; a closed channel (the step finished) ends it
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    let secs = t0.elapsed().as_secs();
                    let line = seen.lock().map(|l| l.clone()).unwrap_or_default();
                    let mut err = std::io::stderr().lock();
                    let _ = if json {
                        writeln!(
                            err,
                            "{}",
                            serde_json::json!({"event": "step-running", "name": name, "seconds": secs})
                        )
                    } else if line.is_empty() {
                        writeln!(err, "=> {name}: still running ({secs} s)")
                    } else {
                        writeln!(err, "=> {name}: still running ({secs} s): {line}")
                    };
                }
            });
            Running {
                bar: None,
                last,
                stop: Some(tx),
                thread: Some(thread),
            }
        };
        if let Ok(mut r) = self.running.lock() {
            r.insert(name.to_string(), running);
        }
    }

    /// A step finished (or failed): its heartbeat stops.
    pub fn step_finished(&self, name: &str) {
        let done = self.running.lock().ok().and_then(|mut r| r.remove(name));
        drop(done);
    }

    /// One event: a human line, and its JSON form for `--progress json`.
    pub fn event(&self, human: &str, json: serde_json::Value) {
        if KEPT_EVENTS.contains(&json["event"].as_str().unwrap_or_default())
            && let Ok(mut log) = EVENT_LOG.lock()
            && let Some(events) = log.as_mut()
        {
            events.push(json.clone());
        }
        if let Some(m) = &self.bars {
            let _ = m.println(format!("\x1b[2m=>\x1b[0m {human}"));
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = match self.mode {
            Progress::Json => writeln!(err, "{json}"),
            Progress::Tty => writeln!(err, "\x1b[2m=>\x1b[0m {human}"),
            _ => writeln!(err, "=> {human}"),
        };
    }
}

impl Reporter {
    /// Bytes moved for one blob (progress bars): JSON lines only; humans get the per-blob lines.
    pub fn bytes(&self, digest: &ocibuild_oci::Digest, done: u64, total: u64) {
        if let (Some(m), Ok(mut active)) = (&self.bars, self.active.lock()) {
            let key = digest.to_string();
            let bar = active.entry(key.clone()).or_insert_with(|| {
                let b = m.add(indicatif::ProgressBar::new(total));
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                ) {
                    b.set_style(style.progress_chars("=> "));
                }
                b.set_prefix(digest.short().to_string());
                b
            });
            bar.set_position(done);
            if done >= total {
                bar.finish_and_clear();
                active.remove(&key);
            }
            return;
        }
        if self.mode == Progress::Json {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "{}",
                serde_json::json!({"event": "bytes", "digest": digest, "done": done, "total": total})
            );
        }
    }
}

/// A usage error: a flag or argument the command cannot take (exit code 2, as clap's own).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error with this message.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// The exit code for an error: 2 for a usage error (a [`UsageError`], or an image location
/// given on the command line that does not parse), else 1.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.chain()
        .any(|c| c.is::<crate::commands::policy::GateFailed>())
    {
        return 3;
    }
    let usage = e.chain().any(|c| {
        c.is::<UsageError>()
            || matches!(
                c.downcast_ref::<OciError>(),
                Some(OciError::InvalidReference { .. })
            )
    });
    if usage { 2 } else { 1 }
}

/// `error: …` with the whole cause chain, and a `help:` line where we know what to do.
pub fn print_error(e: &anyhow::Error) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {e}");
    for cause in e.chain().skip(1) {
        let _ = writeln!(err, "  caused by: {cause}");
    }
    if let Some(h) = hint(e) {
        let _ = writeln!(err, "help: {h}");
    }
}

fn hint(e: &anyhow::Error) -> Option<String> {
    let oci = e.chain().find_map(|c| c.downcast_ref::<OciError>())?;
    if oci.is_disk_full() {
        return Some("the disk is full: free space, or point --root / --output at a larger filesystem; nothing was left half-written".into());
    }
    Some(
        match oci {
            OciError::TagNotFound { .. } | OciError::AmbiguousImage { .. } => "name the image with :TAG after the path (see `ocibuild inspect`)",
            OciError::DigestMismatch { .. } | OciError::SizeMismatch { .. } | OciError::BlobMissing { .. } | OciError::Defect { .. } => {
                "the image is damaged or incomplete: copy it again from its origin"
            }
            OciError::InvalidReference { .. } => "use a transport prefix: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or docker://REF",
            OciError::UnsupportedFile { .. } => "remove the socket/device/fifo from the directory, or copy the directory without it",
            _ => return None,
        }
        .to_string(),
    )
}

pub fn human_size(n: u64) -> String {
    const U: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// `1 package`, `2 packages`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// How a Debian base's downloads and unpacking are shown (`base build`, and the toolchain and
/// runtime roots of zero-config builds): a progress bar with bytes and rate on a terminal; when
/// plain, a line when the download starts, at each quarter of its bytes and when it ends (with
/// the time and rate), and the unpacking's start and end; with `json`, every event.
pub fn base_progress(mode: Progress, what: &str) -> ocibuild_debian::base::Progress {
    use ocibuild_debian::base::BaseProgress as P;
    let mode = match mode {
        Progress::Auto if std::io::stderr().is_terminal() => Progress::Tty,
        Progress::Auto => Progress::Plain,
        m => m,
    };
    let tty = mode == Progress::Tty && std::io::stderr().is_terminal();
    let what = what.to_string();
    // (the bar, total bytes, packages, the last quarter of the bytes a plain line was printed for)
    let state: std::sync::Mutex<(Option<indicatif::ProgressBar>, u64, usize, u64)> =
        std::sync::Mutex::new((None, 0, 0, 0));
    ocibuild_debian::base::Progress::new(move |e| {
        let Ok(mut st) = state.lock() else { return };
        if mode == Progress::Json {
            let j = match e {
                P::Downloading { packages, bytes } => {
                    serde_json::json!({"event": "download-started", "what": what, "packages": packages, "bytes": bytes})
                }
                P::Downloaded {
                    packages_done,
                    packages,
                    bytes_done,
                    bytes,
                } => {
                    serde_json::json!({"event": "download", "what": what, "packages_done": packages_done, "packages": packages, "done": bytes_done, "total": bytes})
                }
                P::Unpacking { packages } => {
                    serde_json::json!({"event": "unpack-started", "what": what, "packages": packages})
                }
                P::Finished { phase, seconds } => {
                    serde_json::json!({"event": "phase-finished", "what": what, "phase": phase, "seconds": seconds})
                }
            };
            let _ = writeln!(std::io::stderr().lock(), "{j}");
            return;
        }
        let line = |s: String| {
            let _ = writeln!(std::io::stderr().lock(), "=> {s}");
        };
        match e {
            P::Downloading { packages, bytes } => {
                st.1 = *bytes;
                st.2 = *packages;
                if tty {
                    let b = indicatif::ProgressBar::new(*bytes);
                    if let Ok(style) = indicatif::ProgressStyle::with_template(
                        "=> {prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                    ) {
                        b.set_style(style.progress_chars("=> "));
                    }
                    b.set_prefix(format!("{what}: downloading"));
                    st.0 = Some(b);
                } else {
                    line(format!(
                        "{what}: downloading {} ({})",
                        plural(*packages, "package"),
                        human_size(*bytes)
                    ));
                }
            }
            P::Downloaded {
                packages_done,
                packages,
                bytes_done,
                bytes,
            } => {
                if let Some(b) = &st.0 {
                    b.set_position(*bytes_done);
                    b.set_message(format!("{packages_done}/{packages} packages"));
                } else if *bytes > 0 {
                    // a line at each quarter of the bytes crossed (threads report in any order)
                    let q = bytes_done.saturating_mul(4) / bytes;
                    if q > st.3 && *bytes_done < *bytes {
                        st.3 = q;
                        line(format!(
                            "{what}: downloaded {packages_done}/{packages} packages, {} of {}",
                            human_size(*bytes_done),
                            human_size(*bytes)
                        ));
                    }
                }
            }
            P::Finished {
                phase: "download",
                seconds,
            } => {
                if let Some(b) = st.0.take() {
                    b.finish_and_clear();
                }
                let rate = if *seconds > 0.0 {
                    format!(", {}/s", human_size((st.1 as f64 / seconds) as u64))
                } else {
                    String::new()
                };
                line(format!(
                    "{what}: downloaded {} ({}) in {seconds:.1} s{rate}",
                    plural(st.2, "package"),
                    human_size(st.1)
                ));
            }
            P::Unpacking { packages } => {
                st.2 = *packages;
                line(format!(
                    "{what}: unpacking {}",
                    plural(*packages, "package")
                ));
            }
            P::Finished { phase, seconds } => {
                line(format!("{what}: {phase} done in {seconds:.1} s"));
            }
        }
    })
}
