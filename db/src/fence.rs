//! Owner-epoch fences on the rows entity actors own (`inventory_items`, `orders`).
//!
//! An actor that runs on a clustered node claims its row when it loads: it raises the
//! row's `owner_epoch` to the epoch of the shard lease it serves under, unless a later
//! owner already raised it further. Every write of the actor then requires
//! `owner_epoch <= its epoch` (and the row version), so once a newer owner has claimed
//! the row, no write of an older one can land, whatever its lease believes.

use sqlx::AnyConnection;

use crate::DbError;

/// The tables whose rows carry an owner epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FencedRow {
    /// `inventory_items`, keyed by SKU.
    Item,
    /// `orders`, keyed by order id.
    Order,
}

impl FencedRow {
    fn table(self) -> &'static str {
        match self {
            FencedRow::Item => "inventory_items",
            FencedRow::Order => "orders",
        }
    }

    fn key_column(self) -> &'static str {
        match self {
            FencedRow::Item => "sku",
            FencedRow::Order => "id",
        }
    }
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The row now carries the claimed epoch (or already did).
    Claimed,
    /// No such row yet: its creation carries the epoch.
    Absent,
    /// A later owner claimed the row: this one must not serve it.
    Stale { owner_epoch: i64 },
}

/// Raises the row's owner epoch to `epoch` unless it is already higher.
#[tracing::instrument(name = "db_claim_row", skip(connection))]
pub async fn claim(
    connection: &mut AnyConnection,
    row: FencedRow,
    key: &str,
    epoch: i64,
) -> Result<Claim, DbError> {
    let (table, key_column) = (row.table(), row.key_column());
    sqlx::query(&format!(
        "UPDATE {table} SET owner_epoch = ? WHERE {key_column} = ? AND owner_epoch < ?"
    ))
    .bind(epoch)
    .bind(key)
    .bind(epoch)
    .execute(&mut *connection)
    .await?;
    // Read back rather than trust the affected-row count, which MySQL reports as rows
    // changed, not rows matched.
    Ok(match owner_epoch(connection, row, key).await? {
        None => Claim::Absent,
        Some(owner_epoch) if owner_epoch > epoch => Claim::Stale { owner_epoch },
        Some(_) => Claim::Claimed,
    })
}

/// The row's owner epoch, `None` when there is no row.
pub async fn owner_epoch(
    connection: &mut AnyConnection,
    row: FencedRow,
    key: &str,
) -> Result<Option<i64>, DbError> {
    let (table, key_column) = (row.table(), row.key_column());
    let found: Option<(i64,)> = sqlx::query_as(&format!(
        "SELECT owner_epoch FROM {table} WHERE {key_column} = ?"
    ))
    .bind(key)
    .fetch_optional(&mut *connection)
    .await?;
    Ok(found.map(|(epoch,)| epoch))
}

/// The epoch an actor writes its row with, given the epoch it `claimed` (on a clustered
/// node) and the one `stored` in the row it read after the claim; `Err` with the stored
/// epoch when a later owner claimed the row in between. A clustered actor writes with
/// its own epoch, never with one it read; on a single node there is no claim and the
/// stored epoch stands.
pub fn writing_epoch(claimed: Option<i64>, stored: i64) -> Result<i64, i64> {
    match claimed {
        Some(claimed) if stored > claimed => Err(stored),
        Some(claimed) => Ok(claimed),
        None => Ok(stored),
    }
}

#[cfg(test)]
mod tests {
    use super::writing_epoch;

    #[test]
    fn a_clustered_actor_writes_with_the_epoch_it_claimed() {
        // A later owner claimed the row between this actor's claim and its read.
        assert_eq!(writing_epoch(Some(7), 9), Err(9));
        // An earlier owner created the row after the claim found none.
        assert_eq!(writing_epoch(Some(7), 3), Ok(7));
        assert_eq!(writing_epoch(Some(7), 7), Ok(7));
        assert_eq!(writing_epoch(None, 4), Ok(4));
    }
}
