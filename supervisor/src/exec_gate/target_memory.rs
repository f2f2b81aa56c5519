//! Reading a stopped exec's arguments out of the calling process's memory.
//!
//! The process is blocked in the system call while we read, but another of its threads is not:
//! what we read can change before the kernel copies it. That race is closed in the kernel
//! (exec tokens), not here.
use std::io::{self, IoSliceMut};

use nix::{
    sys::uio::{RemoteIoVec, process_vm_readv},
    unistd::Pid,
};

/// Longest path read.
pub const MAX_PATH: usize = 4096;
/// At most this many argument pointers, and this many argument bytes, are read.
pub const MAX_ARGS: usize = 8192;
pub const MAX_ARG_BYTES: usize = 256 * 1024;

/// Another process's memory, read with process_vm_readv (no file to open per request).
pub struct Memory(Pid);

#[derive(Debug, PartialEq, Eq)]
pub struct Argv {
    pub args: Vec<Vec<u8>>,
    /// Some arguments or bytes were not read (beyond the bounds above).
    pub truncated: bool,
}

impl Memory {
    pub fn open(pid: u32) -> io::Result<Self> {
        Ok(Memory(Pid::from_raw(pid as i32)))
    }

    fn read_at(&self, buf: &mut [u8], addr: u64) -> io::Result<usize> {
        let remote = [RemoteIoVec {
            base: addr as usize,
            len: buf.len(),
        }];
        Ok(process_vm_readv(
            self.0,
            &mut [IoSliceMut::new(buf)],
            &remote,
        )?)
    }

    /// A NUL-terminated string at `addr`, at most `max` bytes; `None` if it was longer.
    pub fn c_string(&self, addr: u64, max: usize) -> io::Result<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 256];
        let mut at = addr;
        while out.len() < max {
            // Stop at a page boundary so that a string at the end of a mapping reads fine.
            let to_page = 4096 - (at % 4096) as usize;
            let want = chunk.len().min(to_page).min(max - out.len());
            let n = self.read_at(&mut chunk[..want], at)?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            if let Some(nul) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                return Ok((out, false));
            }
            out.extend_from_slice(&chunk[..n]);
            at += n as u64;
        }
        Ok((out, true))
    }

    /// A NULL-terminated array of string pointers (argv). Pointers are read a page's worth
    /// at a time: each read is a system call, and this runs for every exec of the session.
    pub fn argv(&self, addr: u64) -> io::Result<Argv> {
        let mut args = Vec::new();
        let mut bytes = 0;
        if addr == 0 {
            return Ok(Argv {
                args,
                truncated: false,
            });
        }
        let mut at = addr;
        let mut chunk = [0u8; 4096];
        while args.len() < MAX_ARGS {
            let to_page = (4096 - (at % 4096) as usize).max(8);
            let got = self.read_at(&mut chunk[..to_page], at)?;
            if got < 8 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            for p in chunk[..got - got % 8].chunks_exact(8) {
                let ptr = u64::from_ne_bytes(p.try_into().expect("8 bytes"));
                if ptr == 0 {
                    return Ok(Argv {
                        args,
                        truncated: false,
                    });
                }
                let (s, cut) = self.c_string(ptr, MAX_ARG_BYTES - bytes)?;
                bytes += s.len() + 1;
                args.push(s);
                if cut || bytes >= MAX_ARG_BYTES || args.len() >= MAX_ARGS {
                    return Ok(Argv {
                        args,
                        truncated: true,
                    });
                }
            }
            at += (got - got % 8) as u64;
        }
        Ok(Argv {
            args,
            truncated: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strings_and_argv_of_a_process() {
        // Our own memory stands in for a target's.
        let mem = Memory::open(std::process::id()).unwrap();
        let strings = [
            c"ls".as_ptr(),
            c"-la".as_ptr(),
            c"a\nb".as_ptr(),
            std::ptr::null(),
        ];
        let argv = mem.argv(strings.as_ptr() as u64).unwrap();
        assert_eq!(
            argv,
            Argv {
                args: vec![b"ls".to_vec(), b"-la".to_vec(), b"a\nb".to_vec()],
                truncated: false
            }
        );
        let long = std::ffi::CString::new(vec![b'x'; 10_000]).unwrap();
        let (s, cut) = mem.c_string(long.as_ptr() as u64, MAX_PATH).unwrap();
        assert_eq!((s.len(), cut), (MAX_PATH, true));
    }
}
