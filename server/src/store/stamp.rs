//! Stamps: every record a drive holds carries the stamp its writer gave it, and the stamps of
//! one key are totally ordered, so drives that disagree are settled by "newest wins" and a
//! drive never takes a record older than the one it holds (heal and late writes cannot move
//! anything backwards).
//!
//! A stamp is a hybrid logical clock reading — the writer's wall clock in nanoseconds, pushed
//! past every stamp the process has seen — and the writing process's node number, which breaks
//! ties. A skewed clock therefore cannot order a write before one it followed: the drives
//! refuse the older stamp ([`Held`]), the writer observes theirs and stamps again.
//!
//! On a drive a record is sealed as `MAGIC · time (u64 BE) · node (u32 BE) · kind · payload`;
//! a tombstone (a delete) is sealed with no payload. Values written before stamps existed
//! (record formats start with their format byte, documents with text) open as [`Stamp::LEGACY`]:
//! older than every stamped record, which upgrades them in place on their next write.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

/// First byte of a sealed value; no record format or stored document starts with it.
pub const MAGIC: u8 = 0xFE;
const LIVE: u8 = 0;
const TOMBSTONE: u8 = 1;
const HEADER: usize = 1 + 8 + 4 + 1;

/// When a write happened, totally ordered across the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// Hybrid logical time: nanoseconds since the Unix epoch, or later.
    pub time: u64,
    /// The writing process.
    pub node: u32,
}

impl Stamp {
    /// The stamp of a value written before records were stamped: older than any other.
    pub const LEGACY: Stamp = Stamp { time: 0, node: 0 };

    pub fn to_bytes(self) -> [u8; 12] {
        let mut out = [0; 12];
        out[..8].copy_from_slice(&self.time.to_be_bytes());
        out[8..].copy_from_slice(&self.node.to_be_bytes());
        out
    }

    pub fn from_bytes(b: &[u8]) -> Option<Stamp> {
        Some(Stamp {
            time: u64::from_be_bytes(b.get(..8)?.try_into().ok()?),
            node: u32::from_be_bytes(b.get(8..12)?.try_into().ok()?),
        })
    }
}

/// A record sealed with its stamp, as a drive stores it.
pub fn seal(stamp: Stamp, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.push(MAGIC);
    out.extend_from_slice(&stamp.to_bytes());
    out.push(LIVE);
    out.extend_from_slice(payload);
    out
}

/// The sealed record of a delete.
pub fn tombstone(stamp: Stamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER);
    out.push(MAGIC);
    out.extend_from_slice(&stamp.to_bytes());
    out.push(TOMBSTONE);
    out
}

/// A stored value opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    pub stamp: Stamp,
    /// The record; `None` for a tombstone.
    pub payload: Option<&'a [u8]>,
}

impl Opened<'_> {
    pub fn is_legacy(&self) -> bool {
        self.stamp == Stamp::LEGACY
    }
}

/// Opens a stored value: its stamp and record (a value from before stamps is [`Stamp::LEGACY`]).
pub fn open(raw: &[u8]) -> Opened<'_> {
    match raw.split_first() {
        Some((&MAGIC, rest)) if raw.len() >= HEADER => {
            let stamp = Stamp::from_bytes(&rest[..12]).expect("12 bytes make a stamp");
            Opened {
                stamp,
                payload: (rest[12] != TOMBSTONE).then(|| &raw[HEADER..]),
            }
        }
        _ => Opened {
            stamp: Stamp::LEGACY,
            payload: Some(raw),
        },
    }
}

/// A drive refused a write because it holds a newer (or the same) stamp for a key than the one
/// written with a different value: the writer observes the stamp and writes again, newer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held(pub Stamp);

/// A hybrid logical clock.
pub struct Clock {
    last: AtomicU64,
    node: u32,
    wall: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl Clock {
    /// A clock of process `node` reading wall time from `wall` (nanoseconds since the epoch).
    pub fn new(node: u32, wall: impl Fn() -> u64 + Send + Sync + 'static) -> Clock {
        Clock {
            last: AtomicU64::new(0),
            node,
            wall: Box::new(wall),
        }
    }

    /// A stamp newer than every stamp this clock gave or observed.
    pub fn now(&self) -> Stamp {
        let wall = (self.wall)();
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let time = wall.max(last.saturating_add(1));
            match self
                .last
                .compare_exchange_weak(last, time, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Stamp {
                        time,
                        node: self.node,
                    }
                }
                Err(seen) => last = seen,
            }
        }
    }

    /// Moves the clock past a stamp seen elsewhere.
    pub fn observe(&self, stamp: Stamp) {
        self.last.fetch_max(stamp.time, Ordering::AcqRel);
    }

    pub fn node(&self) -> u32 {
        self.node
    }
}

/// This process's clock: wall time, and a node number drawn at random when it starts (two
/// processes drawing the same one only lose the tie-break between equal times).
pub fn process_clock() -> Arc<Clock> {
    static CLOCK: OnceLock<Arc<Clock>> = OnceLock::new();
    CLOCK
        .get_or_init(|| Arc::new(Clock::new(rand::random::<u32>() | 1, super::now_ns)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_to_their_stamp_and_record() {
        let s = Stamp {
            time: 1_700_000_000_000_000_000,
            node: 7,
        };
        let sealed = seal(s, b"record");
        assert_eq!(
            open(&sealed),
            Opened {
                stamp: s,
                payload: Some(&b"record"[..])
            }
        );
        assert_eq!(
            open(&tombstone(s)),
            Opened {
                stamp: s,
                payload: None
            }
        );
        assert_eq!(open(&seal(s, b"")).payload, Some(&b""[..]));
    }

    #[test]
    fn values_from_before_stamps_open_as_the_oldest_stamp() {
        // A version record of format 2, a garbage record (empty) and a JSON document, as
        // drives written by earlier releases hold them.
        for raw in [
            &[2u8, 0, 0x80, 1][..],
            &[][..],
            &b"{\"Version\":\"2012-10-17\"}"[..],
        ] {
            let o = open(raw);
            assert!(o.is_legacy());
            assert_eq!(o.payload, Some(raw));
            assert!(o.stamp < Stamp { time: 1, node: 0 });
        }
    }

    #[test]
    fn a_clock_never_goes_back_and_passes_what_it_observed() {
        let clock = Clock::new(3, || 1_000);
        let a = clock.now();
        let b = clock.now();
        assert!(b > a, "the same wall time still gives newer stamps");
        // A peer ten minutes ahead: the next stamp here is newer than the peer's.
        let ahead = Stamp {
            time: 1_000 + 600_000_000_000,
            node: 9,
        };
        clock.observe(ahead);
        assert!(clock.now() > ahead);
    }
}
