//! Erasure-coded data I/O for a set of drives on this server: writing a body as framed shard
//! blocks to one file per drive, and reading a byte range back from any K good shards,
//! verifying each shard block's bitrot hash and decoding only when a data shard is missing or
//! bad. Runs on blocking threads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::drive::{DataReader, DataWriter, STREAM_TIMEOUT};
use super::erasure::{frame_shard_block, verify_shard_block, ErasureCodec, DEFAULT_BITROT};
use super::quorum;
use super::set::DriveSet;
use super::StoreError;

/// How long a drive whose shard stream is full may hold a block that a write quorum of the
/// other drives already took.
const LAG_GRACE: Duration = Duration::from_secs(1);
/// How long a read waits for a remote shard when a spare shard could stand in for it.
const SPARE_PATIENCE: Duration = Duration::from_secs(1);

/// A byte range `from..to` of one stored part (`data_id`, `part_size` bytes).
pub struct Segment {
    pub data_id: String,
    pub part_size: u64,
    pub from: u64,
    pub to: u64,
}

/// Encodes one block and returns its framed shards, by shard index.
pub fn encode_framed(
    codec: &ErasureCodec,
    block: &[u8],
    block_no: u64,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let shards = codec
        .encode_block(block)
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    Ok(shards
        .iter()
        .enumerate()
        .map(|(i, s)| frame_shard_block(DEFAULT_BITROT, i, block_no, s))
        .collect())
}

/// Framed inline shards of a small body (one block), placed per drive by `order`.
pub fn encode_inline(
    codec: &ErasureCodec,
    order: &[usize],
    body: &[u8],
) -> Result<Vec<Vec<u8>>, StoreError> {
    let framed = encode_framed(codec, body, 0)?;
    let mut per_drive = vec![Vec::new(); order.len()];
    for (i, f) in framed.into_iter().enumerate() {
        per_drive[order[i]] = f;
    }
    Ok(per_drive)
}

/// Decodes an inline object from the framed shards gathered by shard index; also says whether
/// a data shard was missing or corrupt (the body was rebuilt from parity).
pub fn decode_inline(
    codec: &ErasureCodec,
    shards: &[Option<Vec<u8>>],
    size: u64,
) -> Result<(Vec<u8>, bool), StoreError> {
    let mut verified: Vec<Option<Vec<u8>>> = shards
        .iter()
        .enumerate()
        .map(|(i, f)| {
            f.as_ref().and_then(|f| {
                verify_shard_block(DEFAULT_BITROT, i, 0, f)
                    .ok()
                    .map(<[u8]>::to_vec)
            })
        })
        .collect();
    verified.resize(codec.geometry().total(), None);
    let rebuilt = verified[..codec.geometry().data]
        .iter()
        .any(Option::is_none);
    codec
        .decode_block(&mut verified, size as usize)
        .map(|body| (body, rebuilt))
        .map_err(|e| StoreError::Internal(format!("object cannot be decoded: {e}")))
}

/// Writes a body as one shard file per drive of the set. Drives that fail are dropped as
/// long as a write quorum remains.
pub struct ShardFilesWriter {
    codec: ErasureCodec,
    order: Vec<usize>,
    writers: Vec<Option<Box<dyn DataWriter>>>,
    buf: Vec<u8>,
    block_no: u64,
    quorum: usize,
}

impl ShardFilesWriter {
    pub fn create(
        set: &DriveSet,
        codec: &ErasureCodec,
        order: Vec<usize>,
        id: &str,
    ) -> Result<ShardFilesWriter, StoreError> {
        let all: Vec<usize> = (0..set.len()).collect();
        let writers: Vec<Option<Box<dyn DataWriter>>> = set.parallel(&all, |_, slot| {
            slot.and_then(|s| {
                s.drive
                    .create(id)
                    .map_err(|e| tracing::warn!(error = %e, "drive cannot take a shard"))
                    .ok()
            })
        });
        let w = ShardFilesWriter {
            codec: *codec,
            order,
            writers,
            buf: Vec::with_capacity(codec.block_size()),
            block_no: 0,
            quorum: set.write_quorum(),
        };
        w.check_quorum()?;
        Ok(w)
    }

