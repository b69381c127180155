//! Record ids: `cap_` (a capture) or `rel_` (a release) + a ULID (48-bit millisecond time + 80 random bits, Crockford base32), so
//! ids sort roughly by creation and never collide.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::domain::Operation;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new capture id, e.g. `cap_01JDQ3W5X8K2M4N6P8R0S2T4V6`.
pub fn new_capture_id() -> Result<String, getrandom::Error> {
    new_id(Operation::Capture)
}

/// A new id of an `operation`'s record: its prefix (`cap_`, `rel_`) and a ULID.
pub fn new_id(operation: Operation) -> Result<String, getrandom::Error> {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut random = [0u8; 10];
    getrandom::fill(&mut random)?;
    let mut value: u128 = u128::from(millis & 0xFFFF_FFFF_FFFF) << 80;
    for (i, byte) in random.iter().enumerate() {
        value |= u128::from(*byte) << (72 - 8 * i);
    }
    let mut id = String::with_capacity(30);
    id.push_str(operation.id_prefix());
    for i in (0..26).rev() {
        let index = ((value >> (5 * i)) & 0x1F) as usize;
        id.push(char::from(CROCKFORD[index]));
    }
    Ok(id)
}

/// Whether `id` has the shape of a capture id; no other id can name a stored capture.
pub fn is_capture_id(id: &str) -> bool {
    is_id_of(Operation::Capture, id)
}

/// Whether `id` has the shape of a release id.
pub fn is_release_id(id: &str) -> bool {
    is_id_of(Operation::Release, id)
}

fn is_id_of(operation: Operation, id: &str) -> bool {
    id.len() == 30
        && id.starts_with(operation.id_prefix())
        && id[4..].bytes().all(|c| CROCKFORD.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_unique_and_base32() -> Result<(), getrandom::Error> {
        let a = new_capture_id()?;
        let b = new_capture_id()?;
        assert_ne!(a, b);
        assert_eq!(a.len(), 30);
        assert!(a.starts_with("cap_"));
        assert!(a[4..].bytes().all(|c| CROCKFORD.contains(&c)));
        assert!(is_capture_id(&a));
        assert!(!is_capture_id("cap_01JDQ3W5X8K2M4N6P8R0S2T4V\0"));
        assert!(!is_capture_id("cap_01jdq3w5x8k2m4n6p8r0s2t4v6"));
        Ok(())
    }
}
