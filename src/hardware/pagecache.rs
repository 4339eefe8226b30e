//! One file's pages in the page cache, for the wait of a WARM role: how much of the file is
//! resident (`mincore` over a read-only mapping), dropping it (`posix_fadvise(DONTNEED)` on
//! that file alone: no root needed, no other file touched; pages another process maps stay),
//! and the storage's read rate for it (read from the start once evicted).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Instant;

/// Drops `path`'s clean, unmapped pages from the page cache.
pub fn evict(path: &Path) -> io::Result<()> {
    let file = File::open(path)?;
    nix::fcntl::posix_fadvise(
        file.as_raw_fd(),
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )
    .map_err(io::Error::from)
}

/// The share of `path`'s pages in the page cache now (0 to 1; 1 for an empty file).
pub fn resident_share(path: &Path) -> io::Result<f64> {
    let file = File::open(path)?;
    let len = file.metadata()?.len() as usize;
    if len == 0 {
        return Ok(1.0);
    }
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    let pages = len.div_ceil(page);
    let mut resident = vec![0u8; pages];
    // SAFETY: a private read-only mapping of an open file, `len` bytes, unmapped below; the
    // vector holds one byte per page, as mincore(2) requires.
    let share = unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        );
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let rc = libc::mincore(addr, len, resident.as_mut_ptr());
        let err = io::Error::last_os_error();
        libc::munmap(addr, len);
        if rc != 0 {
            return Err(err);
        }
        resident.iter().filter(|b| *b & 1 == 1).count() as f64 / pages as f64
    };
    Ok(share)
}

/// A cold read of one file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColdRead {
    /// Bytes read.
    pub bytes: u64,
    /// Seconds it took.
    pub secs: f64,
    /// The share of its pages still resident after eviction, before the read (0 to 1).
    pub resident_before: f64,
}

impl ColdRead {
    /// Bytes per second over the read, in GB/s.
    pub fn gbps(&self) -> f64 {
        match self.secs > 0.0 {
            true => self.bytes as f64 / self.secs / 1e9,
            false => 0.0,
        }
    }
}

/// Evicts `path` and reads it through once in 8 MiB blocks: the storage's read rate for this
/// file as a cold server start would meet it.
pub fn cold_read(path: &Path) -> io::Result<ColdRead> {
    evict(path)?;
    let resident_before = resident_share(path)?;
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 8 << 20];
    let start = Instant::now();
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
    }
    Ok(ColdRead {
        bytes,
        secs: start.elapsed().as_secs_f64(),
        resident_before,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_file_is_resident_and_an_evicted_one_is_not() {
        // 8 MiB written and read back: all of it cached. After DONTNEED (the file is clean
        // once synced and nobody maps it) the kernel drops its pages.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, vec![7u8; 8 << 20]).unwrap();
        File::open(&path).unwrap().sync_all().unwrap();
        std::fs::read(&path).unwrap();
        let before = resident_share(&path).unwrap();
        assert!(before > 0.99, "{before}");
        evict(&path).unwrap();
        let after = resident_share(&path).unwrap();
        assert!(after < 0.05, "{after}");
        let read = cold_read(&path).unwrap();
        assert_eq!(read.bytes, 8 << 20);
        assert!(read.resident_before < 0.05, "{read:?}");
        assert!(resident_share(&path).unwrap() > 0.99, "read back in");
    }
}