    fn check_quorum(&self) -> Result<(), StoreError> {
        let have = self.writers.iter().filter(|w| w.is_some()).count();
        if have < self.quorum {
            return Err(StoreError::QuorumLost {
                have,
                need: self.quorum,
            });
        }
        Ok(())
    }

    pub fn write(&mut self, mut data: &[u8]) -> Result<(), StoreError> {
        while !data.is_empty() {
            let room = self.codec.block_size() - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == self.codec.block_size() {
                self.flush_block()?;
            }
        }
        Ok(())
    }

    fn drop_writer(&mut self, drive: usize, why: &dyn std::fmt::Display) {
        tracing::warn!(drive, error = %why, "shard write failed");
        self.writers[drive] = None;
    }

    /// Hands each drive its shard of the block. A drive whose stream is full waits after the
    /// others; once a quorum took the block, it gets [`LAG_GRACE`] to make room, and is left
    /// out of this object if it does not (a hung peer must not hold the upload).
    fn flush_block(&mut self) -> Result<(), StoreError> {
        let framed = encode_framed(&self.codec, &self.buf, self.block_no)?;
        let mut taken = 0;
        let mut full = Vec::new();
        for (i, frame) in framed.iter().enumerate() {
            let drive = self.order[i];
            let Some(w) = &mut self.writers[drive] else {
                continue;
            };
            match w.offer(frame, Duration::ZERO) {
                Ok(true) => taken += 1,
                Ok(false) => full.push(i),
                Err(e) => self.drop_writer(drive, &e),
            }
        }
        for i in full {
            let drive = self.order[i];
            let Some(w) = &mut self.writers[drive] else {
                continue;
            };
            let patience = match (taken >= self.quorum, w.responsive()) {
                (true, true) => LAG_GRACE,
                (true, false) => Duration::ZERO,
                (false, _) => STREAM_TIMEOUT,
            };
            match w.offer(&framed[i], patience) {
                Ok(true) => taken += 1,
                Ok(false) => self.drop_writer(
                    drive,
                    &format!("fell behind for {patience:?}; writing without it"),
                ),
                Err(e) => self.drop_writer(drive, &e),
            }
        }
        self.buf.clear();
        self.block_no += 1;
        self.check_quorum()
    }

    /// Writes the last block and makes every shard file durable, in parallel. Returns whether
    /// every drive took its shard.
    pub fn commit(mut self) -> Result<bool, StoreError> {
        if !self.buf.is_empty() {
            self.flush_block()?;
        }
        let writers: Vec<Mutex<Option<Box<dyn DataWriter>>>> = std::mem::take(&mut self.writers)
            .into_iter()
            .map(Mutex::new)
            .collect();
        let total = writers.len();
        let quiet: Vec<bool> = writers
            .iter()
            .map(|w| {
                let w = w.lock().unwrap_or_else(|p| p.into_inner());
                w.as_ref().is_some_and(|w| !w.responsive())
            })
            .collect();
        let ok = quorum::run(
            writers.len(),
            self.quorum,
            Result::is_ok,
            |i| quiet[i],
            |i| {
                let writer = writers[i].lock().unwrap_or_else(|p| p.into_inner()).take();
                match writer {
                    Some(w) => w.commit(),
                    None => Err(std::io::Error::other("the drive took no shard")),
                }
            },
        )
        .into_iter()
        .filter(Result::is_ok)
        .count();
        if ok < self.quorum {
            return Err(StoreError::QuorumLost {
                have: ok,
                need: self.quorum,
            });
        }
        Ok(ok == total)
    }
}

/// The shard files of one segment, by shard index (`None`: missing on its drive).
pub struct OpenSegment {
    seg: Segment,
    files: Vec<Option<Box<dyn DataReader>>>,
}

pub fn open_segments(
    set: &Arc<DriveSet>,
    order: &[usize],
    segments: Vec<Segment>,
) -> Result<Vec<OpenSegment>, StoreError> {
    let k = set.geometry.data;
    let codec = set.codec.expect("erasure-coded reads have a codec");
    segments
        .into_iter()
        .map(|seg| {
            // Readers start at the segment's first block: remote drives stream from there.
            let start = codec
                .blocks_for_range(seg.part_size, seg.from..seg.to)
                .ok()
                .and_then(|mut b| b.next().map(|s| s.file_offset))
                .unwrap_or(0);
            let files: Vec<Option<Box<dyn DataReader>>> = set.parallel(order, |_, slot| {
                slot.and_then(|s| s.drive.open_at(&seg.data_id, start).ok())
            });
            let have = files.iter().filter(|f| f.is_some()).count();
            if have < k {
                return Err(StoreError::QuorumLost { have, need: k });
            }
            Ok(OpenSegment { seg, files })
        })
        .collect()
}

