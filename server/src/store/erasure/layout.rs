//! Block layout: how an object of `n` bytes becomes blocks, shards and shard files.
//!
//! An object is cut into blocks of `block_size` bytes (the last one shorter). Every block is
//! split into `K` data shards of [`ErasureCodec::shard_size`] bytes and `M` parity shards of the
//! same size. A shard file holds, for each block in order, one frame: `hash (32 bytes) || shard`.
//! Every frame but the last has the same length, so the frame of block `b` starts at
//! `b * framed_len(block_size)`: a ranged read seeks straight to the blocks it needs.

use std::ops::Range;

use super::{ErasureCodec, ErasureError, HASH_LEN};

/// Default block size: 1 MiB of object data per encoded block.
pub const BLOCK_SIZE: usize = 1 << 20;

/// Shard sizes are rounded up to a multiple of this when there is parity. 64 bytes is what the
/// SIMD kernels of `reed-solomon-simd` work on, and the crate guarantees identical parity bytes
/// across all its versions only for multiples of 64 (v3 also accepts any even size). The cost
/// is at most 63 padding bytes per shard per block.
pub const SHARD_ALIGN: usize = 64;

impl ErasureCodec {
    /// Bytes in each of the `K + M` shards of a block of `block_len` bytes:
    /// `ceil(block_len / K)` rounded up to [`SHARD_ALIGN`], or not rounded at all without
    /// parity (`M = 0`: no Reed–Solomon, so a single drive stores the block as it is).
    /// An empty block has empty shards.
    pub fn shard_size(&self, block_len: usize) -> usize {
        if block_len == 0 {
            return 0;
        }
        let size = block_len.div_ceil(self.geometry().data);
        if self.geometry().parity == 0 {
            size
        } else {
            size.next_multiple_of(SHARD_ALIGN)
        }
    }

    /// Bytes of one frame (`hash || shard`) for a block of `block_len` bytes.
    pub fn framed_len(&self, block_len: usize) -> usize {
        HASH_LEN + self.shard_size(block_len)
    }

    /// Blocks an object of `object_size` bytes is cut into (none for an empty object).
    pub fn block_count(&self, object_size: u64) -> u64 {
        object_size.div_ceil(self.block_size() as u64)
    }

    /// Bytes of block `block` of an object of `object_size` bytes (0 past the end).
    pub fn block_len(&self, object_size: u64, block: u64) -> usize {
        let block_size = self.block_size() as u64;
        let start = block.saturating_mul(block_size);
        // Bounded by block_size, which is a usize.
        object_size.saturating_sub(start).min(block_size) as usize
    }

    /// Size of each of the `K + M` shard files of an object of `object_size` bytes: one frame
    /// per block. Every shard index has the same file size.
    pub fn shard_file_size(&self, object_size: u64) -> u64 {
        let block_size = self.block_size() as u64;
        let full = object_size / block_size;
        let tail = (object_size % block_size) as usize;
        let tail_frame = if tail == 0 { 0 } else { self.framed_len(tail) };
        full * self.framed_len(self.block_size()) as u64 + tail_frame as u64
    }

    /// Where the frame of block `block` starts in a shard file.
    pub fn shard_file_offset(&self, block: u64) -> u64 {
        block * self.framed_len(self.block_size()) as u64
    }

    /// The blocks a byte range of an object touches, in order, with the part of each decoded
    /// block that belongs to the range and where its frame lies in every shard file. An empty
    /// range touches no block.
    pub fn blocks_for_range(
        &self,
        object_size: u64,
        range: Range<u64>,
    ) -> Result<BlockSlices, ErasureError> {
        if range.start > range.end || range.end > object_size {
            return Err(ErasureError::InvalidRange {
                start: range.start,
                end: range.end,
                size: object_size,
            });
        }
        let block_size = self.block_size() as u64;
        let (next, end_block) = if range.is_empty() {
            (0, 0)
        } else {
            (range.start / block_size, (range.end - 1) / block_size + 1)
        };
        Ok(BlockSlices {
            codec: *self,
            object_size,
            range,
            next,
            end_block,
        })
    }
}

/// One block touched by a byte range (see [`ErasureCodec::blocks_for_range`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSlice {
    /// Block number within the object.
    pub block: u64,
    /// Bytes in this block (the `block_len` to decode it with).
    pub block_len: usize,
    /// The bytes of the decoded block that belong to the range.
    pub within: Range<usize>,
    /// Offset of this block's frame in every shard file.
    pub file_offset: u64,
    /// Length of this block's frame (`hash || shard`) in every shard file.
    pub framed_len: usize,
}

/// Iterator over the [`BlockSlice`]s of a range; lazy, so a range over a huge object costs
/// nothing up front.
#[derive(Clone, Debug)]
pub struct BlockSlices {
    codec: ErasureCodec,
    object_size: u64,
    range: Range<u64>,
    next: u64,
    end_block: u64,
}

impl Iterator for BlockSlices {
    type Item = BlockSlice;

    fn next(&mut self) -> Option<BlockSlice> {
        if self.next >= self.end_block {
            return None;
        }
        let block = self.next;
        self.next += 1;
        let block_size = self.codec.block_size() as u64;
        let block_start = block * block_size;
        let block_len = self.codec.block_len(self.object_size, block);
        // Both bounds lie within the block, so they fit in a usize.
        let from = self.range.start.saturating_sub(block_start) as usize;
        let to = (self.range.end - block_start).min(block_len as u64) as usize;
        Some(BlockSlice {
            block,
            block_len,
            within: from..to,
            file_offset: self.codec.shard_file_offset(block),
            framed_len: self.codec.framed_len(block_len),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.end_block - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl ExactSizeIterator for BlockSlices {}
