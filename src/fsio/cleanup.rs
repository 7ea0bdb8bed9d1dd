//! Interruption: the temporary files and staging folders a run creates are registered here while they
//! exist; on SIGINT or SIGTERM a dedicated thread (the signals are blocked in every other thread) removes
//! them, prints one line and exits with the conventional code (130 or 143). Reports are renamed into
//! place inside [`commit_section`], which an interruption waits for, so the reports of a run are
//! replaced all together or not at all; the previous reports stay otherwise.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// The paths to remove on interruption: `(id, path, is a folder)`.
static REGISTRY: Mutex<Vec<(u64, PathBuf, bool)>> = Mutex::new(Vec::new());
/// Held while reports are renamed into place.
static COMMIT: Mutex<()> = Mutex::new(());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Set once a run's reports are renamed into place.
static COMMITTED: AtomicBool = AtomicBool::new(false);

/// A registered temporary path: removed from the registry when dropped (declare it after the value
/// that removes the path itself, so that the path goes first).
#[derive(Debug)]
pub struct Registered {
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut reg) = REGISTRY.lock() {
            reg.retain(|(id, _, _)| *id != self.id);
        }
    }
}

/// Creates a temporary file or folder with `make` and registers the path `path_of` gives, with the
/// registry held, so that an interruption sees either nothing or the registered path.
pub fn track<T, E>(
    make: impl FnOnce() -> Result<T, E>,
    path_of: impl FnOnce(&T) -> PathBuf,
    folder: bool,
) -> Result<(T, Registered), E> {
    let mut reg = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    let value = make()?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    reg.push((id, path_of(&value), folder));
    Ok((value, Registered { id }))
}

/// Runs `body` (the renames of a run's reports) so that an interruption waits until it is done.
pub fn commit_section<T>(body: impl FnOnce() -> T) -> T {
    let _held = COMMIT.lock().unwrap_or_else(|p| p.into_inner());
    let out = body();
    COMMITTED.store(true, Ordering::SeqCst);
    out
}

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it starts later) and starts
/// the thread that waits for them. Call first thing in `main`.
pub fn install_signal_handling() {
    // SAFETY: sigset operations on a local set; pthread_sigmask on the calling thread.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new().name("aegis-signals".into()).spawn(move || loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait on a set of blocked signals, writing into a local.
        if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
            interrupted(sig);
        }
    });
    if spawned.is_err() {
        // Without the thread, restore the default actions rather than ignore the signals.
        // SAFETY: as above.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

/// Removes every registered path, prints one line and exits with 128 + `sig`.
fn interrupted(sig: libc::c_int) -> ! {
    let _commit = COMMIT.lock().unwrap_or_else(|p| p.into_inner());
    let reg = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    for (_, path, folder) in reg.iter() {
        let _ = if *folder { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    }
    let name = if sig == libc::SIGINT { "SIGINT" } else { "SIGTERM" };
    if COMMITTED.load(Ordering::SeqCst) {
        eprintln!("aegis-audit: interrupted ({name}) after the reports were written");
    } else {
        eprintln!("aegis-audit: interrupted ({name}): temporary files removed, no report written or replaced");
    }
    // SAFETY: ends the process without running destructors (other threads may hold locks).
    unsafe { libc::_exit(128 + sig) }
}
