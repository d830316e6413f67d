//! The cursor of a cluster-wide `SCAN`: one number that says which primary is being walked
//! and where in it. `0` starts at the first primary and `0` is returned after the last one,
//! so a client's usual loop (until the cursor is `0` again) walks every primary once.
//!
//! The low [`NODE_BITS`] bits hold the primary's index (in slot order), the rest the node's
//! own cursor. Pure.

/// Bits of the cursor that hold the primary's index (up to 1024 primaries).
pub const NODE_BITS: u32 = 10;

/// The cursor the client sees for `node_cursor` on primary `node`.
pub fn encode(node: usize, node_cursor: u64) -> String {
    (((node_cursor as u128) << NODE_BITS) | node as u128).to_string()
}

/// The primary index and its own cursor from a client's cursor; `None` for a cursor that
/// is not one restdis gave out (not a number, or a primary that does not exist).
pub fn decode(cursor: &[u8], primaries: usize) -> Option<(usize, u64)> {
    let n: u128 = std::str::from_utf8(cursor).ok()?.parse().ok()?;
    let node = (n & ((1 << NODE_BITS) - 1)) as usize;
    let node_cursor = u64::try_from(n >> NODE_BITS).ok()?;
    (node < primaries).then_some((node, node_cursor))
}

/// The client's next cursor after primary `node` answered `node_cursor`: the same primary
/// again, the next one from its start, or `0` when it was the last.
pub fn next(node: usize, node_cursor: u64, primaries: usize) -> String {
    if node_cursor != 0 {
        encode(node, node_cursor)
    } else if node + 1 < primaries {
        encode(node + 1, 0)
    } else {
        "0".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zero_starts_at_the_first_primary_and_ends_after_the_last() {
        assert_eq!(decode(b"0", 3), Some((0, 0)));
        assert_eq!(next(0, 0, 3), "1");
        assert_eq!(decode(b"1", 3), Some((1, 0)));
        assert_eq!(next(2, 0, 3), "0");
        assert_eq!(decode(b"7", 3), None);
        assert_eq!(decode(b"x", 3), None);
        assert_eq!(decode(b"-1", 3), None);
    }

    proptest! {
        #[test]
        fn cursors_round_trip(node in 0usize..1024, c in any::<u64>()) {
            prop_assert_eq!(decode(encode(node, c).as_bytes(), 1024), Some((node, c)));
        }

        #[test]
        fn a_walk_visits_every_primary_once(n in 1usize..20, steps in proptest::collection::vec(0u64..4, 1..40)) {
            // Each primary answers a few non-zero cursors, then 0.
            let mut cursor = "0".to_string();
            let mut visited = Vec::new();
            let mut script = steps.into_iter();
            loop {
                let (node, _) = decode(cursor.as_bytes(), n).unwrap();
                if visited.last() != Some(&node) { visited.push(node); }
                let answer = script.next().unwrap_or(0);
                cursor = next(node, answer, n);
                if cursor == "0" { break; }
            }
            prop_assert_eq!(visited, (0..n).collect::<Vec<_>>());
        }
    }
}
