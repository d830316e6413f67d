//! Key to hash slot, as Redis Cluster computes it: CRC16 (XMODEM) of the key modulo 16384,
//! or of its hash tag (the part between the first `{` and the next `}`, when not empty).

/// Hash slots in a Redis Cluster.
pub const SLOTS: usize = 16384;

/// The hash slot of `key`.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOTS as u16
}

/// The part of `key` that is hashed: its hash tag when it has a non-empty one, else all of it.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the checksum Redis uses.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_the_redis_reference_values() {
        // The check value of CRC16/XMODEM, and slots Redis's CLUSTER KEYSLOT gives.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn hash_tags_follow_the_redis_rules() {
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"no tag"), b"no tag");
        assert_eq!(hash_tag(b"{unclosed"), b"{unclosed");
    }

    proptest! {
        #[test]
        fn keys_sharing_a_tag_share_a_slot(tag in "[a-z0-9]{1,8}", a in "[^{}]{0,8}", b in "[^{}]{0,8}") {
            let k1 = format!("{a}{{{tag}}}x");
            let k2 = format!("{b}{{{tag}}}y{{z}}");
            prop_assert_eq!(key_slot(k1.as_bytes()), key_slot(k2.as_bytes()));
            prop_assert_eq!(key_slot(k1.as_bytes()), key_slot(tag.as_bytes()));
        }

        #[test]
        fn every_key_has_a_slot_in_range(key in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert!((key_slot(&key) as usize) < SLOTS);
        }
    }
}
