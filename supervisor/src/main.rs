mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::args::Cli::parse_from(args());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cli.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Its fallback report of a failed write panics on a terminal that hung up, which the
        // session must outlive to end in order.
        .log_internal_errors(false)
        .init();
    match cli::dispatch(cli.command) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("warden: {}", error_chain(&e));
            ExitCode::from(125)
        }
    }
}

/// The command line; as `wardend` (a link to `warden`), that of `warden daemon`.
fn args() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let called = args.first().map(std::path::Path::new);
    if called
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "wardend")
    {
        args.insert(1, "daemon".into());
    }
    args
}

/// The error and its causes, skipping causes whose text the message already shows (our error
/// types name their source in their own message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}
