//! One local drive: its format file, its RocksDB of records, and its data files.
//!
//! Data files are named by random ids (`data/ab/abcdef…`), never by object key, so no key,
//! however crafted, names a path on disk. A file is written under `tmp/`, fsynced, renamed into
//! `data/` and the directory fsynced before any record refers to it.
//!
//! File I/O goes through the [`Drive`] trait so tests can put failures under the object layer.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Version of the on-drive layout described by `format.json`.
pub const DRIVE_FORMAT_V1: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DriveFormat {
    pub format: u32,
    /// Identifies the deployment; a drive of another deployment is refused.
    pub deployment_id: String,
    pub pool: u32,
    pub set: u32,
    pub drive: u32,
    /// Drives in this drive's erasure set (absent in single-drive formats: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_size: Option<u32>,
    /// Parity shards of the set (absent: 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parity: Option<u32>,
}

impl DriveFormat {
    pub fn new(deployment_id: &str, drive: u32, set_size: u32, parity: u32) -> DriveFormat {
        DriveFormat {
            format: DRIVE_FORMAT_V1,
            deployment_id: deployment_id.to_string(),
            pool: 0,
            set: 0,
            drive,
            set_size: (set_size > 1).then_some(set_size),
            parity: (parity > 0).then_some(parity),
        }
    }
}

/// The longest a shard stream to or from another server may stall before the drive is given
/// up, when no other drive can stand in for it.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// A data file being written; `commit` makes it durable under its id.
pub trait DataWriter: Write + Send {
    /// Writes all of `buf` if the drive takes it within `patience`; `Ok(false)` when it did
    /// not and took nothing (offer it again, or give the drive up). Only a remote drive's
    /// stream can be full; a local file always takes it.
    fn offer(&mut self, buf: &[u8], patience: Duration) -> io::Result<bool> {
        let _ = patience;
        self.write_all(buf).map(|()| true)
    }

    fn commit(self: Box<Self>) -> io::Result<()>;

    /// Whether the drive answers promptly now; only another server's can go quiet.
    fn responsive(&self) -> bool {
        true
    }
}

/// A committed data file open for reading. Reads are positional; a reader opened at an offset
/// (see [`Drive::open_at`]) is fastest when read forward from there.
pub trait DataReader: Send {
    /// Fills `buf` from `offset`; fails when the file ends first.
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Like [`DataReader::read_exact_at`], failing with [`io::ErrorKind::TimedOut`] when a
    /// remote drive sends nothing for `patience`; a local file does not wait on anyone.
    fn read_exact_within(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        patience: Duration,
    ) -> io::Result<()> {
        let _ = patience;
        self.read_exact_at(offset, buf)
    }

    /// Whether the drive answers promptly now; only another server's can go quiet.
    fn responsive(&self) -> bool {
        true
    }
}

impl DataReader for File {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

/// File operations of one drive (the I/O seam of the store).
pub trait Drive: Send + Sync + 'static {
    fn root(&self) -> &Path;
    /// Starts a new data file `id` in the drive's temporary area.
    fn create(&self, id: &str) -> io::Result<Box<dyn DataWriter>>;
    /// Opens committed data file `id` for reading. An open file stays readable when the file
    /// is removed afterwards (a read racing an overwrite finishes).
    fn open(&self, id: &str) -> io::Result<Box<dyn DataReader>> {
        self.open_at(id, 0)
    }
    /// Like [`Drive::open`], for reading forward from `offset` (remote drives stream from it).
    fn open_at(&self, id: &str, offset: u64) -> io::Result<Box<dyn DataReader>>;
    /// The size of committed data file `id`.
    fn size(&self, id: &str) -> io::Result<u64>;
    /// Removes committed data file `id`; a missing file is not an error.
    fn remove(&self, id: &str) -> io::Result<()>;
    /// Removes leftovers of interrupted writes. Called once the drive is exclusively ours.
    fn clear_tmp(&self) -> io::Result<()>;
    /// The size and free space of the filesystem under the drive (pool placement weighs new
    /// objects by free space; the admin API reports capacity).
    fn space(&self) -> io::Result<DriveSpace> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this drive does not report its space",
        ))
    }
}

/// The capacity of a drive's filesystem, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveSpace {
    pub total: u64,
    /// Available to this process (what it can still write).
    pub free: u64,
}

impl DriveSpace {
    /// Reads the filesystem statistics of `path`.
    pub fn of(path: &Path) -> io::Result<DriveSpace> {
        let st = rustix::fs::statvfs(path).map_err(io::Error::from)?;
        Ok(DriveSpace {
            total: st.f_blocks.saturating_mul(st.f_frsize),
            free: st.f_bavail.saturating_mul(st.f_frsize),
        })
    }
}

/// A drive on the local filesystem.
#[derive(Clone)]
pub struct LocalDrive {
    root: PathBuf,
}

