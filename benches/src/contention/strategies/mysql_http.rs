//! `mysql-tx-http`: the order endpoint a team would usually write, as Souk's peer over
//! the same transport. An actix-web handler (`POST /orders`, a bearer JWT, an
//! `Idempotency-Key`) runs one transaction per order on the same MariaDB: the
//! product's price, a conditional stock `UPDATE`, then the order, line and outbox
//! `INSERT`s; a repeated key answers with the order already made (a unique key on
//! user and idempotency key). Clients drive it over loopback REST like `souk-http`.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::mysql::MySqlPool;
use sqlx::Executor;

use super::http::{http_client, post_order};
use super::mysql::{oversold_and_inconsistent, seed_rows};
use super::{Attempt, Cell, Strategy, Verification};
use crate::contention::host::ActixHost;

const PRICE: i64 = 1999;

pub struct MySqlTxHttp {
    base: String,
    client: reqwest::Client,
    token: String,
    pool: MySqlPool,
    /// Dropped last: stops the server.
    _host: ActixHost,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

#[derive(Deserialize)]
struct OrderBody {
    items: Vec<OrderItem>,
}

#[derive(Deserialize)]
struct OrderItem {
    sku: String,
    quantity: i64,
}

struct Endpoint {
    pool: MySqlPool,
    key: DecodingKey,
    validation: Validation,
}

fn refuse(status: actix_web::http::StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"code": code, "message": message}))
}

/// `POST /orders`: the whole order in one transaction.
async fn create_order(
    endpoint: web::Data<Endpoint>,
    request: HttpRequest,
    body: web::Json<OrderBody>,
) -> HttpResponse {
    use actix_web::http::StatusCode as Status;
    let Some(token) = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return refuse(
            Status::UNAUTHORIZED,
            "unauthorized",
            "a bearer token is required",
        );
    };
    let Ok(claims) = jsonwebtoken::decode::<Claims>(token, &endpoint.key, &endpoint.validation)
    else {
        return refuse(Status::UNAUTHORIZED, "unauthorized", "invalid token");
    };
    let user_id = claims.claims.sub;
    let key = request
        .headers()
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if body.items.is_empty() || body.items.iter().any(|item| item.quantity < 1) {
        return refuse(
            Status::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "at least one item, each of at least one unit",
        );
    }
    match place(&endpoint.pool, &user_id, key.as_deref(), &body.items).await {
        Ok(Placed::Created(order)) => HttpResponse::Created().json(order),
        Ok(Placed::Existing(order)) => HttpResponse::Ok().json(order),
        Ok(Placed::OutOfStock(sku)) => refuse(
            Status::CONFLICT,
            "insufficient_stock",
            &format!("{sku} is out of stock"),
        ),
        Ok(Placed::UnknownProduct(sku)) => refuse(
            Status::UNPROCESSABLE_ENTITY,
            "validation_failed",
            &format!("{sku} is not a product"),
        ),
        Err(error) => refuse(
            Status::SERVICE_UNAVAILABLE,
            "unavailable",
            &error.to_string(),
        ),
    }
}

enum Placed {
    Created(Value),
    Existing(Value),
    OutOfStock(String),
    UnknownProduct(String),
}

async fn place(
    pool: &MySqlPool,
    user_id: &str,
    key: Option<&str>,
    items: &[OrderItem],
) -> Result<Placed, sqlx::Error> {
    let order_id = uuid::Uuid::now_v7().simple().to_string();
    let mut transaction = pool.begin().await?;
    let mut total = 0;
    let mut currency = String::new();
    for item in items {
        let product: Option<(i64, String)> =
            sqlx::query_as("SELECT price_amount, currency FROM peer_product WHERE sku = ?")
                .bind(&item.sku)
                .fetch_optional(&mut *transaction)
                .await?;
        let Some((price, product_currency)) = product else {
            return Ok(Placed::UnknownProduct(item.sku.clone()));
        };
        let updated = sqlx::query(
            "UPDATE peer_product SET available = available - ? WHERE sku = ? AND available >= ?",
        )
        .bind(item.quantity)
        .bind(&item.sku)
        .bind(item.quantity)
        .execute(&mut *transaction)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(Placed::OutOfStock(item.sku.clone()));
        }
        total += price * item.quantity;
        currency = product_currency;
    }
    let inserted = sqlx::query(
        "INSERT INTO peer_order (id, user_id, idempotency_key, status, currency, total_amount) \
         VALUES (?, ?, ?, 'pending_payment', ?, ?)",
    )
    .bind(&order_id)
    .bind(user_id)
    .bind(key)
    .bind(&currency)
    .bind(total)
    .execute(&mut *transaction)
    .await;
    match inserted {
        Ok(_) => {}
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            transaction.rollback().await?;
            let existing: (String, i64, String) = sqlx::query_as(
                "SELECT id, total_amount, currency FROM peer_order WHERE user_id = ? AND idempotency_key = ?",
            )
            .bind(user_id)
            .bind(key)
            .fetch_one(pool)
            .await?;
            return Ok(Placed::Existing(json!({
                "id": existing.0,
                "status": "pending_payment",
                "total": {"amount": existing.1, "currency": existing.2},
            })));
        }
        Err(error) => return Err(error),
    }
    let mut lines = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        sqlx::query(
            "INSERT INTO peer_order_line (order_id, line_no, sku, quantity) VALUES (?, ?, ?, ?)",
        )
        .bind(&order_id)
        .bind(index as i64 + 1)
        .bind(&item.sku)
        .bind(item.quantity)
        .execute(&mut *transaction)
        .await?;
        lines.push(json!({"sku": item.sku, "quantity": item.quantity}));
    }
    let order = json!({
        "id": order_id,
        "status": "pending_payment",
        "total": {"amount": total, "currency": currency},
        "lines": lines,
    });
    sqlx::query(
        "INSERT INTO peer_outbox (topic, aggregate_id, payload) VALUES ('order.placed', ?, ?)",
    )
    .bind(&order_id)
    .bind(order.to_string())
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(Placed::Created(order))
}

