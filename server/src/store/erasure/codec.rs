//! Per-block Reed–Solomon encoding and decoding.
//!
//! Shard `i < K` holds bytes `i*s .. (i+1)*s` of the block (`s` = shard size, the tail
//! zero-padded); shard `K + j` is parity `j` of `reed-solomon-simd` over the `K` data shards.

use std::cell::RefCell;

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use super::{ErasureError, ErasureGeometry, BLOCK_SIZE};

/// The codec of one erasure set: its geometry and its block size. Cheap to copy; holds no
/// buffers (the Reed–Solomon work space is cached per thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErasureCodec {
    geometry: ErasureGeometry,
    block_size: usize,
}

impl ErasureCodec {
    /// A codec for `geometry` cutting objects into blocks of `block_size` bytes.
    pub fn new(geometry: ErasureGeometry, block_size: usize) -> Result<Self, ErasureError> {
        geometry.validate()?;
        if block_size == 0 {
            return Err(ErasureError::InvalidBlockSize(block_size));
        }
        Ok(ErasureCodec {
            geometry,
            block_size,
        })
    }

    /// A codec with the default 1 MiB [`BLOCK_SIZE`].
    pub fn with_default_block_size(geometry: ErasureGeometry) -> Result<Self, ErasureError> {
        Self::new(geometry, BLOCK_SIZE)
    }

