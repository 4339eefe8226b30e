//! Advisory file locks (flock) that serialise work across processes: two managed engine
//! installs, or two test binaries that each start llama-server on a 2-core machine.
//!
//! The lock is held for as long as the [`FileLock`] lives; the kernel drops it when the
//! file is closed, so a crashed holder never leaves a stale lock behind.

use anyhow::Context;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// An exclusive lock on a file, released on drop.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Blocks until the exclusive lock on `path` is ours. Creates the file (and its
    /// parent directory) when missing. `on_wait` runs once if another process holds it,
    /// so the caller can tell the user why nothing happens.
    pub fn exclusive(path: &Path, on_wait: impl FnOnce()) -> anyhow::Result<FileLock> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                on_wait();
                file.lock()
                    .with_context(|| format!("locking {}", path.display()))?;
            }
            Err(TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("locking {}", path.display()))
            }
        }
        Ok(FileLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Takes the exclusive lock if nobody holds it; `Ok(None)` when another holder has it.
    pub fn try_exclusive(path: &Path) -> anyhow::Result<Option<FileLock>> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(FileLock {
                file,
                path: path.to_path_buf(),
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(err)) => {
                Err(err).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    /// The locked file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first makes it prompt
        // even if a child process inherited the descriptor.
        let _ = self.file.unlock();
    }
}

fn open_lock_file(path: &Path) -> anyhow::Result<File> {
    if let Some(parent) = path.parent() {
        super::create_dir_all(parent)?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening lock file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.lock");
        let first = FileLock::exclusive(&path, || panic!("nobody holds it yet")).unwrap();
        // flock locks belong to the open file description, so a second open in the same
        // process contends like another process would.
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        drop(first);
        assert!(FileLock::try_exclusive(&path).unwrap().is_some());
    }

    #[test]
    fn waiting_holder_gets_the_lock_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = FileLock::exclusive(&path, || {}).unwrap();
        let path2 = path.clone();
        let waiter = std::thread::spawn(move || {
            let mut waited = false;
            let _lock = FileLock::exclusive(&path2, || waited = true).unwrap();
            waited
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(first);
        assert!(
            waiter.join().unwrap(),
            "the waiter should have been told it waits"
        );
    }
}
