//! The erasure layer: Reed–Solomon codec, block layout, bitrot hashes and placement.
//!
//! Pure functions over byte slices: no I/O, no async, nothing about drives or HTTP. The object
//! layer cuts a body into blocks of [`BLOCK_SIZE`] bytes and, for each block:
//!
//! 1. [`ErasureCodec::encode_block`] splits it into `K` data shards (the last zero-padded) and
//!    computes `M` parity shards with `reed-solomon-simd`;
//! 2. [`frame_shard_block`] prefixes each shard with its 32-byte bitrot hash, keyed by shard
//!    index and block number; the frames of one shard index, concatenated, are that shard's
//!    file on its drive ([`ErasureCodec::shard_file_size`]);
//! 3. on read, [`ErasureCodec::blocks_for_range`] names the blocks (and shard-file offsets) a
//!    byte range touches, [`verify_shard_block`] checks each frame, and
//!    [`ErasureCodec::decode_block`] rebuilds the block from any `K` good shards — without any
//!    decoding when all data shards are good;
//! 4. healing calls [`ErasureCodec::reconstruct_missing`] to rebuild lost data and parity shards.
//!
//! [`set_for_key`] and [`shard_order`] decide which erasure set and which drive of it holds each
//! shard of an object.
//!
//! Persisted-format decisions made here (changing any needs a format version and a migration):
//! the shard size rule ([`ErasureCodec::shard_size`], 64-byte aligned), the frame layout
//! (`hash || shard`), the bitrot hash and its keying ([`BitrotAlgorithm`]), the parity bytes of
//! `reed-solomon-simd` (stable across its versions for 64-byte multiples), and the placement
//! hash ([`object_hash`]).

mod bitrot;
mod codec;
mod geometry;
mod layout;
mod placement;

#[cfg(test)]
mod tests;

pub use bitrot::{
    frame_shard_block, shard_block_hash, verify_shard_block, BitrotAlgorithm, DEFAULT_BITROT,
    HASH_LEN,
};
pub use codec::ErasureCodec;
pub use geometry::{ErasureGeometry, MAX_SET_SIZE, MAX_SHARDS};
pub use layout::{BlockSlice, BlockSlices, BLOCK_SIZE, SHARD_ALIGN};
pub use placement::{choose_pool, object_hash, set_for_key, shard_order};

/// Everything that can go wrong in the erasure layer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErasureError {
    #[error("invalid erasure geometry {data}+{parity}: {reason}")]
    InvalidGeometry {
        data: usize,
        parity: usize,
        reason: &'static str,
    },
    #[error("invalid block size {0}: must be at least 1 byte")]
    InvalidBlockSize(usize),
    #[error("block of {len} bytes is larger than the block size {block_size}")]
    BlockTooLarge { len: usize, block_size: usize },
    #[error("expected {expected} shards, got {got}")]
    ShardCount { expected: usize, got: usize },
    #[error("shard {index} has {got} bytes, expected {expected}")]
    ShardSize {
        index: usize,
        expected: usize,
        got: usize,
    },
    #[error("too few shards to rebuild the block: {present} present, {needed} needed")]
    TooFewShards { present: usize, needed: usize },
    #[error("bitrot in shard {shard}, block {block}")]
    Bitrot { shard: usize, block: u64 },
    #[error("range {start}..{end} is not inside an object of {size} bytes")]
    InvalidRange { start: u64, end: u64, size: u64 },
    #[error("reed-solomon: {0}")]
    Codec(#[from] reed_solomon_simd::Error),
}