    pub fn geometry(&self) -> ErasureGeometry {
        self.geometry
    }

    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Splits one block (at most `block_size` bytes; the last block of an object may be
    /// shorter) into `K` data shards followed by `M` parity shards, all
    /// [`ErasureCodec::shard_size`] bytes long.
    pub fn encode_block(&self, block: &[u8]) -> Result<Vec<Vec<u8>>, ErasureError> {
        if block.len() > self.block_size {
            return Err(ErasureError::BlockTooLarge {
                len: block.len(),
                block_size: self.block_size,
            });
        }
        let ErasureGeometry { data, parity } = self.geometry;
        let size = self.shard_size(block.len());
        let mut shards = Vec::with_capacity(data + parity);
        for i in 0..data {
            let start = (i * size).min(block.len());
            let end = (start + size).min(block.len());
            let mut shard = Vec::with_capacity(size);
            shard.extend_from_slice(&block[start..end]);
            shard.resize(size, 0);
            shards.push(shard);
        }
        if parity > 0 {
            let parity_shards = encode_parity(data, parity, size, &shards)?;
            shards.extend(parity_shards);
        }
        Ok(shards)
    }

    /// Rebuilds a block of `block_len` bytes from any `K` of its shards (`None` = missing or
    /// failed its bitrot check). When all `K` data shards are present the block is their
    /// concatenation and nothing is decoded. Data shards that had to be decoded are left in
    /// `shards`, so a caller that heals can reuse them.
    pub fn decode_block(
        &self,
        shards: &mut [Option<Vec<u8>>],
        block_len: usize,
    ) -> Result<Vec<u8>, ErasureError> {
        let mut block = Vec::with_capacity(block_len);
        self.decode_block_into(shards, block_len, &mut block)?;
        Ok(block)
    }

    /// [`ErasureCodec::decode_block`] appending the block to `out`, so a reader can reuse one
    /// buffer for every block (a fresh 1 MiB allocation per block costs page faults that can
    /// exceed the concatenation itself).
    pub fn decode_block_into(
        &self,
        shards: &mut [Option<Vec<u8>>],
        block_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ErasureError> {
        let size = self.check_shards(shards, block_len)?;
        let data = self.geometry.data;
        if shards[..data].iter().any(Option::is_none) {
            self.restore_data(shards, size)?;
        }
        out.reserve(block_len);
        let mut left = block_len;
        for shard in shards[..data].iter().flatten() {
            let take = left.min(size);
            out.extend_from_slice(&shard[..take]);
            left -= take;
        }
        Ok(())
    }

    /// Rebuilds every missing shard, data and parity, from any `K` present ones, for healing.
    /// On success every entry of `shards` is `Some`, byte-identical to what
    /// [`ErasureCodec::encode_block`] produced; the result lists the indexes rebuilt.
    pub fn reconstruct_missing(
        &self,
        shards: &mut [Option<Vec<u8>>],
        block_len: usize,
    ) -> Result<Vec<usize>, ErasureError> {
        let size = self.check_shards(shards, block_len)?;
        let ErasureGeometry { data, parity } = self.geometry;
        let missing: Vec<usize> = (0..shards.len()).filter(|&i| shards[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(missing);
        }
        if missing[0] < data {
            self.restore_data(shards, size)?;
        }
        if missing.last().is_some_and(|&i| i >= data) {
            let originals: Vec<&[u8]> =
                shards[..data].iter().flatten().map(Vec::as_slice).collect();
            let rebuilt = encode_parity(data, parity, size, &originals)?;
            for (j, shard) in rebuilt.into_iter().enumerate() {
                let slot = &mut shards[data + j];
                if slot.is_none() {
                    *slot = Some(shard);
                }
            }
        }
        Ok(missing)
    }

    /// Checks the shard count and the length of every present shard; returns the shard size.
    fn check_shards(
        &self,
        shards: &[Option<Vec<u8>>],
        block_len: usize,
    ) -> Result<usize, ErasureError> {
        if block_len > self.block_size {
            return Err(ErasureError::BlockTooLarge {
                len: block_len,
                block_size: self.block_size,
            });
        }
        let total = self.geometry.total();
        if shards.len() != total {
            return Err(ErasureError::ShardCount {
                expected: total,
                got: shards.len(),
            });
        }
        let size = self.shard_size(block_len);
        for (index, shard) in shards.iter().enumerate() {
            if let Some(shard) = shard {
                if shard.len() != size {
                    return Err(ErasureError::ShardSize {
                        index,
                        expected: size,
                        got: shard.len(),
                    });
                }
            }
        }
        Ok(size)
    }

    /// Fills in the missing data shards from the first `K` present shards.
    fn restore_data(
        &self,
        shards: &mut [Option<Vec<u8>>],
        size: usize,
    ) -> Result<(), ErasureError> {
        let ErasureGeometry { data, parity } = self.geometry;
        let present = shards.iter().filter(|s| s.is_some()).count();
        if present < data {
            return Err(ErasureError::TooFewShards {
                present,
                needed: data,
            });
        }
        if size == 0 {
            // An empty block: nothing to decode, every shard is empty.
            for shard in shards[..data].iter_mut() {
                shard.get_or_insert_with(Vec::new);
            }
            return Ok(());
        }
        // present >= data and some data shard is missing, so parity > 0.
        DECODER.with(|cell| {
            let mut cached = cell.borrow_mut();
            let decoder = match cached.as_mut() {
                Some(decoder) => {
                    decoder.reset(data, parity, size)?;
                    decoder
                }
                None => cached.insert(ReedSolomonDecoder::new(data, parity, size)?),
            };
            // Any K shards will do; data shards first, they cost nothing to "decode".
            let present = shards
                .iter()
                .enumerate()
                .filter_map(|(index, shard)| Some((index, shard.as_ref()?)));
            for (index, shard) in present.take(data) {
                if index < data {
                    decoder.add_original_shard(index, shard)?;
                } else {
                    decoder.add_recovery_shard(index - data, shard)?;
                }
            }
            let restored = decoder.decode()?;
            for (index, shard) in restored.restored_original_iter() {
                shards[index] = Some(shard.to_vec());
            }
            Ok(())
        })
    }
}

thread_local! {
    /// Per-thread Reed–Solomon encoder and decoder, reset for each block so their work space
    /// (about the size of a block) is allocated once per thread instead of once per block:
    /// that halves the time of `encode_block` (see benches/erasure.rs). A thread keeps at most
    /// a few MiB this way, freed when the thread ends.
    static ENCODER: RefCell<Option<ReedSolomonEncoder>> = const { RefCell::new(None) };
    static DECODER: RefCell<Option<ReedSolomonDecoder>> = const { RefCell::new(None) };
}

/// The `parity` parity shards of `originals` (`data` shards of `size` bytes each).
fn encode_parity<T: AsRef<[u8]>>(
    data: usize,
    parity: usize,
    size: usize,
    originals: &[T],
) -> Result<Vec<Vec<u8>>, ErasureError> {
    if size == 0 {
        return Ok(vec![Vec::new(); parity]);
    }
    ENCODER.with(|cell| {
        let mut cached = cell.borrow_mut();
        let encoder = match cached.as_mut() {
            Some(encoder) => {
                encoder.reset(data, parity, size)?;
                encoder
            }
            None => cached.insert(ReedSolomonEncoder::new(data, parity, size)?),
        };
        for shard in originals {
            encoder.add_original_shard(shard)?;
        }
        let result = encoder.encode()?;
        Ok(result.recovery_iter().map(<[u8]>::to_vec).collect())
    })
}
