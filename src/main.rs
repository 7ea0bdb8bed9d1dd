//! The `aegis-audit` binary: parses arguments and hands them to the library. Errors (a bad flag too)
//! print with their whole context chain on one line (names from the model escaped) and map to the
//! documented exit codes. As a last line of defence an unexpected panic becomes exit code 2 with one message and no
//! report, never a Rust backtrace; the library refuses every known bad input before that point.

use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::Mutex;

use aegis_audit::escape::escape;
use aegis_audit::fsio;
use clap::error::ErrorKind;
use clap::Parser;

mod cli;

/// Where the panic hook leaves the location of a panic for the one-line message.
static PANIC_LOCATION: Mutex<Option<String>> = Mutex::new(None);

fn main() -> ExitCode {
    fsio::cleanup::install_signal_handling();
    guarded(|| {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        // `aegis-audit --help` (or no argument): the audit's usage and its most used options; with no
        // argument at all it is a usage error (exit 2), on stderr.
        if cli::wants_main_help(&args) {
            if args.len() == 1 {
                eprint!("{}", cli::main_help());
                return ExitCode::from(cli::EXIT_ERROR);
            }
            print!("{}", cli::main_help());
            return ExitCode::SUCCESS;
        }
        let cli = match cli::Cli::try_parse_from(cli::with_default_command(args)) {
            Ok(cli) => cli,
            // --help, --version, and the help printed when no argument is given.
            Err(err) if !err.use_stderr() || err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                err.exit()
            }
            Err(err) => {
                eprintln!("aegis-audit: {} (see --help)", escape(&one_line(&err.render().to_string())));
                return ExitCode::from(cli::EXIT_ERROR);
            }
        };
        match cli::run(cli) {
            Ok(code) => code,
            Err(err) => {
                eprintln!("aegis-audit: error: {}", escape(&chain_line(&err)));
                ExitCode::from(cli::EXIT_ERROR)
            }
        }
    })
}

/// Runs `body`; a panic inside it prints one line and gives exit code 2 (the default panic output
/// and backtrace are replaced by a hook that only records where the panic happened).
fn guarded(body: impl FnOnce() -> ExitCode) -> ExitCode {
    panic::set_hook(Box::new(|info| {
        if let (Ok(mut slot), Some(loc)) = (PANIC_LOCATION.lock(), info.location()) {
            *slot = Some(format!("{}:{}", loc.file(), loc.line()));
        }
    }));
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(code) => code,
        Err(payload) => {
            let location = PANIC_LOCATION.lock().ok().and_then(|mut l| l.take());
            eprintln!("{}", panic_line(payload.as_ref(), location.as_deref()));
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}

/// An error and its causes on one line, joined by ": ", without Rust's "(os error N)" suffixes and
/// without a cause whose text the line already holds (an I/O error a message already quotes).
fn chain_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = match text.find(" (os error") {
            Some(i) if text.ends_with(')') => text[..i].to_string(),
            _ => text,
        };
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// A clap error as one line: its text up to the first blank line (the usage and the tips follow it),
/// joined.
fn one_line(text: &str) -> String {
    text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect::<Vec<_>>().join(" ")
}

/// The one line printed for a caught panic.
fn panic_line(payload: &(dyn std::any::Any + Send), location: Option<&str>) -> String {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    let at = location.map(|l| format!(" at {l}")).unwrap_or_default();
    format!(
        "aegis-audit: error: internal error{at}: {}; nothing was concluded and no report was written \
         (please report this as a bug)",
        escape(&msg)
    )
}

#[cfg(test)]
mod tests {
    use super::{chain_line, guarded, panic_line};

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(20);
        let err = anyhow::Error::new(io).context("x: Not a directory").context("reading the data");
        assert_eq!(chain_line(&err), "reading the data: x: Not a directory");
    }

    #[test]
    fn a_panic_becomes_exit_code_2_with_one_line() {
        let code = guarded(|| panic!("boom\nsecond line"));
        assert_eq!(code, std::process::ExitCode::from(2));
        let line = panic_line(&"boom\nsecond line", Some("src/x.rs:3"));
        assert_eq!(line.lines().count(), 1);
        assert!(line.starts_with("aegis-audit: error: internal error at src/x.rs:3: boom\\nsecond line;"), "{line}");
        let _ = std::panic::take_hook();
    }

    #[test]
    fn a_normal_exit_code_passes_through() {
        assert_eq!(guarded(|| std::process::ExitCode::from(3)), std::process::ExitCode::from(3));
        let _ = std::panic::take_hook();
    }
}
