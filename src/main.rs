//! The `overlap-slam` command: parses arguments and hands each command to its file in `cli/`,
//! which calls the library.

use clap::Parser;
use overlap_slam::cli::Cli;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let result = Cli::parse().run();
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
