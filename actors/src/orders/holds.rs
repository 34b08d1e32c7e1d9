//! The reservations a checkout makes for its order, line by line (`Hold`), and what
//! keeps them whole when concurrent requests share one order through an
//! `Idempotency-Key`: a request that fails releases only what it reserved, then holds
//! those lines again if another request placed the order meanwhile; a request that
//! places the order holds again the lines it found reserved by another.

use souk_db::orders;

use super::logic::{with_retries, OrderLogic};
use super::state::OrderStatus;
use crate::inventory::stock::Holder;
use crate::inventory::{Command, InventoryRouter, Outcome, Placement};

/// What every reservation of one checkout's order carries but its quantity.
pub(super) struct Hold<'a> {
    pub(super) order_id: &'a str,
    pub(super) user_id: &'a str,
    pub(super) ttl_ms: i64,
    pub(super) max_units: Option<i64>,
    /// The checkout has an `Idempotency-Key`: concurrent requests may share its order.
    pub(super) keyed: bool,
}

impl Hold<'_> {
    pub(super) fn reserve(&self, quantity: i64, place: Placement) -> Command {
        Command::Reserve {
            order_id: self.order_id.to_owned(),
            quantity,
            ttl_ms: self.ttl_ms,
            actor: format!("order:{}", self.order_id),
            holder: Some(Holder {
                customer_id: self.user_id.to_owned(),
                max_units: self.max_units,
            }),
            place,
        }
    }
}

impl OrderLogic {
    /// Releases `lines`, what this checkout reserved of an order it did not place.
    /// With a key, a concurrent request with the same key may have placed that order
    /// meanwhile, counting on these reservations (it found them made): so the order is
    /// looked up after the release, and if it stands unpaid, the lines are held again.
    /// Together with `hold_again` after a placing, one of the two requests sees the
    /// other's write, whatever their order.
    pub(super) async fn release_unplaced(
        &self,
        hold: &Hold<'_>,
        lines: &[(&str, i64)],
        reason: &str,
    ) {
        let skus: Vec<&str> = lines.iter().map(|(sku, _)| *sku).collect();
        self.release_lines(hold.order_id, &skus, reason).await;
        if !hold.keyed || lines.is_empty() {
            return;
        }
        match orders::find(self.db.pool(), hold.order_id).await {
            Ok(Some(stored))
                if stored.user_id == hold.user_id
                    && stored.status == OrderStatus::PendingPayment.as_str() =>
            {
                self.hold_again(hold, lines).await
            }
            Ok(_) => {}
            Err(error) => tracing::error!(
                order_id = hold.order_id,
                %error,
                "cannot tell whether a concurrent request placed the order it released"
            ),
        }
    }

    /// Makes sure each of `lines` is reserved for the placed order: found reserved, or
    /// reserved again where a concurrent request with the order's key released it. A
    /// line that cannot be held again is logged and counted; the payment then sells it
    /// from what is available, or owes the sale, as for a lapsed reservation.
    pub(super) async fn hold_again(&self, hold: &Hold<'_>, lines: &[(&str, i64)]) {
        for (sku, quantity) in lines {
            let held = with_retries(|| {
                self.inventory.router().execute(
                    (*sku).to_owned(),
                    hold.reserve(*quantity, Placement::default()),
                )
            })
            .await;
            match held {
                Ok(Outcome::Reserved { .. }) => tracing::warn!(
                    order_id = hold.order_id,
                    sku,
                    "a line a concurrent request released is held again"
                ),
                Ok(_) => {}
                Err(error) => {
                    metrics::counter!("souk_checkout_lines_unheld_total").increment(1);
                    tracing::error!(
                        order_id = hold.order_id,
                        sku,
                        %error,
                        "a placed order's line released by a concurrent request cannot be held again"
                    );
                }
            }
        }
    }
}