pub(crate) fn read_frame(
    file: &mut dyn DataReader,
    offset: u64,
    len: usize,
) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(offset, &mut buf)?;
    Ok(buf)
}

/// A data file that a read found with missing or corrupt shards, and on which drives.
pub struct Damaged {
    pub data_id: String,
    pub part_size: u64,
    pub drives: Vec<usize>,
}

/// Streams the segments' bytes, decoding block by block from K good shards. Returns the data
/// files whose shards were missing or corrupt, for healing.
pub fn stream_segments(
    set: &DriveSet,
    order: &[usize],
    segments: Vec<OpenSegment>,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
) -> Vec<Damaged> {
    let codec = set.codec.expect("erasure-coded reads have a codec");
    let k = codec.geometry().data;
    let total = codec.geometry().total();
    let mut damaged = Vec::new();
    for mut open in segments {
        let mut bad: Vec<usize> = (0..total).filter(|&i| open.files[i].is_none()).collect();
        let blocks = match codec.blocks_for_range(open.seg.part_size, open.seg.from..open.seg.to) {
            Ok(b) => b,
            Err(e) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                return damaged;
            }
        };
        for slice in blocks {
            let mut shards: Vec<Option<Vec<u8>>> = vec![None; total];
            let mut good = 0;
            // Data shards first: with all K of them no decoding is needed. A remote shard
            // that sends nothing for a while is skipped for a spare one while spares remain.
            for (i, out) in shards.iter_mut().enumerate() {
                if good == k {
                    break;
                }
                let left = open.files[i..].iter().filter(|f| f.is_some()).count();
                let file = &mut open.files[i];
                let Some(f) = file.as_mut() else { continue };
                let patience = match (left > k - good, f.responsive()) {
                    (true, true) => SPARE_PATIENCE,
                    (true, false) => Duration::ZERO,
                    (false, _) => STREAM_TIMEOUT,
                };
                let mut frame = vec![0u8; slice.framed_len];
                let read = f.read_exact_within(slice.file_offset, &mut frame, patience);
                if let Err(e) = &read {
                    if patience < STREAM_TIMEOUT && e.kind() == std::io::ErrorKind::TimedOut {
                        // Slow, not damaged: nothing to heal.
                        tracing::warn!(data_id = %open.seg.data_id, shard = i, error = %e, "slow shard; reading a spare one");
                        *file = None;
                        continue;
                    }
                }
                let shard = read
                    .map(|()| frame)
                    .map_err(|e| e.to_string())
                    .and_then(|frame| {
                        verify_shard_block(DEFAULT_BITROT, i, slice.block, &frame)
                            .map(<[u8]>::to_vec)
                            .map_err(|e| e.to_string())
                    });
                match shard {
                    Ok(shard) => {
                        *out = Some(shard);
                        good += 1;
                    }
                    Err(e) => {
                        tracing::warn!(data_id = %open.seg.data_id, shard = i, block = slice.block, error = %e, "bad shard; reading around it");
                        *file = None;
                        bad.push(i);
                    }
                }
            }
            if shards[..k].iter().any(Option::is_none) {
                set.note_reconstructed();
            }
            let block = match codec.decode_block(&mut shards, slice.block_len) {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.blocking_send(Err(std::io::Error::other(format!(
                        "block {} cannot be decoded: {e}",
                        slice.block
                    ))));
                    return damaged;
                }
            };
            let bytes = Bytes::from(block).slice(slice.within.clone());
            if tx.blocking_send(Ok(bytes)).is_err() {
                break;
            }
        }
        if !bad.is_empty() {
            damaged.push(Damaged {
                data_id: open.seg.data_id.clone(),
                part_size: open.seg.part_size,
                drives: bad.iter().map(|&i| order[i]).collect(),
            });
        }
    }
    damaged
}
