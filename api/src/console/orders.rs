//! Order pages: the list (newest first, filtered by status, paged), an order with its
//! lines, totals and history, and the admin transitions — ship, deliver, cancel with a
//! reason — sent through the order's actor. Which buttons show is asked of the order
//! state machine itself; a refused transition is shown on the page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use souk_actors::orders::{transition, Event, Initiator};
use souk_db::orders::OrderFilter;

use super::csrf;
use super::page::{self, encode, short_time, Chrome, ConsoleError};
use super::session::AdminSession;
use crate::state::AppState;
use souk_actors::email::templates::format_money;
use souk_actors::orders::views::{
    checked_reason, decode_order_cursor as decode_cursor, encode_order_cursor as encode_cursor,
};
use souk_actors::orders::{Caller, OrderStatus, OrderView};

const PAGE_SIZE: u32 = 50;
pub const STATUSES: [&str; 6] = [
    "pending_payment",
    "paid",
    "shipped",
    "delivered",
    "cancelled",
    "expired",
];

pub struct StatusOption {
    pub value: &'static str,
    pub selected: bool,
}

pub struct OrderRow {
    pub id: String,
    pub created_at: String,
    pub user_id: String,
    pub status: String,
    pub payment_status: String,
    pub fulfilment_status: String,
    pub units: i64,
    pub total: String,
}

#[derive(Template)]
#[template(path = "console/orders.html")]
struct OrdersPage {
    chrome: Chrome,
    statuses: Vec<StatusOption>,
    status: String,
    rows: Vec<OrderRow>,
    first: bool,
    first_link: String,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
}

fn list_link(status: &str, cursor: Option<&str>) -> String {
    let mut link = format!("/admin/orders?status={}", encode(status));
    if let Some(cursor) = cursor {
        link.push_str("&cursor=");
        link.push_str(&encode(cursor));
    }
    link
}

/// `GET /admin/orders`
pub async fn list(
    state: web::Data<AppState>,
    admin: AdminSession,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let status = query
        .status
        .as_deref()
        .and_then(OrderStatus::parse)
        .map(|status| status.as_str().to_owned());
    let before = decode_cursor(query.cursor.as_deref().filter(|cursor| !cursor.is_empty()))?;
    let filter = OrderFilter {
        user_id: None,
        status: status.clone(),
        created_from: None,
        created_to: None,
        before: before.clone(),
        limit: PAGE_SIZE,
    };
    let (orders, next) = state.orders.list(&filter).await?;
    let status = status.unwrap_or_default();
    let rows = orders
        .into_iter()
        .map(|order| OrderRow {
            created_at: short_time(&order.created_at),
            units: order.items.iter().map(|line| line.quantity).sum(),
            total: format_money(order.total.amount, &order.total.currency),
            id: order.id,
            user_id: order.user_id,
            status: order.status,
            payment_status: order.payment_status,
            fulfilment_status: order.fulfilment_status,
        })
        .collect();
    let next = encode_cursor(next).map(|cursor| list_link(&status, Some(&cursor)));
    let template = OrdersPage {
        chrome: Chrome::new("orders", &admin),
        statuses: STATUSES
            .into_iter()
            .map(|value| StatusOption {
                value,
                selected: value == status,
            })
            .collect(),
        first: before.is_none(),
        first_link: list_link(&status, None),
        status,
        rows,
        next,
    };
    Ok(page::render(StatusCode::OK, &template))
}

pub struct LineRow {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: String,
    pub line_total: String,
}

pub struct HistoryRow {
    pub at: String,
    pub from: String,
    pub to: String,
    pub actor: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "console/order.html")]
struct OrderPage {
    chrome: Chrome,
    order: OrderView,
    created_at: String,
    expires_at: String,
    total: String,
    lines: Vec<LineRow>,
    history: Vec<HistoryRow>,
    can_ship: bool,
    can_deliver: bool,
    can_cancel: bool,
    problem: Option<String>,
    notice: Option<String>,
    reason: String,
}

#[derive(Debug, Deserialize)]
pub struct OrderQuery {
    done: Option<String>,
}

