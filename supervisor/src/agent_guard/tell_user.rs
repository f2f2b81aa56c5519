//! Telling the person who started a killed agent program what happened and what to type
//! instead: one line on the terminal its parent (their shell) writes errors to.
use std::{
    fs::OpenOptions,
    io::Write as _,
    os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _},
};

use warden_records::events::{escape::for_terminal, render::command_line};

/// The line: the program, and the command that starts it under Warden with the same
/// arguments. Every part is escaped data made safe for a terminal.
pub fn hint(filename: &str, argv: &[String], argv_truncated: bool) -> String {
    let mut command = command_line(argv);
    if command.is_empty() {
        command = command_line(&[filename.to_string()]);
    }
    format!(
        "warden: {} may only run inside a Warden session: warden run -- {command}{}\n",
        for_terminal(filename),
        if argv_truncated { " ..." } else { "" }
    )
}

/// Device majors of terminals a shell runs on: virtual consoles and serial lines (4), BSD and
/// UNIX 98 pseudo-terminals (3, 136 to 143). Not 5 (`/dev/tty` would name the guard's own).
const TERMINAL_MAJORS: [u32; 10] = [3, 4, 136, 137, 138, 139, 140, 141, 142, 143];

/// Writes `line` to the standard error of process `ppid` when that is a terminal. Returns
/// whether it was written.
pub fn tell(ppid: u32, line: &str) -> bool {
    if ppid <= 1 {
        return false;
    }
    let stderr = format!("/proc/{ppid}/fd/2");
    // Only a terminal is opened: opening some devices does something (a watchdog starts).
    let is_terminal_device = std::fs::metadata(&stderr).is_ok_and(|m| {
        m.file_type().is_char_device() && TERMINAL_MAJORS.contains(&libc::major(m.rdev()))
    });
    if !is_terminal_device {
        return false;
    }
    // Non-blocking: a terminal that does not take output (stopped by ^S) must not stall the
    // guard; no controlling terminal is acquired.
    let Ok(mut tty) = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&stderr)
    else {
        return false;
    };
    if !nix::unistd::isatty(&tty).unwrap_or(false) {
        return false;
    }
    tty.write_all(line.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_is_one_safe_line() {
        let argv = ["/opt/agent".to_string(), "--model\n\u{1b}[2J".to_string()];
        let line = hint("/opt/agent", &argv, false);
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert!(!line.contains('\u{1b}'), "{line:?}");
        assert!(line.starts_with(
            "warden: /opt/agent may only run inside a Warden session: warden run -- /opt/agent "
        ));
        assert!(hint("/opt/agent", &[], false).ends_with("warden run -- /opt/agent\n"));
        assert!(hint("/opt/agent", &argv[..1], true).ends_with("/opt/agent ...\n"));
    }

    #[test]
    fn nothing_is_written_where_stderr_is_no_terminal() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        assert!(!tell(child.id(), "x\n"));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