impl MySqlTxHttp {
    pub async fn new(pool: MySqlPool) -> anyhow::Result<Self> {
        for statement in [
            "CREATE TABLE IF NOT EXISTS peer_product (sku VARCHAR(64) NOT NULL PRIMARY KEY, \
             price_amount BIGINT NOT NULL, currency CHAR(3) NOT NULL, available BIGINT NOT NULL) ENGINE = InnoDB",
            "CREATE TABLE IF NOT EXISTS peer_order (id VARCHAR(64) NOT NULL PRIMARY KEY, \
             user_id VARCHAR(64) NOT NULL, idempotency_key VARCHAR(255) NULL, status VARCHAR(32) NOT NULL, \
             currency CHAR(3) NOT NULL, total_amount BIGINT NOT NULL, \
             created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), \
             UNIQUE KEY peer_order_key (user_id, idempotency_key)) ENGINE = InnoDB",
            "CREATE TABLE IF NOT EXISTS peer_order_line (order_id VARCHAR(64) NOT NULL, line_no INT NOT NULL, \
             sku VARCHAR(64) NOT NULL, quantity BIGINT NOT NULL, PRIMARY KEY (order_id, line_no), \
             KEY peer_order_line_sku (sku)) ENGINE = InnoDB",
            "CREATE TABLE IF NOT EXISTS peer_outbox (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
             topic VARCHAR(64) NOT NULL, aggregate_id VARCHAR(64) NOT NULL, payload TEXT NOT NULL, \
             created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE = InnoDB",
        ] {
            pool.execute(statement).await?;
        }
        let secret = uuid::Uuid::now_v7().simple().to_string().repeat(2);
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "peer-customer".to_owned(),
                exp: (chrono::Utc::now().timestamp() + 24 * 3600) as u64,
            },
            &EncodingKey::from_secret(secret.as_bytes()),
        )?;
        let endpoint = web::Data::new(Endpoint {
            pool: pool.clone(),
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation: Validation::new(Algorithm::HS256),
        });
        let (host, port) = ActixHost::start(move || async move {
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(endpoint.clone())
                    .route("/orders", web::post().to(create_order))
            })
            .keep_alive(souk_api::http::KEEP_ALIVE)
            .bind(("127.0.0.1", 0))?;
            let port = server
                .addrs()
                .first()
                .map(|address| address.port())
                .ok_or_else(|| anyhow::anyhow!("the peer endpoint bound no address"))?;
            actix_rt::spawn(server.run());
            Ok(port)
        })
        .await?;
        Ok(Self {
            base: format!("http://127.0.0.1:{port}"),
            client: http_client()?,
            token,
            pool,
            _host: host,
        })
    }
}

impl Strategy for MySqlTxHttp {
    fn name(&self) -> &'static str {
        "mysql-tx-http"
    }

    async fn prepare(&self, cell: &Cell) -> anyhow::Result<()> {
        // Cells run one after another, so the tables hold one cell at a time.
        for table in [
            "peer_outbox",
            "peer_order_line",
            "peer_order",
            "peer_product",
        ] {
            self.pool
                .execute(format!("TRUNCATE TABLE {table}").as_str())
                .await?;
        }
        let stock = cell.stock_per_sku;
        seed_rows(
            &self.pool,
            "peer_product (sku, price_amount, currency, available)",
            cell,
            |values, sku| {
                values
                    .push_bind(sku)
                    .push_bind(PRICE)
                    .push_bind("EUR")
                    .push_bind(stock);
            },
        )
        .await
    }

    async fn reserve(&self, cell: &Cell, sku: usize, order_id: String) -> anyhow::Result<Attempt> {
        post_order(
            &self.client,
            &format!("{}/orders", self.base),
            &self.token,
            order_id,
            &cell.sku(sku),
        )
        .await
    }

    async fn verify(&self, cell: &Cell) -> anyhow::Result<Verification> {
        let initial = cell.stock_per_sku;
        let (recorded, outboxed): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM peer_order), (SELECT COUNT(*) FROM peer_outbox)",
        )
        .fetch_one(&self.pool)
        .await?;
        let (oversold, inconsistent) = oversold_and_inconsistent(
            &self.pool,
            "peer_product",
            "SELECT sku, SUM(quantity) AS units FROM peer_order_line GROUP BY sku",
            initial,
        )
        .await?;
        Ok(Verification {
            recorded: recorded as u64,
            oversold_units: oversold,
            // An order without its outbox row is as inconsistent as a counter that
            // disagrees with the lines.
            inconsistent_skus: inconsistent as u64 + recorded.abs_diff(outboxed),
        })
    }
}
