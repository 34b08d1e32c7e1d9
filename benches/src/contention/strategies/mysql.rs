//! The usual SQL answers, on their own InnoDB tables in the same MariaDB: a conditional
//! `UPDATE` plus the reservation row in one transaction (`mysql-tx`), `SELECT … FOR
//! UPDATE` then `UPDATE` and `INSERT` (`mysql-for-update`), and the bare conditional
//! `UPDATE` in autocommit without any reservation row (`mysql-autocommit`). They use
//! sqlx's native MySQL driver, which is a little faster than the `Any` driver Souk uses.

use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::{Executor, QueryBuilder};

use super::{Attempt, Cell, Strategy, Verification, QUANTITY};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Transaction,
    ForUpdate,
    Autocommit,
}

pub struct MySqlStrategy {
    pool: MySqlPool,
    form: Form,
}

pub async fn pool(url: &str, max_connections: u32) -> anyhow::Result<MySqlPool> {
    Ok(MySqlPoolOptions::new()
        .max_connections(max_connections)
        // 1024 clients queue for 64 connections: waiting is part of the latency, not an
        // error.
        .acquire_timeout(std::time::Duration::from_secs(120))
        // Idle connections are closed soon: the server's connection limit is shared
        // with the other pools of the run and with other clients.
        .idle_timeout(std::time::Duration::from_secs(2))
        .min_connections(0)
        .connect(url)
        .await?)
}

impl MySqlStrategy {
    pub async fn new(pool: MySqlPool, form: Form) -> anyhow::Result<Self> {
        pool.execute(
            "CREATE TABLE IF NOT EXISTS bench_stock (sku VARCHAR(64) NOT NULL PRIMARY KEY, \
             available BIGINT NOT NULL) ENGINE = InnoDB",
        )
        .await?;
        pool.execute(
            "CREATE TABLE IF NOT EXISTS bench_reservation (order_id VARCHAR(64) NOT NULL PRIMARY KEY, \
             sku VARCHAR(64) NOT NULL, qty BIGINT NOT NULL, KEY bench_reservation_sku (sku)) ENGINE = InnoDB",
        )
        .await?;
        Ok(Self { pool, form })
    }
}