/// Whether an admin may send `event` to an order in `status`, as the state machine says.
fn allowed(status: &str, event: Event) -> bool {
    OrderStatus::parse(status).is_some_and(|from| transition(from, event, Initiator::Admin).is_ok())
}

fn order_response(
    admin: &AdminSession,
    order: OrderView,
    status: StatusCode,
    problem: Option<String>,
    notice: Option<String>,
    reason: String,
) -> HttpResponse {
    let template = OrderPage {
        chrome: Chrome::new("orders", admin),
        created_at: short_time(&order.created_at),
        expires_at: short_time(&order.expires_at),
        total: format_money(order.total.amount, &order.total.currency),
        lines: order
            .items
            .iter()
            .map(|line| LineRow {
                sku: line.sku.clone(),
                name: line.name.clone(),
                quantity: line.quantity,
                unit_price: format_money(line.unit_price.amount, &line.unit_price.currency),
                line_total: format_money(line.line_total.amount, &line.line_total.currency),
            })
            .collect(),
        history: order
            .history
            .iter()
            .map(|entry| HistoryRow {
                at: short_time(&entry.at),
                from: entry.from.clone().unwrap_or_default(),
                to: entry.to.clone(),
                actor: entry.actor.clone(),
                reason: entry.reason.clone(),
            })
            .collect(),
        can_ship: allowed(&order.status, Event::Ship),
        can_deliver: allowed(&order.status, Event::Deliver),
        can_cancel: allowed(&order.status, Event::Cancel),
        order,
        problem,
        notice,
        reason,
    };
    page::render(status, &template)
}

/// `GET /admin/orders/{id}`
pub async fn order_page(
    state: web::Data<AppState>,
    admin: AdminSession,
    id: web::Path<String>,
    query: web::Query<OrderQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let order = state.orders.get(&id, None).await?;
    let notice = match query.done.as_deref() {
        Some("ship") => Some("Marked as shipped.".to_owned()),
        Some("deliver") => Some("Marked as delivered.".to_owned()),
        Some("cancel") => Some("Cancelled.".to_owned()),
        _ => None,
    };
    Ok(order_response(
        &admin,
        order,
        StatusCode::OK,
        None,
        notice,
        String::new(),
    ))
}

#[derive(Debug, Deserialize)]
pub struct TransitionForm {
    csrf: Option<String>,
    reason: Option<String>,
}

/// `POST /admin/orders/{id}/{ship|deliver|cancel}`
pub async fn transition_order(
    state: web::Data<AppState>,
    admin: AdminSession,
    path: web::Path<(String, String)>,
    form: web::Form<TransitionForm>,
) -> Result<HttpResponse, ConsoleError> {
    let (id, action) = path.into_inner();
    let form = form.into_inner();
    csrf::check(&admin, form.csrf.as_deref())?;
    let outcome = match action.as_str() {
        "ship" => state.orders.fulfil(&admin.user_id, &id, Event::Ship).await,
        "deliver" => {
            state
                .orders
                .fulfil(&admin.user_id, &id, Event::Deliver)
                .await
        }
        "cancel" => {
            let reason = checked_reason(form.reason.clone(), "cancelled by an admin");
            state
                .orders
                .cancel(Caller::Admin(admin.user_id.clone()), &id, &reason)
                .await
        }
        other => return Err(ConsoleError::NotFound(format!("no order action {other:?}"))),
    };
    match outcome {
        Ok(order) => {
            tracing::info!(user_id = %admin.user_id, order_id = %order.id, action, "console order transition");
            Ok(page::see_other(&format!(
                "/admin/orders/{}?done={action}",
                order.id
            )))
        }
        Err(error)
            if (400..500).contains(&error.code().http_status())
                && error.code().http_status() != 404 =>
        {
            let order = state.orders.get(&id, None).await?;
            let problem = format!("Refused: {}.", error.detail());
            Ok(order_response(
                &admin,
                order,
                crate::error::http_status(error.code()),
                Some(problem),
                None,
                form.reason.unwrap_or_default(),
            ))
        }
        Err(error) => Err(error.into()),
    }
}
