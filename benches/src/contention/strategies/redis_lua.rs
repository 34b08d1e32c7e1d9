//! Redis: a Lua script checks and decrements the SKU's counter and records the order in
//! a hash, atomically. In memory only — no fsync per reservation — so not durable in the
//! sense the SQL strategies and Souk are.

use redis::aio::MultiplexedConnection;

use super::{Attempt, Cell, Strategy, Verification, QUANTITY};

const RESERVE: &str = r"
local available = tonumber(redis.call('GET', KEYS[1]) or '0')
local quantity = tonumber(ARGV[2])
if available < quantity then return 0 end
redis.call('DECRBY', KEYS[1], quantity)
redis.call('HSET', KEYS[2], ARGV[1], quantity)
return 1
";

pub struct RedisLua {
    connection: MultiplexedConnection,
    script: redis::Script,
    prefix: String,
}

impl RedisLua {
    /// One multiplexed connection: Redis executes scripts one at a time anyway, and
    /// pipelining on one socket is how clients usually reach it.
    pub async fn new(url: &str, prefix: String) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        Ok(Self {
            connection: client.get_multiplexed_async_connection().await?,
            script: redis::Script::new(RESERVE),
            prefix,
        })
    }

    fn stock_key(&self, cell: &Cell, sku: usize) -> String {
        format!("{}{}:stock", self.prefix, cell.sku(sku))
    }

    fn held_key(&self, cell: &Cell, sku: usize) -> String {
        format!("{}{}:held", self.prefix, cell.sku(sku))
    }

    async fn remove_keys(&self, cell: &Cell) -> anyhow::Result<()> {
        let mut connection = self.connection.clone();
        let indexes: Vec<usize> = (0..cell.skus).collect();
        for chunk in indexes.chunks(500) {
            let keys: Vec<String> = chunk
                .iter()
                .flat_map(|&index| [self.stock_key(cell, index), self.held_key(cell, index)])
                .collect();
            let _: () = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut connection)
                .await?;
        }
        Ok(())
    }
}

impl Strategy for RedisLua {
    fn name(&self) -> &'static str {
        "redis-lua"
    }

    async fn prepare(&self, cell: &Cell) -> anyhow::Result<()> {
        let mut connection = self.connection.clone();
        let indexes: Vec<usize> = (0..cell.skus).collect();
        for chunk in indexes.chunks(1000) {
            let mut command = redis::cmd("MSET");
            for &index in chunk {
                command
                    .arg(self.stock_key(cell, index))
                    .arg(cell.stock_per_sku);
            }
            let _: () = command.query_async(&mut connection).await?;
        }
        Ok(())
    }

    async fn reserve(&self, cell: &Cell, sku: usize, order_id: String) -> anyhow::Result<Attempt> {
        let mut connection = self.connection.clone();
        let reserved: i64 = self
            .script
            .key(self.stock_key(cell, sku))
            .key(self.held_key(cell, sku))
            .arg(order_id)
            .arg(QUANTITY)
            .invoke_async(&mut connection)
            .await?;
        Ok(if reserved == 1 {
            Attempt::Reserved
        } else {
            Attempt::OutOfStock
        })
    }

    async fn clean(&self, cell: &Cell) -> anyhow::Result<()> {
        self.remove_keys(cell).await
    }

    async fn verify(&self, cell: &Cell) -> anyhow::Result<Verification> {
        let mut connection = self.connection.clone();
        let mut verification = Verification::default();
        let indexes: Vec<usize> = (0..cell.skus).collect();
        for chunk in indexes.chunks(1000) {
            let mut pipeline = redis::pipe();
            for &index in chunk {
                pipeline
                    .cmd("GET")
                    .arg(self.stock_key(cell, index))
                    .cmd("HLEN")
                    .arg(self.held_key(cell, index));
            }
            let counts: Vec<Option<i64>> = pipeline.query_async(&mut connection).await?;
            for pair in counts.chunks(2) {
                let available = pair[0].unwrap_or(0);
                let held = pair[1].unwrap_or(0) * QUANTITY;
                verification.recorded += (held / QUANTITY) as u64;
                verification.oversold_units +=
                    (held - cell.stock_per_sku).max(0) + (-available).max(0);
                if available + held != cell.stock_per_sku {
                    verification.inconsistent_skus += 1;
                }
            }
        }
        Ok(verification)
    }
}
