//! Receiving a body: hashes it as it streams in and keeps it in memory while it is small
//! (inline objects) or streams it to a data file on a blocking thread, so hashing and disk
//! writes never run on the async executor and memory stays bounded whatever the size.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::checksum::{BodyDigests, BodyHasher, DigestRequest};
use super::ecio;
use super::set::DriveSet;
use super::StoreError;

/// Where a fully received body sits until a record refers to it.
pub enum StagedContent {
    Inline(Vec<u8>),
    /// Erasure-coded inline body: each drive's framed shard, in drive order.
    InlineShards(Vec<Vec<u8>>),
    File(String),
}

/// A body that was received whole and made durable (if a file); dropping it without
/// [`Staged::into_committed`] removes its data file.
pub struct Staged {
    pub digests: BodyDigests,
    content: Option<StagedContent>,
    set: Arc<DriveSet>,
}

impl Staged {
    /// The erasure set the body was written to (its record must be committed there).
    pub(crate) fn set(&self) -> &Arc<DriveSet> {
        &self.set
    }

    pub fn content(&self) -> &StagedContent {
        self.content
            .as_ref()
            .expect("content is only taken by into_committed")
    }

    /// Hands the content to a record that now refers to it.
    pub(crate) fn into_committed(mut self) -> StagedContent {
        self.content.take().expect("content is only taken once")
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let Some(StagedContent::File(id)) = self.content.take() else {
            return;
        };
        let set = self.set.clone();
        let remove = move || {
            if set.remove_data(&id).is_err() {
                // A drive that is away keeps its copy: the garbage collector removes it later.
                let mut batch = super::set::Batch::default();
                batch.put(super::keys::garbage(&id), Vec::new());
                if let Err(e) = set.write(&batch) {
                    tracing::warn!(data_id = %id, error = %e, "could not remove uncommitted data file");
                }
            }
        };
        // Removal talks to every drive and writes a synced record: never on a runtime worker
        // (a body refused after it was received is dropped in async code).
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

enum Mode {
    Memory {
        buf: Vec<u8>,
        hasher: Box<BodyHasher>,
    },
    File {
        tx: mpsc::Sender<Bytes>,
        cancelled: Arc<AtomicBool>,
        task: JoinHandle<Result<(String, BodyDigests), StoreError>>,
    },
}

/// Accepts a body chunk by chunk. Dropping it before [`StagingWriter::finish`] discards
/// everything written so far.
pub struct StagingWriter {
    set: Arc<DriveSet>,
    order: Vec<usize>,
    inline_limit: usize,
    mode: Option<Mode>,
    request: DigestRequest,
}

impl StagingWriter {
    pub(crate) fn new(
        set: Arc<DriveSet>,
        order: Vec<usize>,
        request: DigestRequest,
        inline_limit: usize,
    ) -> StagingWriter {
        StagingWriter {
            set,
            order,
            inline_limit,
            mode: Some(Mode::Memory {
                buf: Vec::new(),
                hasher: Box::new(BodyHasher::new(request)),
            }),
            request,
        }
    }

    pub async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        if let Some(Mode::Memory { buf, hasher }) = &mut self.mode {
            if buf.len() + chunk.len() <= self.inline_limit {
                hasher.update(&chunk);
                buf.extend_from_slice(&chunk);
                return Ok(());
            }
            // Too big to inline: move what we have to a file writer thread.
            let pending = Bytes::from(std::mem::take(buf));
            self.mode = Some(self.spawn_file_writer());
            if !pending.is_empty() {
                self.send(pending).await?;
            }
        }
        self.send(chunk).await
    }

    async fn send(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        let Some(Mode::File { tx, .. }) = &self.mode else {
            unreachable!("send is only called in file mode");
        };
        if tx.send(chunk).await.is_ok() {
            return Ok(());
        }
        // The writer thread stopped early: report its error.
        match self.mode.take() {
            Some(Mode::File { task, .. }) => match task.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(_)) => Err(StoreError::Internal("data writer ended early".into())),
                Err(e) => Err(StoreError::Internal(format!("data writer panicked: {e}"))),
            },
            _ => unreachable!("mode was file"),
        }
    }

    fn spawn_file_writer(&self) -> Mode {
        let (tx, mut rx) = mpsc::channel::<Bytes>(16);
        let set = self.set.clone();
        let order = self.order.clone();
        let request = self.request;
        let cancelled = Arc::new(AtomicBool::new(false));
        let cancel_seen = cancelled.clone();
        let task = tokio::task::spawn_blocking(move || {
            let id = super::new_data_id();
            let mut hasher = BodyHasher::new(request);
            if let Some(codec) = &set.codec {
                let mut writer = ecio::ShardFilesWriter::create(&set, codec, order, &id)?;
                while let Some(chunk) = rx.blocking_recv() {
                    hasher.update(&chunk);
                    writer.write(&chunk)?;
                }
                if cancel_seen.load(Ordering::Acquire) {
                    // Dropping the writer removes its temporary files.
                    return Err(StoreError::Internal("upload cancelled".into()));
                }
                if !writer.commit()? {
                    set.note_degraded_data(&id);
                }
                return Ok((id, hasher.finish()));
            }
            let (_, slot) = set
                .online()
                .next()
                .ok_or(StoreError::QuorumLost { have: 0, need: 1 })?;
            let mut writer = slot.drive.create(&id)?;
            while let Some(chunk) = rx.blocking_recv() {
                hasher.update(&chunk);
                writer.write_all(&chunk)?;
            }
            if cancel_seen.load(Ordering::Acquire) {
                // Dropping the writer removes its temporary file.
                return Err(StoreError::Internal("upload cancelled".into()));
            }
            writer.commit()?;
            Ok((id, hasher.finish()))
        });
        Mode::File {
            tx,
            cancelled,
            task,
        }
    }

    /// Ends the body: makes the data durable and returns its digests.
    pub async fn finish(mut self) -> Result<Staged, StoreError> {
        let set = self.set.clone();
        match self.mode.take().expect("mode is present until finish") {
            Mode::Memory { buf, hasher } => {
                let content = match &set.codec {
                    Some(codec) => {
                        StagedContent::InlineShards(ecio::encode_inline(codec, &self.order, &buf)?)
                    }
                    None => StagedContent::Inline(buf),
                };
                Ok(Staged {
                    digests: hasher.finish(),
                    content: Some(content),
                    set,
                })
            }
            Mode::File { tx, task, .. } => {
                drop(tx);
                let (id, digests) = task
                    .await
                    .map_err(|e| StoreError::Internal(format!("data writer panicked: {e}")))??;
                Ok(Staged {
                    digests,
                    content: Some(StagedContent::File(id)),
                    set,
                })
            }
        }
    }
}

impl Drop for StagingWriter {
    fn drop(&mut self) {
        // An unfinished body (client went away, bad signature, bad digest): tell the writer
        // thread not to commit before closing its channel, so its temporary file is removed.
        if let Some(Mode::File { tx, cancelled, .. }) = self.mode.take() {
            cancelled.store(true, Ordering::Release);
            drop(tx);
        }
    }
}
