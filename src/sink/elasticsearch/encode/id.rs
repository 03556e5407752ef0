//! Document ids: the per-file seed and, from it and an event's offset, the `_id` in either
//! scheme a file may have ([`IdScheme`]). Pure functions; which scheme a file has is decided by
//! the reader, once per file.

use crate::tail::{Fingerprint, IdScheme};

/// The per-file part of every document id: the file's fingerprint (its first line), mixed with
/// the identity of its source (`kubernetes::path::source_identity`: the container instance, or
/// the path a plain file was found at) so two files that start with the same line never share
/// ids. Without a source it is the fingerprint itself: the ids of earlier versions, which mixed
/// in no source. Computed once per file.
pub fn id_seed(source: Option<&[u8]>, fp: Fingerprint) -> u64 {
    match source {
        Some(s) => xxhash_rust::xxh3::xxh3_64_with_seed(s, fp.0),
        None => fp.0,
    }
}

/// The deterministic document id of the event starting at `start` in the file with this id
/// seed: 16 bytes in base64url (22 characters). A re-send of the same event always has the same
/// id. [`IdScheme::SeedOffset`] writes the seed then the offset, big-endian, so the ids of one
/// file share their first 10 characters and those of consecutive events differ only in the last
/// few: Lucene's terms dictionary stores them in a fraction of the bytes of random ids, and the
/// server's look-up of each `create`'s id is cheaper (BENCHMARKS.md, "Index size": 751 → 600 MiB per GiB under logsdb). They are as
/// unique as the hash was: both are unique per (seed, offset), and the seed is 64 bits either
/// way. [`IdScheme::Hash`] is the 128-bit hash of both that earlier versions wrote.
pub fn document_id(ids: IdScheme, seed: u64, start: u64) -> [u8; 22] {
    let mut key = [0u8; 16];
    match ids {
        IdScheme::SeedOffset => {
            key[..8].copy_from_slice(&seed.to_be_bytes());
            key[8..].copy_from_slice(&start.to_be_bytes());
        }
        IdScheme::Hash => {
            key[..8].copy_from_slice(&seed.to_le_bytes());
            key[8..].copy_from_slice(&start.to_le_bytes());
            key = xxhash_rust::xxh3::xxh3_128(&key).to_le_bytes();
        }
    }
    base64url_16(&key)
}

fn base64url_16(bytes: &[u8; 16]) -> [u8; 22] {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = [0u8; 22];
    let mut o = 0;
    for chunk in bytes.chunks(3) {
        let n = match *chunk {
            [a, b, c] => (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c),
            [a] => u32::from(a) << 16,
            // 16 bytes = 5 chunks of 3 + 1: only those two shapes occur.
            _ => unreachable!("16 bytes split into chunks of 3 and a last chunk of 1"),
        };
        let chars = if chunk.len() == 3 { 4 } else { 2 };
        for k in 0..chars {
            out[o] = A[((n >> (18 - 6 * k)) & 63) as usize];
            o += 1;
        }
    }
    out
}
