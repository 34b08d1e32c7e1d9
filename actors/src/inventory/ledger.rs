//! What a SKU's ledger already holds of a batch's idempotent commands, read once for
//! the batch before it is applied: the sales a `Commit` or a `Return` asks about, the
//! returns a `Return` would make, and the request keys of admins' keyed changes.

use std::collections::HashSet;

use souk_db::inventory;
use souk_db::{Db, DbError};

use super::stock::{Command, Recorded};

#[derive(Debug, Default)]
pub(super) struct LedgerHolds {
    /// (order id, kind) of each `sale` and `return` movement asked about.
    movements: HashSet<(String, String)>,
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
        Ok(Self {
            movements: movements.into_iter().collect(),
            requests: requests.into_iter().collect(),
        })
    }

    /// What the ledger held, before this batch, of `command`.
    pub(super) fn of(&self, command: &Command) -> Recorded {
        let holds = |order_id: &str, kind: &str| {
            self.movements
                .contains(&(order_id.to_owned(), kind.to_owned()))
        };
        match command {
            Command::Commit { order_id, .. } => Recorded {
                sold: holds(order_id, "sale"),
                ..Recorded::NOTHING
            },
            Command::Return { order_id, .. } => Recorded {
                sold: command
                    .sale_order_id()
                    .is_some_and(|sale| holds(sale, "sale")),
                returned: holds(order_id, "return"),
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
