//! A Souk gRPC client: logs in, finds a product by SKU and places an order for it.
//!
//! ```text
//! cargo run -p souk-proto --example grpc_client -- \
//!     http://127.0.0.1:50051 shopper@example.com 'their password' SEED-000001 2
//! ```
//!
//! Arguments: gRPC URL, email, password, SKU, quantity (default 1). The order is
//! created with an idempotency key, so running it twice with the same arguments within
//! a second places one order. Any failure is printed as one line (the gRPC status code
//! and its message, or the error and its causes) and exits with status 1.

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

/// An error as one readable line: a gRPC status as its code and message, anything
/// else as its message followed by its causes.
fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    if let Some(status) = error.downcast_ref::<tonic::Status>() {
        return format!("{:?}: {}", status.code(), status.message());
    }
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, email, password, sku, rest @ ..] = args.as_slice() else {
        eprintln!("usage: grpc_client <grpc url> <email> <password> <sku> [quantity]");
        std::process::exit(2);
    };
    if let Err(error) = run(url, email, password, sku, rest).await {
        eprintln!("grpc_client: {}", one_line(error.as_ref()));
        std::process::exit(1);
    }
}

async fn run(
    url: &str,
    email: &str,
    password: &str,
    sku: &str,
    rest: &[String],
) -> Result<(), Box<dyn std::error::Error>> {
    let quantity: i64 = rest
        .first()
        .map(|raw| raw.parse())
        .transpose()?
        .unwrap_or(1);
    let channel = tonic::transport::Channel::from_shared(url.to_owned())?
        .connect()
        .await?;

    let tokens = AuthServiceClient::new(channel.clone())
        .login(pb::LoginRequest {
            email: email.to_owned(),
            password: password.to_owned(),
        })
        .await?
        .into_inner();
    println!("logged in as {email}");

    let product = ProductServiceClient::new(channel.clone())
        .get_product_by_sku(pb::GetProductBySkuRequest {
            sku: sku.to_owned(),
        })
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
                    sku: sku.to_owned(),
                    quantity,
                }],
                idempotency_key: key,
                ..Default::default()
            },
            &tokens.access_token,
        )?)
        .await;
    let order = order?.into_inner();
    println!(
        "order {} is {}: total {}, pay before {}",
        order.id,
        order.status,
        money(order.total.as_ref()),
        order.expires_at
    );
    Ok(())
}
