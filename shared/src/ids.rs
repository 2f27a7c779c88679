//! Identifiers. Prefixed ids (`cb_…`, `we_…`) start with the creation time in milliseconds, so
//! they sort by time: "newest first" is a reverse sort on the id. Flow slugs are random.

use rand::Rng;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Base62 digits of the time part: 62^9 > 2^53, so every millisecond timestamp fits in 9.
const TIME_DIGITS: usize = 9;
/// Random part: 14 base62 digits, about 83 bits.
const RANDOM_DIGITS: usize = 14;

fn random_base62(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| BASE62[rng.random_range(0..62)] as char)
        .collect()
}

/// `prefix` + 9 time digits + 14 random digits (23 base62 characters), sortable by creation.
pub fn new_id(prefix: &str, now_ms: i64) -> String {
    format!(
        "{}{}",
        time_part(prefix, now_ms),
        random_base62(RANDOM_DIGITS)
    )
}

/// Like [`new_id`], but the last 14 digits come from `seed`: the same seed and time make the
/// same id (a delivery of one event to one endpoint is made once, however often it is asked).
pub fn derived_id(prefix: &str, now_ms: i64, seed: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(seed.as_bytes());
    let mut rest = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
    let derived: String = (0..RANDOM_DIGITS)
        .map(|_| {
            let digit = BASE62[(rest % 62) as usize] as char;
            rest /= 62;
            digit
        })
        .collect();
    format!("{}{derived}", time_part(prefix, now_ms))
}

/// The first characters of every id with `prefix` made at `now_ms`: ids made in a time range
/// lie between the prefixes of its ends.
pub fn time_part(prefix: &str, now_ms: i64) -> String {
    let mut time = [b'0'; TIME_DIGITS];
    let mut rest = now_ms.max(0) as u64;
    for slot in time.iter_mut().rev() {
        *slot = BASE62[(rest % 62) as usize];
        rest /= 62;
    }
    let time = std::str::from_utf8(&time).expect("base62 is ASCII");
    format!("{prefix}{time}")
}

/// A flow's stable slug: `flow_` + 12 base62 characters.
pub fn new_flow_slug() -> String {
    format!("{FLOW_SLUG_PREFIX}{}", random_base62(12))
}

pub const FLOW_SLUG_PREFIX: &str = "flow_";

/// Does `text` look like an id with this prefix? (Cheap rejection of garbage before any read.)
pub fn is_id(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|rest| {
        (20..=64).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

pub fn is_flow_slug(text: &str) -> bool {
    text.strip_prefix(FLOW_SLUG_PREFIX)
        .is_some_and(|rest| rest.len() == 12 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The hex SHA-256 of `data`: how keys, signatures and idempotency keys are stored.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    to_hex(&sha2::Sha256::digest(data))
}

/// Lower-case hex of `bytes`, written into one string (not a string per byte).
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        write!(hex, "{byte:02x}").expect("writing to a String cannot fail");
    }
    hex
}

/// Random bytes (for keys and signatures).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill(&mut bytes[..]);
    bytes
}

pub fn random_token(len: usize) -> String {
    random_base62(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_time() {
        let earlier = new_id("cb_", 1_700_000_000_000);
        let later = new_id("cb_", 1_700_000_000_001);
        assert!(earlier < later);
        assert!(is_id(&earlier, "cb_"));
        assert_eq!(earlier.len(), 3 + 23);
    }

    #[test]
    fn slugs_have_the_documented_shape() {
        let slug = new_flow_slug();
        assert!(is_flow_slug(&slug), "{slug}");
        assert!(!is_flow_slug("flow_short"));
        assert!(!is_id("cb_../../etc", "cb_"));
    }
}
