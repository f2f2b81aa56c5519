//! A program the kernel's verifier refused: its cause in a line or two, the whole log in a file.
//!
//! A refusal's log can run to tens of thousands of lines (61,782 on Debian 12's 6.1 for one
//! loop), and its first line is often a harmless note; the cause is the failing instruction
//! and the messages after it, just before the statistics at the end.
use std::{
    fmt, fs, io,
    os::unix::fs::DirBuilderExt as _,
    path::{Path, PathBuf},
};

/// Most lines of the log's end quoted in the cause.
const CAUSE_LINES: usize = 6;

/// A refusal, as the user sees it.
#[derive(Debug)]
pub struct Refusal {
    pub program: &'static str,
    pub errno: io::Error,
    pub cause: String,
    pub log_lines: usize,
    /// Where the whole log was saved, or why it could not be.
    pub saved: Result<PathBuf, String>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the kernel's verifier refused program {} ({}): {}",
            self.program, self.errno, self.cause
        )?;
        match &self.saved {
            Ok(path) => write!(
                f,
                " [whole verifier log, {} lines: {}]",
                self.log_lines,
                path.display()
            ),
            Err(why) => write!(f, " [the verifier log could not be saved: {why}]"),
        }
    }
}

impl Refusal {
    /// Reads the cause out of `log` and saves the whole log under `dir`.
    pub fn new(program: &'static str, errno: io::Error, log: &str, dir: &Path) -> Self {
        Self {
            program,
            errno,
            cause: cause_of(log),
            log_lines: log.lines().count(),
            saved: save(dir, program, log).map_err(|e| format!("{}: {e}", dir.display())),
        }
    }
}

fn is_statistics(line: &str) -> bool {
    ["verification time", "stack depth", "processed "]
        .iter()
        .any(|p| line.starts_with(p))
}

/// `"328: (71) r3 = *(u8 *)(r8 +0)"` -> `Some(("328", "r3 = *(u8 *)(r8 +0)"))`.
fn instruction(line: &str) -> Option<(&str, &str)> {
    let (index, rest) = line.split_once(": (")?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let text = rest.split_once(") ")?.1;
    // Drop the register state the verifier prints after `;`.
    Some((index, text.split(" ; ").next().unwrap_or(text).trim()))
}

/// The cause of a refusal: the last instruction the verifier looked at, the source line it
/// came from, and the messages that follow it (without the statistics).
pub fn cause_of(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !is_statistics(l))
        .collect();
    let last_insn = lines.iter().rposition(|l| instruction(l).is_some());
    let Some(at) = last_insn.filter(|&i| i + 1 < lines.len()) else {
        let tail = &lines[lines.len().saturating_sub(CAUSE_LINES)..];
        return match tail.join("; ") {
            t if t.is_empty() => "no verifier output".into(),
            t => t,
        };
    };
    let (index, text) = instruction(lines[at]).expect("found above");
    let source = lines[..at]
        .iter()
        .rev()
        .take(3)
        .find_map(|l| l.strip_prefix("; "))
        .map(|s| format!(", source `{}`", s.trim()))
        .unwrap_or_default();
    let messages: Vec<&str> = lines[at + 1..].iter().take(CAUSE_LINES).copied().collect();
    format!(
        "at instruction {index} `{text}`{source}: {}",
        messages.join("; ")
    )
}

fn save(dir: &Path, program: &str, log: &str) -> io::Result<PathBuf> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let path = dir.join(format!("{program}-{stamp}.log"));
    fs::write(&path, log)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end of the log Debian 12's 6.1 printed for the exec program's hash loop.
    const DEBIAN_6_1: &str = "reg type unsupported for arg#0 function warden_exec#20
0: R1=ctx(off=0,imm=0) R10=fp0
; for &b in bytes {
328: (71) r3 = *(u8 *)(r8 +0)         ; R3_w=scalar(umax=255,var_off=(0x0; 0xff)) R8_w=map_value(off=4095,ks=4,vs=4096,imm=0) refs=4
; h ^= b as u64;
329: (af) r1 ^= r3                    ; R1_w=scalar() refs=4
; for &b in bytes {
328: (71) r3 = *(u8 *)(r8 +0)
invalid access to map value, value_size=4096 off=4096 size=1
R8 min value is outside of the allowed memory range
verification time 901254 usec
stack depth 104
processed 59721 insns (limit 1000000) max_states_per_insn 4 total_states 616 peak_states 611 mark_read 246
";

    #[test]
    fn the_cause_is_the_failing_instruction_and_what_follows() {
        let cases = [
            (
                DEBIAN_6_1,
                "at instruction 328 `r3 = *(u8 *)(r8 +0)`, source `for &b in bytes {`: invalid \
                 access to map value, value_size=4096 off=4096 size=1; R8 min value is outside \
                 of the allowed memory range",
            ),
            // A refusal before any instruction (an unknown helper, a bad BTF type).
            (
                "unknown func bpf_loop#181\nprocessed 12 insns\n",
                "unknown func bpf_loop#181",
            ),
            (
                "0: (b7) r0 = 0\n1: (95) exit\nR0 !read_ok\n",
                "at instruction 1 `exit`: R0 !read_ok",
            ),
            ("", "no verifier output"),
        ];
        for (log, want) in cases {
            assert_eq!(cause_of(log), want, "log:\n{log}");
        }
    }

    #[test]
    fn the_whole_log_is_saved_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let errno = io::Error::from_raw_os_error(libc::EACCES);
        let r = Refusal::new(
            "warden_exec",
            errno,
            DEBIAN_6_1,
            &dir.path().join("verifier"),
        );
        let path = r.saved.as_ref().unwrap();
        assert_eq!(fs::read_to_string(path).unwrap(), DEBIAN_6_1);
        let shown = r.to_string();
        assert!(shown.starts_with("the kernel's verifier refused program warden_exec"));
        assert!(shown.contains("R8 min value is outside"), "{shown}");
        assert!(
            shown.contains(&format!("13 lines: {}", path.display())),
            "{shown}"
        );
        assert!(!shown.contains("reg type unsupported"), "{shown}");
    }
}
