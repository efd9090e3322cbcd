use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, RngCore, SeedableRng};

use super::*;

/// The geometries the round-trip tests cover.
const GEOMETRIES: [(usize, usize); 7] = [(1, 0), (2, 2), (3, 1), (4, 2), (6, 2), (8, 4), (12, 4)];

/// A deliberately odd block size: not a multiple of 64 nor of any K above.
const TEST_BLOCK: usize = 1000;

fn codec(data: usize, parity: usize, block_size: usize) -> ErasureCodec {
    ErasureCodec::new(ErasureGeometry::new(data, parity).unwrap(), block_size).unwrap()
}

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// Object sizes around every boundary of the layout of `codec`.
fn interesting_sizes(codec: &ErasureCodec) -> Vec<u64> {
    let k = codec.geometry().data as u64;
    let block = codec.block_size() as u64;
    let shard = (block.div_ceil(k)).max(1);
    let mut sizes = vec![0, 1, 2, k.saturating_sub(1), k, k + 1];
    for edge in [shard, 2 * shard, block, 2 * block, 3 * block] {
        sizes.extend([edge - 1, edge, edge + 1]);
    }
    sizes.push(3 * block + 7);
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// Every set of `1..=max` indexes out of `0..n`.
fn subsets_up_to(n: usize, max: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for mask in 1u32..(1 << n) {
        if mask.count_ones() as usize <= max {
            out.push((0..n).filter(|i| mask & (1 << i) != 0).collect());
        }
    }
    out
}

/// Loss patterns of up to `parity` shards: all of them for small sets, a random sample else.
fn loss_patterns(rng: &mut StdRng, total: usize, parity: usize) -> Vec<Vec<usize>> {
    if total <= 8 {
        return subsets_up_to(total, parity);
    }
    (0..100)
        .map(|_| {
            let lost = rng.gen_range(1..=parity);
            let mut lost = sample(rng, total, lost).into_vec();
            lost.sort_unstable();
            lost
        })
        .collect()
}

fn with_lost(shards: &[Vec<u8>], lost: &[usize]) -> Vec<Option<Vec<u8>>> {
    shards
        .iter()
        .enumerate()
        .map(|(i, s)| (!lost.contains(&i)).then(|| s.clone()))
        .collect()
}

// ---------------------------------------------------------------- geometry

#[test]
fn default_geometry_follows_the_design() {
    let expected = [
        (1, 1, 0),
        (2, 1, 1),
        (3, 2, 1),
        (4, 2, 2),
        (5, 3, 2),
        (6, 4, 2),
        (7, 5, 2),
        (8, 5, 3),
        (11, 8, 3),
        (12, 8, 4),
        (16, 12, 4),
    ];
    for (set, data, parity) in expected {
        assert_eq!(
            ErasureGeometry::default_for(set).unwrap(),
            ErasureGeometry { data, parity },
            "set of {set}"
        );
    }
    for set in 1..=MAX_SET_SIZE {
        let g = ErasureGeometry::default_for(set).unwrap();
        assert_eq!(g.total(), set);
        assert!(g.parity <= g.data, "{g}");
    }
    assert!(ErasureGeometry::default_for(0).is_err());
    assert!(ErasureGeometry::default_for(17).is_err());
}

#[test]
fn geometry_validation_and_quorums() {
    assert!(ErasureGeometry::new(0, 2).is_err());
    assert!(ErasureGeometry::new(200, 57).is_err());
    assert!(ErasureGeometry::new(usize::MAX, 1).is_err());
    assert!(ErasureGeometry::new(128, 128).is_ok());
    assert!(ErasureGeometry::new(1, 0).is_ok());
    let q = |d, p| {
        let g = ErasureGeometry::new(d, p).unwrap();
        (g.write_quorum(), g.read_quorum())
    };
    assert_eq!(q(1, 0), (1, 1));
    assert_eq!(q(1, 1), (2, 1));
    assert_eq!(q(2, 2), (3, 2));
    assert_eq!(q(4, 2), (4, 4));
    assert_eq!(q(8, 8), (9, 8));
    assert_eq!(q(12, 4), (12, 12));
    assert!(ErasureCodec::new(ErasureGeometry { data: 0, parity: 1 }, 10).is_err());
    assert_eq!(
        ErasureCodec::new(ErasureGeometry::new(2, 1).unwrap(), 0),
        Err(ErasureError::InvalidBlockSize(0))
    );
}

// ---------------------------------------------------------------- layout

#[test]
fn shard_sizes() {
    let mib = BLOCK_SIZE;
    assert_eq!(codec(4, 2, mib).shard_size(mib), 262_144);
    assert_eq!(codec(8, 4, mib).shard_size(mib), 131_072);
    // ceil(1 MiB / 6) = 174_763, aligned up to 64.
    assert_eq!(codec(6, 2, mib).shard_size(mib), 174_784);
    assert_eq!(codec(4, 2, mib).shard_size(1), 64);
    assert_eq!(codec(4, 2, mib).shard_size(0), 0);
    // No parity, no alignment: a single drive stores the block as it is.
    assert_eq!(codec(1, 0, mib).shard_size(12_345), 12_345);
    for (d, p) in GEOMETRIES {
        let c = codec(d, p, TEST_BLOCK);
        for len in 1..=TEST_BLOCK {
            let s = c.shard_size(len);
            assert!(s * d >= len, "{d}+{p} len {len}");
            if p > 0 {
                assert_eq!(s % SHARD_ALIGN, 0);
                assert!(
                    (s - SHARD_ALIGN) * d < len,
                    "{d}+{p} len {len}: not minimal"
                );
            }
        }
    }
}

#[test]
fn block_and_file_sizes() {
    let c = codec(4, 2, TEST_BLOCK);
    assert_eq!(c.block_count(0), 0);
    assert_eq!(c.block_count(1), 1);
    assert_eq!(c.block_count(1000), 1);
    assert_eq!(c.block_count(1001), 2);
    assert_eq!(c.block_len(2500, 0), 1000);
    assert_eq!(c.block_len(2500, 2), 500);
    assert_eq!(c.block_len(2500, 3), 0);
    assert_eq!(c.shard_file_size(0), 0);
    // Full block: 32 + 256; tail of 500 bytes: 32 + 128.
    assert_eq!(c.framed_len(1000), 288);
    assert_eq!(c.shard_file_size(2500), 2 * 288 + 160);
    assert_eq!(c.shard_file_offset(2), 576);
}

/// The file size and offsets match shard files actually built frame by frame.
#[test]
fn shard_files_match_the_layout() {
    let mut rng = StdRng::seed_from_u64(1);
    for (d, p) in GEOMETRIES {
        let c = codec(d, p, TEST_BLOCK);
        for size in interesting_sizes(&c) {
            let object = random_bytes(&mut rng, size as usize);
            let mut files = vec![Vec::new(); d + p];
            for (b, block) in object.chunks(TEST_BLOCK).enumerate() {
                for (i, shard) in c.encode_block(block).unwrap().iter().enumerate() {
                    assert_eq!(files[i].len() as u64, c.shard_file_offset(b as u64));
                    files[i].extend(frame_shard_block(DEFAULT_BITROT, i, b as u64, shard));
                }
            }
            for file in &files {
                assert_eq!(
                    file.len() as u64,
                    c.shard_file_size(size),
                    "{d}+{p} size {size}"
                );
            }
        }
    }
}

/// `blocks_for_range` agrees with mapping every byte of the range to its block by hand.
#[test]
fn range_mapping_matches_brute_force() {
    for block_size in [1, 3, 7, 16] {
        let c = codec(2, 1, block_size);
        for size in 0..=40u64 {
            for start in 0..=size {
                for end in start..=size {
                    let mut expected: Vec<(u64, usize, usize)> = Vec::new();
                    for byte in start..end {
                        let block = byte / block_size as u64;
                        let at = (byte % block_size as u64) as usize;
                        match expected.last_mut() {
                            Some((b, _, to)) if *b == block => *to = at + 1,
                            _ => expected.push((block, at, at + 1)),
                        }
                    }
                    let slices: Vec<BlockSlice> =
                        c.blocks_for_range(size, start..end).unwrap().collect();
                    let got: Vec<(u64, usize, usize)> = slices
                        .iter()
                        .map(|s| (s.block, s.within.start, s.within.end))
                        .collect();
                    assert_eq!(got, expected, "bs {block_size} size {size} {start}..{end}");
                    assert_eq!(
                        c.blocks_for_range(size, start..end).unwrap().len(),
                        expected.len()
                    );
                    for s in &slices {
                        assert_eq!(s.block_len, c.block_len(size, s.block));
                        assert_eq!(s.file_offset, c.shard_file_offset(s.block));
                        assert_eq!(s.framed_len, c.framed_len(s.block_len));
                    }
                }
            }
            assert!(c.blocks_for_range(size, 0..size + 1).is_err());
            #[allow(clippy::reversed_empty_ranges)]
            let reversed = c.blocks_for_range(size, 1..0);
            assert!(reversed.is_err());
        }
    }
    // A range over a huge object is lazy and exact.
    let c = codec(4, 2, BLOCK_SIZE);
    let size = 5 << 40; // 5 TiB
    let mut slices = c.blocks_for_range(size, 3..size - 1).unwrap();
    assert_eq!(slices.len(), 5 << 20);
    assert_eq!(slices.next().unwrap().within, 3..BLOCK_SIZE);
    assert_eq!(slices.last().unwrap().within, 0..BLOCK_SIZE - 1);
}

// ---------------------------------------------------------------- codec

/// Every block of objects of every interesting size, in every geometry, decodes byte-identical
/// after losing any `M` shards, and healing rebuilds exactly the lost shards.
#[test]
fn round_trip_with_every_loss_up_to_parity() {
    let mut rng = StdRng::seed_from_u64(2);
    for (d, p) in GEOMETRIES {
        let c = codec(d, p, TEST_BLOCK);
        for size in interesting_sizes(&c) {
            let object = random_bytes(&mut rng, size as usize);
            let mut decoded = Vec::new();
            let blocks = object.chunks(TEST_BLOCK).count();
            for (b, block) in object.chunks(TEST_BLOCK).enumerate() {
                let shards = c.encode_block(block).unwrap();
                assert_eq!(shards.len(), d + p);
                assert!(shards.iter().all(|s| s.len() == c.shard_size(block.len())));
                let mut all = with_lost(&shards, &[]);
                decoded.extend(c.decode_block(&mut all, block.len()).unwrap());
                if b != 0 && b + 1 != blocks {
                    continue; // middle blocks are laid out like the first
                }
                for lost in loss_patterns(&mut rng, d + p, p) {
                    let mut present = with_lost(&shards, &lost);
                    let got = c.decode_block(&mut present, block.len()).unwrap();
                    assert!(got == block, "{d}+{p} size {size} lost {lost:?}");
                    let mut present = with_lost(&shards, &lost);
                    let rebuilt = c.reconstruct_missing(&mut present, block.len()).unwrap();
                    assert_eq!(rebuilt, lost);
                    for (i, shard) in present.iter().enumerate() {
                        assert!(
                            shard.as_deref() == Some(&shards[i][..]),
                            "{d}+{p} size {size} lost {lost:?}: shard {i} differs"
                        );
                    }
                }
            }
            assert!(decoded == object, "{d}+{p} size {size}");
        }
    }
}

#[test]
fn losing_more_than_parity_fails() {
    let mut rng = StdRng::seed_from_u64(3);
    for (d, p) in GEOMETRIES {
        let c = codec(d, p, TEST_BLOCK);
        let block = random_bytes(&mut rng, TEST_BLOCK - 1);
        let shards = c.encode_block(&block).unwrap();
        for _ in 0..20 {
            let lost = sample(&mut rng, d + p, p + 1).into_vec();
            let expected = Err(ErasureError::TooFewShards {
                present: d - 1,
                needed: d,
            });
            assert_eq!(
                c.decode_block(&mut with_lost(&shards, &lost), block.len()),
                expected
            );
            assert_eq!(
                c.reconstruct_missing(&mut with_lost(&shards, &lost), block.len())
                    .map(|_| ()),
                expected.map(|_| ())
            );
        }
    }
}

/// Full-size 1 MiB blocks in the geometries the benchmarks use.
#[test]
fn round_trip_full_blocks() {
    let mut rng = StdRng::seed_from_u64(4);
    for (d, p) in [(4, 2), (8, 4), (12, 4)] {
        let c = codec(d, p, BLOCK_SIZE);
        let block = random_bytes(&mut rng, BLOCK_SIZE);
        let shards = c.encode_block(&block).unwrap();
        for _ in 0..4 {
            let mut lost = sample(&mut rng, d + p, p).into_vec();
            lost.sort_unstable();
            let mut present = with_lost(&shards, &lost);
            assert!(c.decode_block(&mut present, BLOCK_SIZE).unwrap() == block);
            c.reconstruct_missing(&mut present, BLOCK_SIZE).unwrap();
            assert!(present
                .iter()
                .zip(&shards)
                .all(|(a, b)| a.as_ref() == Some(b)));
        }
    }
}

#[test]
fn decode_keeps_rebuilt_data_shards() {
    let c = codec(3, 2, TEST_BLOCK);
    let block: Vec<u8> = (0..TEST_BLOCK).map(|i| i as u8).collect();
    let shards = c.encode_block(&block).unwrap();
    let mut present = with_lost(&shards, &[0, 4]);
    c.decode_block(&mut present, block.len()).unwrap();
    assert_eq!(present[0].as_ref(), Some(&shards[0]));
    assert!(
        present[4].is_none(),
        "parity is left to reconstruct_missing"
    );
}

#[test]
fn codec_rejects_bad_input() {
    let c = codec(4, 2, TEST_BLOCK);
    assert_eq!(
        c.encode_block(&[0; TEST_BLOCK + 1]),
        Err(ErasureError::BlockTooLarge {
            len: TEST_BLOCK + 1,
            block_size: TEST_BLOCK
        })
    );
    let shards = c.encode_block(&[7; 100]).unwrap();
    let mut too_few: Vec<Option<Vec<u8>>> = shards[..5].iter().cloned().map(Some).collect();
    assert_eq!(
        c.decode_block(&mut too_few, 100),
        Err(ErasureError::ShardCount {
            expected: 6,
            got: 5
        })
    );
    let mut short = with_lost(&shards, &[]);
    short[5].as_mut().unwrap().pop();
    assert_eq!(
        c.reconstruct_missing(&mut short, 100),
        Err(ErasureError::ShardSize {
            index: 5,
            expected: 64,
            got: 63
        })
    );
    // The block length decides the shard size: a wrong one is caught, not mis-decoded.
    assert!(c.decode_block(&mut with_lost(&shards, &[]), 300).is_err());
    assert!(c
        .decode_block(&mut with_lost(&shards, &[]), TEST_BLOCK + 1)
        .is_err());
}

#[test]
fn empty_block() {
    for (d, p) in GEOMETRIES {
        let c = codec(d, p, TEST_BLOCK);
        let shards = c.encode_block(&[]).unwrap();
        assert_eq!(shards, vec![Vec::<u8>::new(); d + p]);
        let lost: Vec<usize> = (0..p).collect();
        let mut present = with_lost(&shards, &lost);
        assert_eq!(c.decode_block(&mut present, 0).unwrap(), Vec::<u8>::new());
        let mut present = with_lost(&shards, &lost);
        assert_eq!(c.reconstruct_missing(&mut present, 0).unwrap(), lost);
        assert!(present.iter().all(|s| s.as_deref() == Some(&[][..])));
    }
}

/// The parity bytes are persisted: a change in `reed-solomon-simd` that altered them would make
/// existing shards undecodable. This pins them for a 64-byte-aligned shard size.
#[test]
fn parity_bytes_are_stable() {
    let c = codec(4, 2, BLOCK_SIZE);
    let block: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
    let shards = c.encode_block(&block).unwrap();
    assert_eq!(shards[0].len(), 256);
    let digest = |s: &[u8]| blake3::hash(s).to_hex()[..16].to_string();
    assert_eq!(digest(&shards[4]), "f91c428c25536920");
    assert_eq!(digest(&shards[5]), "6a62ae207eb63121");
}

// ---------------------------------------------------------------- bitrot

const ALGORITHMS: [BitrotAlgorithm; 2] = [BitrotAlgorithm::Blake3, BitrotAlgorithm::HighwayHash256];

#[test]
fn framed_shards_verify() {
    let mut rng = StdRng::seed_from_u64(5);
    for algorithm in ALGORITHMS {
        for len in [0, 1, 64, 1000, 262_144] {
            let shard = random_bytes(&mut rng, len);
            let frame = frame_shard_block(algorithm, 3, 9, &shard);
            assert_eq!(frame.len(), HASH_LEN + len);
            assert_eq!(
                verify_shard_block(algorithm, 3, 9, &frame).unwrap(),
                &shard[..]
            );
        }
    }
}

#[test]
fn every_flipped_byte_is_bitrot() {
    let mut rng = StdRng::seed_from_u64(6);
    let shard = random_bytes(&mut rng, 200);
    for algorithm in ALGORITHMS {
        let frame = frame_shard_block(algorithm, 2, 5, &shard);
        for at in 0..frame.len() {
            let mut bad = frame.clone();
            bad[at] ^= 1 << rng.gen_range(0..8);
            assert_eq!(
                verify_shard_block(algorithm, 2, 5, &bad),
                Err(ErasureError::Bitrot { shard: 2, block: 5 }),
                "{algorithm:?} byte {at}"
            );
        }
        assert!(verify_shard_block(algorithm, 2, 5, &frame[..HASH_LEN - 1]).is_err());
        assert!(verify_shard_block(algorithm, 2, 5, &frame[..frame.len() - 1]).is_err());
    }
}

/// A frame read under another shard index, or at another block position, does not verify.
#[test]
fn swapped_shards_and_blocks_are_bitrot() {
    let shard = vec![0x5a; 128];
    for algorithm in ALGORITHMS {
        let frame = frame_shard_block(algorithm, 1, 0, &shard);
        assert!(verify_shard_block(algorithm, 1, 0, &frame).is_ok());
        assert!(verify_shard_block(algorithm, 2, 0, &frame).is_err());
        assert!(verify_shard_block(algorithm, 1, 1, &frame).is_err());
        let other = ALGORITHMS.into_iter().find(|a| *a != algorithm).unwrap();
        assert!(verify_shard_block(other, 1, 0, &frame).is_err());
    }
    // Two data shards with identical bytes (say, all zero padding) still differ on disk.
    let zero = vec![0u8; 64];
    assert_ne!(
        frame_shard_block(DEFAULT_BITROT, 0, 0, &zero),
        frame_shard_block(DEFAULT_BITROT, 1, 0, &zero)
    );
}

/// Bitrot hashes are persisted: pin them.
#[test]
fn bitrot_hashes_are_stable() {
    let hash = |a| hex::encode(shard_block_hash(a, 3, 7, b"coffer shard bytes"));
    assert_eq!(
        hash(BitrotAlgorithm::Blake3),
        "b9dd951a13cf8b339e0bdb6af17cc651932e168121d274928204d353f35e07f9"
    );
    assert_eq!(
        hash(BitrotAlgorithm::HighwayHash256),
        "538a12e2131acd726ccf3f8cebc8eb6523b20607a74da67c0e8a15b5f6209414"
    );
    for a in ALGORITHMS {
        assert_eq!(BitrotAlgorithm::from_id(a.id()), Some(a));
    }
    assert_eq!(BitrotAlgorithm::from_id(0), None);
}

// ---------------------------------------------------------------- placement

/// Placement is persisted: objects are found by recomputing it. These values must never change.
#[test]
fn placement_is_stable() {
    assert_eq!(
        object_hash("photos", "2024/cat.jpg"),
        11_577_366_379_736_109_838
    );
    assert_eq!(object_hash("b", ""), 12_588_778_401_418_394_064);
    assert_eq!(
        object_hash("logs", "2025/01/01.gz"),
        14_378_909_412_553_248_436
    );
    assert_eq!(set_for_key("photos", "2024/cat.jpg", 1), 0);
    assert_eq!(set_for_key("photos", "2024/cat.jpg", 7), 4);
    assert_eq!(set_for_key("logs", "a/b/c", 16), 0);
    assert_eq!(set_for_key("logs", "2025/01/01.gz", 16), 4);
    assert_eq!(set_for_key("logs", "2025/01/01.gz", 3), 1);
    assert_eq!(
        shard_order(object_hash("photos", "2024/cat.jpg"), 6),
        vec![2, 3, 4, 5, 0, 1]
    );
    assert_eq!(
        shard_order(object_hash("logs", "a/b/c"), 12),
        vec![3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2]
    );
    assert_eq!(shard_order(0x0000_0003_ffff_ffff, 4), vec![3, 0, 1, 2]);
    assert_eq!(shard_order(42, 1), vec![0]);
    assert_eq!(shard_order(42, 0), Vec::<usize>::new());
    // The hashed name is `bucket/key` (bucket names hold no `/`, so it is unambiguous).
    assert_ne!(object_hash("ab", "c"), object_hash("a", "bc"));
    assert_eq!(object_hash("a", "b/c"), object_hash("a/b", "c"));
}

#[test]
fn shard_order_is_a_rotation() {
    for size in 1..=MAX_SET_SIZE {
        for h in [0u64, 1, u64::MAX, 0xdead_beef_0000_0001, 77 << 32] {
            let order = shard_order(h, size);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..size).collect::<Vec<_>>());
            for i in 0..size {
                assert_eq!(order[i], (order[0] + i) % size);
            }
        }
    }
}

