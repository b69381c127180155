//! Opaque keyset page tokens: the last (create_time, id) of a page plus a digest of the filters,
//! so a token is only accepted with the filters it was issued for.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Serialize, Deserialize)]
struct Token {
    /// create_time of the last capture on the page.
    t: i64,
    /// id of the last capture on the page.
    i: String,
    /// Digest of the filters.
    f: String,
}

fn filter_digest(filters: &str) -> String {
    hex::encode(&Sha256::digest(filters.as_bytes())[..8])
}

pub fn encode(position: &(i64, String), filters: &str) -> String {
    let token = Token {
        t: position.0,
        i: position.1.clone(),
        f: filter_digest(filters),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

/// The position a token points at, or why it cannot be used.
pub fn decode(token: &str, filters: &str) -> Result<(i64, String), &'static str> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| "not a page token")?;
    let token: Token = serde_json::from_slice(&bytes).map_err(|_| "not a page token")?;
    if token.f != filter_digest(filters) {
        return Err("the page token was issued for different filters");
    }
    Ok((token.t, token.i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_only_with_their_filters() {
        let token = encode(&(42, "cap_X".into()), "status=COMPLETED");
        assert_eq!(decode(&token, "status=COMPLETED"), Ok((42, "cap_X".into())));
        assert!(decode(&token, "status=PENDING").is_err());
        assert!(decode("garbage!", "").is_err());
    }
}
