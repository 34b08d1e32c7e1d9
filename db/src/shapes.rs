//! Multi-row statements in a few fixed shapes. A statement's text is the key of its
//! prepared statement on the connection, so rows cut into pieces of power-of-two
//! lengths reuse a handful of prepared statements, where one statement per batch size
//! would prepare (and later close) a new one for nearly every commit: on MariaDB that
//! was about a quarter of the server's CPU under a many-SKU load.

/// Rows of one multi-row statement at most, a power of two. The widest row (an order's,
/// `orders::ORDER_PARAMETERS`) times this stays under SQLite's 32 766 bound parameters.
pub(crate) const MAX_ROWS: usize = 1_024;

/// `items` cut into pieces of power-of-two lengths, longest first, none longer than
/// `max` (itself a power of two; [`MAX_ROWS`] for inserts).
pub(crate) fn pieces<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    debug_assert!(max.is_power_of_two());
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let largest = 1 << (usize::BITS - 1 - rest.len().leading_zeros());
        let (piece, tail) = rest.split_at(largest.min(max));
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
    fn pieces_are_powers_of_two_in_order_and_cover_everything() {
        for length in 0..600usize {
            let items: Vec<usize> = (0..length).collect();
            let cut: Vec<&[usize]> = pieces(&items, 256).collect();
            assert!(cut
                .iter()
                .all(|piece| piece.len().is_power_of_two() && piece.len() <= 256));
            assert_eq!(cut.concat(), items, "length {length}");
            if length > 0 && length <= 256 {
                assert_eq!(cut.len(), length.count_ones() as usize, "length {length}");
            }
        }
    }

    #[test]
    fn padding_repeats_the_last_item_up_to_a_power_of_two() {
        assert_eq!(padded::<u8>(&[]), Vec::<u8>::new());
        assert_eq!(padded(&[1]), vec![1]);
        assert_eq!(padded(&[1, 2, 3]), vec![1, 2, 3, 3]);
        assert_eq!(padded(&[1, 2, 3, 4, 5]).len(), 8);
    }
}
