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
