//! A Souk gRPC client: logs in, finds a product by SKU and places an order for it.
//!
//! ```text
//! cargo run -p souk-proto --example grpc_client -- \
//!     http://127.0.0.1:50051 shopper@example.com 'their password' SEED-000001 2
//! ```
//!
//! Arguments: gRPC URL, email, password, SKU, quantity (default 1). The order is
//! created with an idempotency key, so running it twice with the same arguments within
//! a second places one order.

use souk_proto::v1 as pb;
use souk_proto::v1::auth_service_client::AuthServiceClient;
use souk_proto::v1::order_service_client::OrderServiceClient;
use souk_proto::v1::product_service_client::ProductServiceClient;
use tonic::Request;

fn with_token<T>(message: T, token: &str) -> Result<Request<T>, Box<dyn std::error::Error>> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

fn money(value: Option<&pb::Money>) -> String {
    value
        .map(|money| format!("{} {}", money.amount, money.currency))
        .unwrap_or_default()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, email, password, sku, rest @ ..] = args.as_slice() else {
        eprintln!("usage: grpc_client <grpc url> <email> <password> <sku> [quantity]");
        std::process::exit(2);
    };
    let quantity: i64 = rest
        .first()
        .map(|raw| raw.parse())
        .transpose()?
        .unwrap_or(1);
    let channel = tonic::transport::Channel::from_shared(url.clone())?
        .connect()
        .await?;

    let tokens = AuthServiceClient::new(channel.clone())
        .login(pb::LoginRequest {
            email: email.clone(),
            password: password.clone(),
        })
        .await?
        .into_inner();
    println!("logged in as {email}");

    let product = ProductServiceClient::new(channel.clone())
        .get_product_by_sku(pb::GetProductBySkuRequest { sku: sku.clone() })
        .await?
        .into_inner();
    println!(
        "{} {:?}: {} ({} available)",
        product.sku,
        product.name,
        money(product.price.as_ref()),
        product.available
    );

    let key = format!(
        "grpc-client-{email}-{sku}-{quantity}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    let order = OrderServiceClient::new(channel)
        .create_order(with_token(
            pb::CreateOrderRequest {
                items: vec![pb::OrderItem {
                    sku: sku.clone(),
                    quantity,
                }],
                idempotency_key: key,
            },
            &tokens.access_token,
        )?)
        .await;
    match order {
        Ok(order) => {
            let order = order.into_inner();
            println!(
                "order {} is {}: total {}, pay before {}",
                order.id,
                order.status,
                money(order.total.as_ref()),
                order.expires_at
            );
            Ok(())
        }
        Err(status) => {
            eprintln!(
                "the order was refused: {:?}: {}",
                status.code(),
                status.message()
            );
            std::process::exit(1);
        }
    }
}