/// Inserts `stock` units for each SKU of the cell, a thousand rows per statement.
pub async fn seed_rows(
    pool: &MySqlPool,
    table_and_columns: &str,
    cell: &Cell,
    row: impl Fn(&mut sqlx::query_builder::Separated<'_, '_, sqlx::MySql, &'static str>, String),
) -> anyhow::Result<()> {
    let indexes: Vec<usize> = (0..cell.skus).collect();
    for chunk in indexes.chunks(1000) {
        let mut builder =
            QueryBuilder::<sqlx::MySql>::new(format!("INSERT INTO {table_and_columns} "));
        builder.push_values(chunk, |mut values, &index| {
            row(&mut values, cell.sku(index))
        });
        builder.build().execute(pool).await?;
    }
    Ok(())
}

/// Units handed out beyond `initial` over all SKUs of `stock_table` (a counter
/// `available` per `sku`), and the SKUs whose counter disagrees with the units that
/// `units_by_sku` (a query of `sku, units`) recorded.
pub async fn oversold_and_inconsistent(
    pool: &MySqlPool,
    stock_table: &str,
    units_by_sku: &str,
    initial: i64,
) -> anyhow::Result<(i64, i64)> {
    let query = format!(
        "SELECT CAST(COALESCE(SUM(GREATEST(COALESCE(r.units, 0) - ?, 0) + GREATEST(-s.available, 0)), 0) AS SIGNED), \
                CAST(COALESCE(SUM(s.available + COALESCE(r.units, 0) <> ?), 0) AS SIGNED) \
         FROM {stock_table} s LEFT JOIN ({units_by_sku}) r ON r.sku = s.sku"
    );
    Ok(sqlx::query_as(&query)
        .bind(initial)
        .bind(initial)
        .fetch_one(pool)
        .await?)
}

impl Strategy for MySqlStrategy {
    fn name(&self) -> &'static str {
        match self.form {
            Form::Transaction => "mysql-tx",
            Form::ForUpdate => "mysql-for-update",
            Form::Autocommit => "mysql-autocommit",
        }
    }

    async fn prepare(&self, cell: &Cell) -> anyhow::Result<()> {
        // Cells run one after another, so the tables hold one cell at a time.
        self.pool
            .execute("TRUNCATE TABLE bench_reservation")
            .await?;
        self.pool.execute("TRUNCATE TABLE bench_stock").await?;
        let stock = cell.stock_per_sku;
        seed_rows(
            &self.pool,
            "bench_stock (sku, available)",
            cell,
            |values, sku| {
                values.push_bind(sku).push_bind(stock);
            },
        )
        .await
    }

    async fn reserve(&self, cell: &Cell, sku: usize, order_id: String) -> anyhow::Result<Attempt> {
        let sku = cell.sku(sku);
        match self.form {
            Form::Autocommit => {
                let updated = sqlx::query(
                    "UPDATE bench_stock SET available = available - ? WHERE sku = ? AND available >= ?",
                )
                .bind(QUANTITY)
                .bind(&sku)
                .bind(QUANTITY)
                .execute(&self.pool)
                .await?;
                Ok(if updated.rows_affected() == 1 {
                    Attempt::Reserved
                } else {
                    Attempt::OutOfStock
                })
            }
            Form::Transaction => {
                let mut transaction = self.pool.begin().await?;
                let updated = sqlx::query(
                    "UPDATE bench_stock SET available = available - ? WHERE sku = ? AND available >= ?",
                )
                .bind(QUANTITY)
                .bind(&sku)
                .bind(QUANTITY)
                .execute(&mut *transaction)
                .await?;
                if updated.rows_affected() != 1 {
                    transaction.rollback().await?;
                    return Ok(Attempt::OutOfStock);
                }
                sqlx::query("INSERT INTO bench_reservation (order_id, sku, qty) VALUES (?, ?, ?)")
                    .bind(order_id)
                    .bind(&sku)
                    .bind(QUANTITY)
                    .execute(&mut *transaction)
                    .await?;
                transaction.commit().await?;
                Ok(Attempt::Reserved)
            }
            Form::ForUpdate => {
                let mut transaction = self.pool.begin().await?;
                let (available,): (i64,) =
                    sqlx::query_as("SELECT available FROM bench_stock WHERE sku = ? FOR UPDATE")
                        .bind(&sku)
                        .fetch_one(&mut *transaction)
                        .await?;
                if available < QUANTITY {
                    transaction.rollback().await?;
                    return Ok(Attempt::OutOfStock);
                }
                sqlx::query("UPDATE bench_stock SET available = ? WHERE sku = ?")
                    .bind(available - QUANTITY)
                    .bind(&sku)
                    .execute(&mut *transaction)
                    .await?;
                sqlx::query("INSERT INTO bench_reservation (order_id, sku, qty) VALUES (?, ?, ?)")
                    .bind(order_id)
                    .bind(&sku)
                    .bind(QUANTITY)
                    .execute(&mut *transaction)
                    .await?;
                transaction.commit().await?;
                Ok(Attempt::Reserved)
            }
        }
    }

    async fn verify(&self, cell: &Cell) -> anyhow::Result<Verification> {
        let initial = cell.stock_per_sku;
        if self.form == Form::Autocommit {
            // No reservation rows: the units taken are all there is to count.
            let (taken, oversold): (i64, i64) = sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(? - available), 0) AS SIGNED), \
                        CAST(COALESCE(SUM(GREATEST(-available, 0)), 0) AS SIGNED) FROM bench_stock",
            )
            .bind(initial)
            .fetch_one(&self.pool)
            .await?;
            return Ok(Verification {
                recorded: taken.max(0) as u64 / QUANTITY as u64,
                oversold_units: oversold,
                inconsistent_skus: 0,
            });
        }
        let (recorded,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM bench_reservation")
            .fetch_one(&self.pool)
            .await?;
        let (oversold, inconsistent) = oversold_and_inconsistent(
            &self.pool,
            "bench_stock",
            "SELECT sku, SUM(qty) AS units FROM bench_reservation GROUP BY sku",
            initial,
        )
        .await?;
        Ok(Verification {
            recorded: recorded as u64,
            oversold_units: oversold,
            inconsistent_skus: inconsistent as u64,
        })
    }
}
