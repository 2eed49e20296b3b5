//! `ocibuild`: the command line. Thin by design: parse flags, call the libraries, render their
//! results and errors. Exit codes: 0 ok, 1 error, 2 usage error, 3 a policy gate failed.

mod cli;
mod commands;
mod output;
mod sign_cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The sandbox re-executes this binary in hidden helper modes; serve them before anything else.
    ocibuild_sandbox::helper::dispatch();
    quiet_on_closed_stdout();
    let cli = cli::Cli::parse();
    output::init_logging(cli.global.verbose, cli.global.progress);
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(output::exit_code(&e))
        }
    }
}

/// `ocibuild … | head -1`: once the reader has gone, `println!` panics on the broken pipe (Rust
/// ignores SIGPIPE). Leave as a SIGPIPE-killed Unix tool would, silently with status 141, instead
/// of printing a panic. Only that panic: every other one keeps the default report. SIGPIPE itself
/// stays ignored, so the pipes and sockets to the sandbox and to child processes still see EPIPE
/// as an error rather than killing the build.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if payload.starts_with("failed printing to stdout")
            && payload.to_ascii_lowercase().contains("broken pipe")
        {
            std::process::exit(141);
        }
        default(info);
    }));
}
