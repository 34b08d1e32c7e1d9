//! An order's totals from its subtotal, its shipping and its country's tax rate, in
//! integer minor units. Tax is VAT-style when prices include it (the part of
//! subtotal + shipping that is tax) and added on top otherwise; either way it is
//! rounded half up, once, over subtotal + shipping.

/// Basis points in one whole: a rate of 10 000 is 100 %.
pub const WHOLE_BPS: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub subtotal: i64,
    pub shipping: i64,
    pub tax: i64,
    /// What is paid: subtotal + shipping, plus tax when prices exclude it.
    pub total: i64,
}

/// What shipping costs at `rate`, free once `subtotal` reaches `free_above`.
pub fn shipping_cost(subtotal: i64, rate: i64, free_above: Option<i64>) -> i64 {
    match free_above {
        Some(threshold) if subtotal >= threshold => 0,
        _ => rate,
    }
}

/// `numerator / denominator` rounded half up; both non-negative, denominator positive.
fn divide_half_up(numerator: i128, denominator: i128) -> i128 {
    (2 * numerator + denominator) / (2 * denominator)
}

/// The totals of an order; `rate_bps` is 0..=10 000, amounts are non-negative.
pub fn totals(subtotal: i64, shipping: i64, rate_bps: i64, prices_include_tax: bool) -> Totals {
    let gross = i128::from(subtotal) + i128::from(shipping);
    let rate = i128::from(rate_bps.clamp(0, WHOLE_BPS));
    let whole = i128::from(WHOLE_BPS);
    let tax = if prices_include_tax {
        divide_half_up(gross * rate, whole + rate)
    } else {
        divide_half_up(gross * rate, whole)
    };
    let total = if prices_include_tax {
        gross
    } else {
        gross + tax
    };
    Totals {
        subtotal,
        shipping,
        tax: i64::try_from(tax).unwrap_or(i64::MAX),
        total: i64::try_from(total).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusive_tax_is_the_part_of_the_gross_that_is_tax() {
        // 119.00 with 19 % in it: 19.00 of tax.
        assert_eq!(
            totals(11_000, 900, 1_900, true),
            Totals {
                subtotal: 11_000,
                shipping: 900,
                tax: 1_900,
                total: 11_900
            }
        );
        // 10.00 at 19 %: 1.5966… rounds to 1.60.
        assert_eq!(totals(1_000, 0, 1_900, true).tax, 160);
        // 1.00 at 7 %: 0.0654… rounds to 0.07.
        assert_eq!(totals(100, 0, 700, true).tax, 7);
    }

    #[test]
    fn exclusive_tax_is_added_and_rounded_half_up() {
        assert_eq!(
            totals(1_000, 500, 1_900, false),
            Totals {
                subtotal: 1_000,
                shipping: 500,
                tax: 285,
                total: 1_785
            }
        );
        // 0.50 at 5 %: 0.025 rounds up to 0.03; 0.49 at 5 %: 0.0245 rounds down.
        assert_eq!(totals(50, 0, 500, false).tax, 3);
        assert_eq!(totals(49, 0, 500, false).tax, 2);
        // 0.21 at 50 %: exactly 0.105, rounds up to 0.11.
        assert_eq!(totals(21, 0, 5_000, false).tax, 11);
    }

    #[test]
    fn no_rate_no_tax_and_the_extremes_hold() {
        assert_eq!(totals(1_234, 99, 0, true).tax, 0);
        assert_eq!(totals(1_234, 99, 0, false).total, 1_333);
        assert_eq!(totals(1_000, 0, WHOLE_BPS, true).tax, 500);
        assert_eq!(totals(1_000, 0, WHOLE_BPS, false).total, 2_000);
        let huge = totals(1_000_000_000_000 * 100 * 50, 0, WHOLE_BPS, false);
        assert_eq!(huge.total, 2 * 5_000_000_000_000_000);
    }

    #[test]
    fn shipping_is_free_from_the_threshold_on() {
        assert_eq!(shipping_cost(4_999, 490, Some(5_000)), 490);
        assert_eq!(shipping_cost(5_000, 490, Some(5_000)), 0);
        assert_eq!(shipping_cost(10_000, 490, None), 490);
    }
}