/// Objects spread evenly over sets, and within each set parity spreads over all drives even
/// when the number of sets equals the set size.
#[test]
fn placement_spreads_sets_and_parity() {
    let (sets, set_size, objects) = (4, 4, 8000);
    let mut per_set = vec![0usize; sets];
    let mut first_drive = vec![vec![0usize; set_size]; sets];
    for n in 0..objects {
        let key = format!("object-{n}");
        let set = set_for_key("bucket", &key, sets);
        per_set[set] += 1;
        first_drive[set][shard_order(object_hash("bucket", &key), set_size)[0]] += 1;
    }
    for count in per_set {
        assert!((1700..2300).contains(&count), "{count}");
    }
    for set in first_drive {
        for count in set {
            assert!((350..650).contains(&count), "{count}");
        }
    }
}

#[test]
fn decode_into_appends() {
    let c = codec(3, 1, TEST_BLOCK);
    let block: Vec<u8> = (0..TEST_BLOCK).map(|i| (i % 251) as u8).collect();
    let shards = c.encode_block(&block).unwrap();
    let mut out = b"head".to_vec();
    c.decode_block_into(&mut with_lost(&shards, &[1]), TEST_BLOCK, &mut out)
        .unwrap();
    assert_eq!(&out[..4], b"head");
    assert!(out[4..] == block[..]);
}
