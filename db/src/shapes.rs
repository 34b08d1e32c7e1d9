//! Multi-row statements in a few fixed shapes. A statement's text is the key of its
//! prepared statement on the connection, so rows are cut into pieces of a few lengths
//! that reuse a handful of prepared statements, where one statement per batch size
//! would prepare (and later close) a new one for nearly every commit: on MariaDB that
//! was about a quarter of the server's CPU under a many-SKU load. Up to [`EXACT_ROWS`]
//! rows are one statement of their own length (small commits, the most frequent, take
//! one statement per table); longer runs are cut into power-of-two pieces first.

/// Rows of one multi-row statement at most, a power of two. The widest row (an order's,
/// `orders::ORDER_PARAMETERS`) times this stays under SQLite's 32 766 bound parameters.
pub(crate) const MAX_ROWS: usize = 1_024;

/// Rows written by one statement of exactly their length; a power of two.
pub(crate) const EXACT_ROWS: usize = 8;

/// `items` cut into pieces, longest first, none longer than `max` (itself a power of
/// two, at least [`EXACT_ROWS`]; [`MAX_ROWS`] for inserts): power-of-two pieces while
/// more than [`EXACT_ROWS`] are left, then the rest as one piece. A table's statements
/// then take at most `EXACT_ROWS` + log2(`max` / `EXACT_ROWS`) shapes.
pub(crate) fn pieces<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    debug_assert!(max.is_power_of_two() && max >= EXACT_ROWS);
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let length = if rest.len() <= EXACT_ROWS {
            rest.len()
        } else {
            (1 << (usize::BITS - 1 - rest.len().leading_zeros())).min(max)
        };
        let (piece, tail) = rest.split_at(length);
        rest = tail;
        Some(piece)
    })
}

/// `items` padded to a power-of-two length by repeating the last one, for a statement
/// that a repeated row leaves unchanged (an `UPDATE` or a `SELECT … WHERE key IN (…)`).
pub(crate) fn padded<T: Copy>(items: &[T]) -> Vec<T> {
    let mut padded = items.to_vec();
    if let Some(last) = items.last() {
        padded.resize(items.len().next_power_of_two(), *last);
    }
    padded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_powers_of_two_then_a_short_rest_in_order_and_cover_everything() {
        for length in 0..600usize {
            let items: Vec<usize> = (0..length).collect();
            let cut: Vec<&[usize]> = pieces(&items, 256).collect();
            if let Some((last, longer)) = cut.split_last() {
                assert!(longer
                    .iter()
                    .all(|piece| piece.len().is_power_of_two() && piece.len() <= 256));
                assert!(last.len().is_power_of_two() || last.len() <= EXACT_ROWS);
            }
            assert_eq!(cut.concat(), items, "length {length}");
            if length > 0 && length <= 256 {
                let powers = (length - length % EXACT_ROWS).count_ones() as usize;
                let rest = usize::from(length % EXACT_ROWS != 0);
                assert_eq!(cut.len(), powers + rest, "length {length}");
            }
        }
        let lengths = |length: usize| -> Vec<usize> {
            let items = vec![0u8; length];
            pieces(&items, 256).map(<[u8]>::len).collect()
        };
        assert_eq!(lengths(5), [5]);
        assert_eq!(lengths(23), [16, 7]);
        assert_eq!(lengths(30), [16, 8, 6]);
        assert_eq!(lengths(600), [256, 256, 64, 16, 8]);
    }

    #[test]
    fn padding_repeats_the_last_item_up_to_a_power_of_two() {
        assert_eq!(padded::<u8>(&[]), Vec::<u8>::new());
        assert_eq!(padded(&[1]), vec![1]);
        assert_eq!(padded(&[1, 2, 3]), vec![1, 2, 3, 3]);
        assert_eq!(padded(&[1, 2, 3, 4, 5]).len(), 8);
    }
}
