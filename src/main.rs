//! The `ngfleet` binary: parse the command line, run it, map the outcome to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use ngfleet::app;
use ngfleet::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let exit = match app::run(cli, &mut out) {
        Ok(exit) => exit,
        Err(error) => {
            let _ = out.flush();
            let report = anyhow::Error::new(error);
            eprintln!("error: {report:#}");
            report
                .downcast_ref::<ngfleet::error::Error>()
                .map_or(ngfleet::error::Exit::Failed, |e| e.exit())
        }
    };
    ExitCode::from(exit.code())
}
