//! Whether a shared library file is whole: every segment and the section header table its
//! ELF header describes lie inside the file. `dlopen` maps a truncated file without
//! complaint, and the first touch of a page past its end is a SIGBUS that kills the
//! router, so a file caught mid-copy is refused here, before it is mapped.
//!
//! Only the headers are read, not their meaning: a file that is not ELF at all is left to
//! `dlopen`, which refuses it with its own reason.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// `e_ident`'s magic number.
const MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];

/// Program headers read at most: real libraries have about ten.
const MAX_PROGRAM_HEADERS: u64 = 4096;

/// How an ELF file encodes its numbers.
#[derive(Clone, Copy)]
struct Layout {
    wide: bool,
    big_endian: bool,
}

impl Layout {
    fn num(self, bytes: &[u8], at: usize, len: usize) -> u64 {
        let Some(field) = bytes.get(at..at + len) else {
            return 0;
        };
        let mut value = 0u64;
        for i in 0..len {
            let byte = if self.big_endian {
                field[i]
            } else {
                field[len - 1 - i]
            };
            value = (value << 8) | u64::from(byte);
        }
        value
    }

    /// An address-sized field: 8 bytes in a 64-bit file, 4 in a 32-bit one.
    fn addr(self, bytes: &[u8], at64: usize, at32: usize) -> u64 {
        if self.wide {
            self.num(bytes, at64, 8)
        } else {
            self.num(bytes, at32, 4)
        }
    }

    fn half(self, bytes: &[u8], at64: usize, at32: usize) -> u64 {
        self.num(bytes, if self.wide { at64 } else { at32 }, 2)
    }
}

/// `Err` with what is missing when `file` is an ELF file shorter than its headers say.
pub(super) fn check_whole(file: &mut File) -> io::Result<Result<(), String>> {
    let size = file.metadata()?.len();
    let mut header = [0u8; 64];
    file.seek(SeekFrom::Start(0))?;
    let read = read_up_to(file, &mut header)?;
    if read < MAGIC.len() || header[..4] != MAGIC {
        return Ok(Ok(()));
    }
    let layout = Layout {
        wide: header[4] == 2,
        big_endian: header[5] == 2,
    };
    let header_len = if layout.wide { 64 } else { 52 };
    if (read as u64) < header_len {
        return Ok(Err(incomplete(size, header_len)));
    }
    let ph_offset = layout.addr(&header, 0x20, 0x1C);
    let sh_offset = layout.addr(&header, 0x28, 0x20);
    let ph_size = layout.half(&header, 0x36, 0x2A);
    let ph_count = layout.half(&header, 0x38, 0x2C).min(MAX_PROGRAM_HEADERS);
    let sh_size = layout.half(&header, 0x3A, 0x2E);
    let sh_count = layout.half(&header, 0x3C, 0x30);

    let mut needed = header_len;
    needed = needed.max(ph_offset.saturating_add(ph_size.saturating_mul(ph_count)));
    if sh_count > 0 {
        needed = needed.max(sh_offset.saturating_add(sh_size.saturating_mul(sh_count)));
    }
    if needed > size {
        return Ok(Err(incomplete(size, needed)));
    }
    // Each segment's bytes in the file: `p_offset` + `p_filesz`.
    let mut entry = vec![0u8; usize::try_from(ph_size).unwrap_or(0)];
    for i in 0..ph_count {
        file.seek(SeekFrom::Start(ph_offset + i * ph_size))?;
        if read_up_to(file, &mut entry)? < entry.len() {
            return Ok(Err(incomplete(size, ph_offset + (i + 1) * ph_size)));
        }
        let offset = layout.addr(&entry, 8, 4);
        let file_size = layout.addr(&entry, 32, 16);
        needed = needed.max(offset.saturating_add(file_size));
    }
    if needed > size {
        return Ok(Err(incomplete(size, needed)));
    }
    Ok(Ok(()))
}

fn incomplete(size: u64, needed: u64) -> String {
    format!(
        "the file is incomplete: {size} bytes, where its ELF headers describe {needed}; is it still being copied? Copy it under another name and rename it into place"
    )
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    /// The test binary itself: a whole ELF file of this machine's kind.
    fn this_binary() -> Vec<u8> {
        std::fs::read(std::env::current_exe().expect("the test binary")).expect("readable")
    }

    fn check(dir: &TempDir, name: &str, bytes: &[u8]) -> Result<(), String> {
        let path = dir.0.join(name);
        std::fs::write(&path, bytes).expect("the temp dir is writable");
        let mut file = File::open(&path).expect("just written");
        check_whole(&mut file).expect("readable")
    }

    #[test]
    fn a_whole_file_passes_and_any_cut_of_it_is_refused() {
        let dir = TempDir::new("elf");
        let whole = this_binary();
        assert_eq!(check(&dir, "whole", &whole), Ok(()));
        for cut in [10, 40, 100, 4096, whole.len() / 2, whole.len() - 1] {
            let err = check(&dir, "cut", &whole[..cut]).expect_err("a cut file");
            assert!(err.contains("is it still being copied?"), "{cut}: {err}");
            assert!(err.contains(&format!("{cut} bytes")), "{cut}: {err}");
        }
    }

    #[test]
    fn what_is_not_elf_is_left_to_dlopen() {
        let dir = TempDir::new("elf-junk");
        assert_eq!(check(&dir, "junk", b"not a library"), Ok(()));
        assert_eq!(check(&dir, "empty", b""), Ok(()));
    }
}
