//! The ways of reserving stock that the harness compares. Each strategy seeds its own
//! stock for a cell, reserves one unit per call, and afterwards counts from its store
//! (never from the clients' tallies) what it actually recorded.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use super::node_cgroup::NodesCpuTimes;
use super::workload::Workload;

pub mod http;
pub mod mysql;
pub mod mysql_http;
pub mod redis_lua;
pub mod souk_actor;

/// Every reservation asks for this many units.
pub const QUANTITY: i64 = 1;

/// One benchmark cell: a strategy under one workload at one concurrency.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Unique within a run: SKU names carry it, so cells never share stock.
    pub id: usize,
    pub workload: Workload,
    pub skus: usize,
    pub stock_per_sku: i64,
    pub concurrency: usize,
}

impl Cell {
    pub fn sku(&self, index: usize) -> String {
        format!("c{}-{index}", self.id)
    }

    pub fn sku_prefix_like(&self) -> String {
        format!("c{}-%", self.id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Reserved,
    OutOfStock,
}

/// What the store holds after a cell, counted from the store itself.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verification {
    /// Reservations the store recorded (rows, hash entries; for `mysql-autocommit`,
    /// units taken from the counters).
    pub recorded: u64,
    /// Units handed out beyond the initial stock, over all SKUs. Must be 0.
    pub oversold_units: i64,
    /// SKUs whose counter disagrees with their recorded reservations.
    pub inconsistent_skus: u64,
}

pub trait Strategy: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Seeds `cell.stock_per_sku` units for each SKU of the cell.
    fn prepare(&self, cell: &Cell) -> impl Future<Output = anyhow::Result<()>> + Send;
    fn reserve(
        &self,
        cell: &Cell,
        sku: usize,
        order_id: String,
    ) -> impl Future<Output = anyhow::Result<Attempt>> + Send;
    fn verify(&self, cell: &Cell) -> impl Future<Output = anyhow::Result<Verification>> + Send;
    /// Frees what the cell left behind, once verified.
    fn clean(&self, _cell: &Cell) -> impl Future<Output = anyhow::Result<()>> + Send {
        async { Ok(()) }
    }
    /// Waits until the work a cell's orders queued behind them (events to relay, mail
    /// to send) is done, so that the next cell does not run beside it; returns how long
    /// that took, or `None` for a strategy that queues nothing.
    fn settle(&self) -> impl Future<Output = anyhow::Result<Option<Duration>>> + Send {
        async { Ok(None) }
    }
    /// The CPU counters of the strategy's nodes, when each runs under a CPU limit.
    fn node_cpu(&self) -> anyhow::Result<Option<NodesCpuTimes>> {
        Ok(None)
    }
}