impl LocalDrive {
    /// Opens (creating if needed) the drive folder.
    pub fn open(root: &Path) -> io::Result<LocalDrive> {
        fs::create_dir_all(root.join("tmp"))?;
        fs::create_dir_all(root.join("data"))?;
        Ok(LocalDrive {
            root: root.to_path_buf(),
        })
    }

    /// Where committed data file `id` lives.
    pub fn data_path(&self, id: &str) -> PathBuf {
        let shard = id.get(..2).unwrap_or("00");
        self.root.join("data").join(shard).join(id)
    }

    pub fn meta_path(&self) -> PathBuf {
        self.root.join("meta")
    }

    /// Reads the format file; `None` on an empty drive.
    pub fn read_format(&self) -> io::Result<Option<DriveFormat>> {
        let path = self.root.join("format.json");
        match fs::read(&path) {
            Ok(bytes) => {
                let format: DriveFormat = serde_json::from_slice(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    )
                })?;
                if format.format != DRIVE_FORMAT_V1 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: unsupported drive format {}",
                            path.display(),
                            format.format
                        ),
                    ));
                }
                Ok(Some(format))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A fresh, unique temporary path for data file `id` (peer RPC streams shards into it,
    /// then [`LocalDrive::install`] moves it into place).
    pub fn tmp_path(&self, id: &str) -> PathBuf {
        self.root
            .join("tmp")
            .join(format!("{id}.{}", uuid::Uuid::new_v4().simple()))
    }

    /// Makes the synced temporary file `tmp` the committed data file `id`.
    pub fn install(&self, tmp: &Path, id: &str) -> io::Result<()> {
        install(tmp, &self.data_path(id))
    }

    pub fn write_format(&self, format: &DriveFormat) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(format).map_err(io::Error::other)?;
        write_file_durably(&self.root, "format.json", &bytes)
    }
}

/// Writes `name` in `dir` atomically: tmp file, fsync, rename, fsync the directory.
pub fn write_file_durably(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

struct LocalWriter {
    file: io::BufWriter<File>,
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Renames a synced temporary file into its data path and syncs the folder.
fn install(tmp: &Path, dest: &Path) -> io::Result<()> {
    let dir = dest
        .parent()
        .expect("data paths always have a parent folder");
    if let Err(e) = fs::rename(tmp, dest) {
        if e.kind() != io::ErrorKind::NotFound {
            return Err(e);
        }
        fs::create_dir_all(dir)?;
        fs::rename(tmp, dest)?;
    }
    File::open(dir)?.sync_all()
}

impl DataWriter for LocalWriter {
    fn commit(mut self: Box<Self>) -> io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_data()?;
        install(&self.tmp, &self.dest)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Drive for LocalDrive {
    fn root(&self) -> &Path {
        &self.root
    }

    fn create(&self, id: &str) -> io::Result<Box<dyn DataWriter>> {
        // A unique temporary name: two writers of the same id (a heal racing another heal)
        // must never share, truncate or remove each other's file.
        let tmp = self.tmp_path(id);
        let file = File::create(&tmp)?;
        Ok(Box::new(LocalWriter {
            file: io::BufWriter::with_capacity(1 << 20, file),
            tmp,
            dest: self.data_path(id),
            committed: false,
        }))
    }

    fn open_at(&self, id: &str, _offset: u64) -> io::Result<Box<dyn DataReader>> {
        Ok(Box::new(File::open(self.data_path(id))?))
    }

    fn size(&self, id: &str) -> io::Result<u64> {
        Ok(fs::metadata(self.data_path(id))?.len())
    }

    fn remove(&self, id: &str) -> io::Result<()> {
        match fs::remove_file(self.data_path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn clear_tmp(&self) -> io::Result<()> {
        // Files in tmp/ were never committed: nothing refers to them.
        for entry in fs::read_dir(self.root.join("tmp"))? {
            let _ = fs::remove_file(entry?.path());
        }
        Ok(())
    }

    fn space(&self) -> io::Result<DriveSpace> {
        DriveSpace::of(&self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_file_reads_back_and_uncommitted_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let drive = LocalDrive::open(dir.path()).unwrap();
        let mut w = drive.create("abc123").unwrap();
        w.write_all(b"payload").unwrap();
        w.commit().unwrap();
        let mut buf = [0u8; 7];
        drive
            .open("abc123")
            .unwrap()
            .read_exact_at(0, &mut buf)
            .unwrap();
        assert_eq!(&buf, b"payload");
        assert_eq!(drive.size("abc123").unwrap(), 7);

        let mut w = drive.create("dropped").unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert!(drive.open("dropped").is_err());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn format_file_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let drive = LocalDrive::open(dir.path()).unwrap();
        assert_eq!(drive.read_format().unwrap(), None);
        let first = DriveFormat::new("deployment", 0, 1, 0);
        drive.write_format(&first).unwrap();
        let again = LocalDrive::open(dir.path())
            .unwrap()
            .read_format()
            .unwrap()
            .unwrap();
        assert_eq!(first, again);
    }
}
