//! What a SKU's ledger already holds of a batch's idempotent commands, read once for
//! the batch before it is applied: the sales a `Commit` or a `Return` asks about, the
//! returns a `Return` would make, and the request keys of admins' keyed changes.

use std::collections::HashSet;

use souk_db::inventory;
use souk_db::{Db, DbError};

use super::stock::{Command, Recorded};

#[derive(Debug, Default)]
pub(super) struct LedgerHolds {
    /// The orders asked about whose sale the ledger holds.
    sold: HashSet<String>,
    /// The orders asked about whose return the ledger holds.
    returned: HashSet<String>,
    requests: HashSet<String>,
}

impl LedgerHolds {
    /// Reads what the ledger of `sku` holds of `commands`; reads nothing when none of
    /// them is idempotent by the ledger.
    pub(super) async fn read(db: &Db, sku: &str, commands: &[Command]) -> Result<Self, DbError> {
        let mut order_ids: Vec<&str> = Vec::new();
        let mut request_keys: Vec<&str> = Vec::new();
        for command in commands {
            match command {
                Command::Commit { order_id, .. } => order_ids.push(order_id),
                Command::Return { order_id, .. } => {
                    order_ids.push(order_id);
                    order_ids.extend(command.sale_order_id());
                }
                Command::KeyedChange { request_key, .. } => request_keys.push(request_key),
                _ => {}
            }
        }
        if order_ids.is_empty() && request_keys.is_empty() {
            return Ok(Self::default());
        }
        order_ids.sort_unstable();
        order_ids.dedup();
        request_keys.sort_unstable();
        request_keys.dedup();
        let mut connection = db.pool().acquire().await?;
        let (movements, requests) =
            inventory::recorded_for_batch(&mut connection, sku, &order_ids, &request_keys).await?;
        let mut holds = Self {
            requests: requests.into_iter().collect(),
            ..Self::default()
        };
        for (order_id, kind) in movements {
            match kind.as_str() {
                "sale" => holds.sold.insert(order_id),
                "return" => holds.returned.insert(order_id),
                _ => false,
            };
        }
        Ok(holds)
    }

    /// What the ledger held, before this batch, of `command`.
    pub(super) fn of(&self, command: &Command) -> Recorded {
        match command {
            Command::Commit { order_id, .. } => Recorded {
                sold: self.sold.contains(order_id),
                ..Recorded::NOTHING
            },
            Command::Return { order_id, .. } => Recorded {
                sold: command
                    .sale_order_id()
                    .is_some_and(|sale| self.sold.contains(sale)),
                returned: self.returned.contains(order_id),
                ..Recorded::NOTHING
            },
            Command::KeyedChange { request_key, .. } => Recorded {
                requested: self.requests.contains(request_key),
                ..Recorded::NOTHING
            },
            _ => Recorded::NOTHING,
        }
    }
}
