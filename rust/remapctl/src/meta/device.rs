//! A spare device or image file, read and written at byte offsets.

use super::MetaError;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// An open spare device or image.
/// `BLKSSZGET` from linux/fs.h: the logical block size of a block device.
const BLKSSZGET: libc::c_ulong = 0x1268;
/// `BLKFLSBUF` from linux/fs.h: write back and drop a block device's page cache.
const BLKFLSBUF: libc::c_ulong = 0x1261;

pub struct Spare {
    file: File,
    len: u64,
    lbs: u32,
    path: PathBuf,
}

impl Spare {
    /// Opens `path`; for writing, a block device is opened exclusively (`O_EXCL`), which
    /// fails while it is mounted or held by a device-mapper table.
    pub fn open(path: &Path, write: bool) -> Result<Spare, MetaError> {
        let io = |e| MetaError::Io(path.into(), e);
        let md = std::fs::metadata(path).map_err(io)?;
        let block = md.file_type().is_block_device();
        let mut o = OpenOptions::new();
        o.read(true).write(write);
        if write && block {
            o.custom_flags(libc::O_EXCL);
        }
        let mut file = match o.open(path) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(MetaError::InUse(path.into()))
            }
            Err(e) => return Err(io(e)),
        };
        let len = if block {
            file.seek(SeekFrom::End(0)).map_err(io)?
        } else {
            md.len()
        };
        let lbs = if block {
            let mut v: libc::c_int = 0;
            // SAFETY: BLKSSZGET writes one int through the pointer, which is valid.
            let r = unsafe { libc::ioctl(file.as_raw_fd(), BLKSSZGET, &mut v as *mut libc::c_int) };
            if r != 0 {
                return Err(io(std::io::Error::last_os_error()));
            }
            u32::try_from(v).unwrap_or(512)
        } else {
            512
        };
        if block {
            // The kernel writes metadata below the block device's page cache: drop what
            // the cache holds so that reads see the disk. BLKFLSBUF (what `blockdev
            // --flushbufs` does; root only) drains every CPU's page batches first, which
            // POSIX_FADV_DONTNEED alone does not, and can leave stale pages of a spare a
            // live table is writing. Failure only means a cold cache is not guaranteed.
            // SAFETY: `file` is an open descriptor; BLKFLSBUF takes no argument.
            let _ = unsafe { libc::ioctl(file.as_raw_fd(), BLKFLSBUF, 0) };
            // SAFETY: `file` is an open descriptor; the call takes no pointers.
            let _ =
                unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
        Ok(Spare {
            file,
            len,
            lbs,
            path: path.into(),
        })
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Logical block size in bytes (512 for an image file).
    pub fn logical_block_bytes(&self) -> u32 {
        self.lbs
    }

    /// Reads `n` bytes at `off`; bytes beyond the end of an image read as zeros (a
    /// sparse or short image is a blank one there).
    pub fn read_extent(&self, off: u64, n: usize) -> Result<Vec<u8>, MetaError> {
        let mut buf = vec![0u8; n];
        let mut done = 0usize;
        while done < n {
            match self.file.read_at(&mut buf[done..], off + done as u64) {
                Ok(0) => break,
                Ok(k) => done += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(MetaError::Io(self.path.clone(), e)),
            }
        }
        Ok(buf)
    }

    /// Writes `data` at `off` and makes it durable before returning.
    pub fn write_durable(&self, off: u64, data: &[u8]) -> Result<(), MetaError> {
        let io = |e| MetaError::Io(self.path.clone(), e);
        self.file.write_all_at(data, off).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}
