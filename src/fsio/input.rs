//! Inputs: a file is opened once (without blocking, so a FIFO cannot hang the open), checked on the open
//! descriptor to be a regular file, and read with a bound; a folder is checked to be one before it is
//! listed. Every reader of the crate (models, external data, presets, calibration, reports, datasets,
//! feature matrices, trigger specifications) goes through here.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{kind_of, FileError};

/// Opens `path` for reading and checks, on the open file, that it is a regular file; returns the file
/// and its size. Links are followed (a link to a regular file is that file; a link to `/dev/zero` is a
/// character device and refused). The open does not block on a FIFO.
pub fn open_input(path: &Path) -> Result<(File, u64), FileError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| FileError::io(path, &e))?;
    let meta = file.metadata().map_err(|e| FileError::io(path, &e))?;
    if !meta.is_file() {
        return Err(FileError::NotRegular { path: path.to_path_buf(), kind: kind_of(&meta.file_type()) });
    }
    // A regular file ignores O_NONBLOCK; clear it anyway so the descriptor behaves as a plain open.
    // SAFETY: fcntl on a descriptor this function owns, with integer arguments only.
    unsafe {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok((file, meta.len()))
}

/// Reads the whole of the regular file `path`, refusing one larger than `max` bytes (`what` names the
/// kind of file in that message: "a report", "a calibration file", ...) before reading, and stopping at
/// `max + 1` bytes should it grow while read.
pub fn read_input(path: &Path, max: u64, what: &'static str) -> Result<Vec<u8>, FileError> {
    let (file, len) = open_input(path)?;
    if len > max {
        return Err(FileError::TooLarge { path: path.to_path_buf(), len, max, what });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut bytes).map_err(|e| FileError::io(path, &e))?;
    if bytes.len() as u64 > max {
        return Err(FileError::TooLarge { path: path.to_path_buf(), len: bytes.len() as u64, max, what });
    }
    Ok(bytes)
}

/// [`read_input`] as UTF-8 text.
pub fn read_text(path: &Path, max: u64, what: &'static str) -> Result<String, FileError> {
    String::from_utf8(read_input(path, max, what)?)
        .map_err(|_| FileError::Io { path: path.to_path_buf(), problem: "not UTF-8 text".into() })
}

/// Checks that `path` is a folder (links followed).
pub fn check_folder(path: &Path) -> Result<(), FileError> {
    let meta = std::fs::metadata(path).map_err(|e| FileError::io(path, &e))?;
    if !meta.is_dir() {
        return Err(FileError::NotFolder { path: path.to_path_buf(), kind: kind_of(&meta.file_type()) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_folder, read_input};
    use crate::fsio::FileError;

    fn fifo(path: &std::path::Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn a_fifo_a_folder_and_a_device_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pipe");
        fifo(&f);
        assert!(matches!(read_input(&f, 10, "a test file"), Err(FileError::NotRegular { kind: "a FIFO", .. })));
        let err = read_input(dir.path(), 10, "a test file").unwrap_err().to_string();
        assert!(err.ends_with(": is a folder, not a regular file"), "{err}");
        let link = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = read_input(&link, 10, "a test file").unwrap_err().to_string();
        assert!(err.ends_with(": is a character device, not a regular file"), "{err}");
        assert!(check_folder(&f).unwrap_err().to_string().ends_with("is a FIFO, not a folder"));
    }

    #[test]
    fn the_bound_is_checked_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big");
        std::fs::File::create(&f).unwrap().set_len(1 << 40).unwrap(); // sparse: no disk blocks
        let err = read_input(&f, 1 << 20, "a report").unwrap_err().to_string();
        assert!(err.ends_with(": 1099511627776 bytes, more than the 1048576 bytes a report may have"), "{err}");
        std::fs::write(&f, b"ok").unwrap();
        assert_eq!(read_input(&f, 2, "a report").unwrap(), b"ok");
        let err = read_input(&dir.path().join("none"), 2, "a report").unwrap_err().to_string();
        assert!(err.ends_with("none: No such file or directory"), "{err}");
    }
}
