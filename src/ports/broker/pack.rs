//! Packs: several messages bound for one partition of a Kafka topic,
//! carried as one Kafka record.
//!
//! A broker does work per record as well as per request (tansu 0.6 prepares
//! and runs SQLite statements for each record it stores or fetches), and
//! chirp's events are small: a like's is about 200 bytes. So the Kafka
//! adapter packs the messages of one `send_all` that land on the same
//! partition into one record, and its consumers unpack them. Order per key
//! holds: a key's messages all land on one partition (the partition is
//! chosen as Kafka's Java client and librdkafka's `murmur2_random` choose
//! it), in the order handed over, within a pack and across packs.
//!
//! A pack is a record with the header [`HEADER`] and, as its value, each
//! message in turn as a frame: the key's length (4 bytes, big-endian), the
//! key, the payload's length, the payload. Its key is its first message's
//! key. A record without the header is one message, as before packs.

/// The header that marks a record as a pack; its value is the format's version.
pub const HEADER: &str = "chirp-pack";
pub const VERSION: &[u8] = b"1";
/// The most messages one pack carries.
pub const MAX_MESSAGES: usize = 256;
/// The most bytes one pack carries (librdkafka's `message.max.bytes` is 1 MB).
pub const MAX_BYTES: usize = 256 * 1024;

/// The partition Kafka's clients give `key` among `partitions`
/// (`Utils.toPositive(Utils.murmur2(key)) % partitions`).
pub fn partition_of(key: &[u8], partitions: i32) -> i32 {
    debug_assert!(partitions > 0);
    ((murmur2(key) & 0x7fff_ffff) % partitions.max(1) as u32) as i32
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`; librdkafka's `rd_murmur2`).
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &byte) in tail.iter().enumerate().rev() {
            h ^= u32::from(byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The bytes a message takes in a pack.
pub fn framed_len(key: &[u8], payload: &[u8]) -> usize {
    8 + key.len() + payload.len()
}

/// Appends one message's frame to a pack's value.
pub fn push(pack: &mut Vec<u8>, key: &[u8], payload: &[u8]) {
    for part in [key, payload] {
        pack.extend_from_slice(&(part.len() as u32).to_be_bytes());
        pack.extend_from_slice(part);
    }
}

/// A pack's value that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("a malformed pack: {0}")]
pub struct Malformed(&'static str);

/// One message of a pack: its key and payload.
pub type Packed = (Vec<u8>, Vec<u8>);

/// The messages of a pack's value, in order.
pub fn unpack(mut value: &[u8]) -> Result<Vec<Packed>, Malformed> {
    fn part<'a>(value: &mut &'a [u8]) -> Result<&'a [u8], Malformed> {
        let (len, rest) = value.split_first_chunk::<4>().ok_or(Malformed("a frame cut short"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(Malformed("a frame longer than the record"));
        }
        let (part, rest) = rest.split_at(len);
        *value = rest;
        Ok(part)
    }
    let mut messages = Vec::new();
    while !value.is_empty() {
        let key = part(&mut value)?;
        let payload = part(&mut value)?;
        messages.push((key.to_vec(), payload.to_vec()));
    }
    if messages.is_empty() {
        return Err(Malformed("no message"));
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_is_kafkas() {
        // Kafka's own test vectors (`UtilsTest.testMurmur2`), as signed ints.
        let cases: [(&str, i32); 6] = [
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            ("abc", 479470107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()) as i32, expected, "murmur2({key:?})");
        }
    }

    #[test]
    fn a_key_always_lands_on_one_partition_in_range() {
        for partitions in [1, 3, 7] {
            for key in ["", "1", "alice", "1234567890123"] {
                let p = partition_of(key.as_bytes(), partitions);
                assert!((0..partitions).contains(&p));
                assert_eq!(p, partition_of(key.as_bytes(), partitions));
            }
        }
    }

    #[test]
    fn a_pack_gives_back_its_messages_in_order() {
        let messages: [(&[u8], &[u8]); 3] = [(b"42", b"{\"a\":1}"), (b"", b""), (b"7", &[0, 255, 10])];
        let mut value = Vec::new();
        for (key, payload) in messages {
            push(&mut value, key, payload);
        }
        assert_eq!(value.len(), messages.iter().map(|(k, p)| framed_len(k, p)).sum::<usize>());
        let back = unpack(&value).unwrap();
        let expected: Vec<Packed> = messages.iter().map(|(k, p)| (k.to_vec(), p.to_vec())).collect();
        assert_eq!(back, expected);
    }

    #[test]
    fn a_malformed_pack_is_an_error_not_a_panic() {
        let mut value = Vec::new();
        push(&mut value, b"key", b"payload");
        for cut in 0..value.len() {
            assert!(unpack(&value[..cut]).is_err(), "cut at {cut}");
        }
        assert!(unpack(&[0, 0, 0, 1, b'k', 255, 255, 255, 255]).is_err());
        assert!(unpack(b"{\"json\": true}").is_err());
    }
}
