//! `GET /account/orders/{id}?sig=…`: an order's status, opened from an order mail. The
//! link is signed for that order (`OrderLinks`); without a valid signature the page
//! does not exist, whatever the id.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use souk_actors::email::templates::{format_money, mail_time};
use souk_actors::orders::OrderView;

use super::page::{self, PageError};
use super::Account;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct SignedQuery {
    pub sig: String,
}

struct Line {
    name: String,
    sku: String,
    quantity: i64,
    amount: String,
}

#[derive(Template)]
#[template(path = "account/order.html")]
struct OrderPage {
    id: String,
    status: String,
    summary: String,
    lines: Vec<Line>,
    total: String,
    placed: String,
}

/// RFC 3339 as a mail says it; the raw text if it does not parse.
fn readable(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|at| mail_time(at.timestamp_micros()))
        .unwrap_or_else(|_| at.to_owned())
}

/// What the order's status means for the shopper, in a sentence.
fn summary(order: &OrderView) -> String {
    match order.status.as_str() {
        "pending_payment" => format!(
            "Waiting for payment: the items stay reserved until {}.",
            readable(&order.expires_at)
        ),
        "paid" => "Paid: we are preparing it for shipping.".to_owned(),
        "shipped" => "Shipped: it is on its way.".to_owned(),
        "delivered" => "Delivered.".to_owned(),
        "cancelled" if order.payment_status == "refunded" => {
            "Cancelled; the payment is refunded.".to_owned()
        }
        "cancelled" if order.payment_status == "refund_pending" => {
            "Cancelled; the payment will be refunded.".to_owned()
        }
        "cancelled" => "Cancelled.".to_owned(),
        "expired" => "Expired: it was not paid in time, and nothing was charged.".to_owned(),
        other => other.replace('_', " "),
    }
}

pub async fn order_status(
    state: web::Data<AppState>,
    account: web::Data<Account>,
    id: web::Path<String>,
    query: web::Query<SignedQuery>,
) -> Result<HttpResponse, PageError> {
    let not_found = || PageError::NotFound("this order link is not valid".to_owned());
    if !account.order_links.verify(&id, &query.sig) {
        return Err(not_found());
    }
    let order = match state.orders.get(&id, None).await {
        Ok(order) => order,
        Err(error) if error.code() == crate::error::ErrorCode::NotFound => return Err(not_found()),
        Err(error) => return Err(error.into()),
    };
    let page = OrderPage {
        summary: summary(&order),
        status: order.status.replace('_', " "),
        lines: order
            .items
            .iter()
            .map(|line| Line {
                name: line.name.clone(),
                sku: line.sku.clone(),
                quantity: line.quantity,
                amount: format_money(line.line_total.amount, &line.line_total.currency),
            })
            .collect(),
        total: format_money(order.total.amount, &order.total.currency),
        placed: readable(&order.created_at),
        id: order.id,
    };
    Ok(page::render(StatusCode::OK, &page))
}
