//! Time-ordered 64-bit ids (Snowflake layout): 41 bits of milliseconds since
//! 2024-01-01, 10 bits of node, 12 bits of sequence. Ordered by creation,
//! so they double as keyset-pagination keys; strings in JSON.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Timestamp;

const EPOCH_MS: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z
const NODE_BITS: u32 = 10;
const SEQ_BITS: u32 = 12;
const MAX_SEQ: i64 = (1 << SEQ_BITS) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(i64);

impl Id {
    pub fn from_i64(raw: i64) -> Self {
        Self(raw)
    }

    pub fn as_i64(self) -> i64 {
        self.0
    }

    /// The id node `node` would generate at `at` with sequence number `seq`
    /// (for tools that build data sets with times in the past).
    pub fn compose(at: Timestamp, node: u16, seq: u16) -> Self {
        let ms = at.as_millis() - EPOCH_MS;
        Self((ms << (NODE_BITS + SEQ_BITS)) | (i64::from(node & 0x3ff) << SEQ_BITS) | (i64::from(seq) & MAX_SEQ))
    }

    /// When this id was generated.
    pub fn timestamp(self) -> Timestamp {
        Timestamp::from_millis((self.0 >> (NODE_BITS + SEQ_BITS)) + EPOCH_MS)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not a valid id")]
pub struct InvalidId;

impl FromStr for Id {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidId);
        }
        s.parse::<i64>().map(Id).map_err(|_| InvalidId)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Hands out unique, increasing ids for one node.
#[derive(Debug)]
pub struct IdGenerator {
    node: i64,
    last: Mutex<(i64, i64)>, // (milliseconds since EPOCH_MS, sequence)
}

impl IdGenerator {
    pub fn new(node: u16) -> Self {
        Self { node: i64::from(node & 0x3ff), last: Mutex::new((0, 0)) }
    }

    pub fn next_id(&self) -> Id {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Timestamp::now().as_millis() - EPOCH_MS;
        // The clock may step back (NTP); keep counting from the last time seen.
        let (mut ms, mut seq) = *last;
        if now > ms {
            ms = now;
            seq = 0;
        } else {
            seq += 1;
            if seq > MAX_SEQ {
                // 4096 ids in one millisecond: borrow the next millisecond.
                ms += 1;
                seq = 0;
            }
        }
        *last = (ms, seq);
        Id((ms << (NODE_BITS + SEQ_BITS)) | (self.node << SEQ_BITS) | seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_carry_their_time() {
        let ids = IdGenerator::new(7);
        let before = Timestamp::now().as_millis();
        let mut prev = ids.next_id();
        for _ in 0..10_000 {
            let id = ids.next_id();
            assert!(id > prev);
            prev = id;
        }
        assert!(prev.timestamp().as_millis() >= before);
        assert!(prev.as_i64() > 0);
    }

    #[test]
    fn only_plain_decimal_strings_parse() {
        assert_eq!("42".parse::<Id>().unwrap(), Id(42));
        for bad in ["", "-1", "1e3", " 1", "abc", "99999999999999999999", "+5"] {
            assert!(bad.parse::<Id>().is_err(), "{bad}");
        }
    }
}
