//! Stock pages: the table of every SKU (search, low/out-of-stock filters, sort, pages,
//! the hot-SKU panel), a SKU's page (its numbers, open reservations with their orders,
//! the movement ledger, the adjust form) and the adjustment itself, which goes through
//! the SKU's actor like every other change and shows its refusal in plain words.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use souk_db::inventory::{StockFilter, StockOverviewQuery, StockSort};

use super::csrf;
use super::live::HotSku;
use super::page::{self, encode, short_time, Chrome, ConsoleError};
use super::session::AdminSession;
use super::Console;
use crate::error::{Error, ErrorCode};
use crate::state::AppState;
use souk_actors::catalog::model::parse_sku;
use souk_actors::inventory::service::{validate_adjustment, OnHandChange, StockChange, StockView};
use souk_actors::orders::views::checked_idempotency_key;
use souk_actors::paging::{decode_cursor, encode_cursor};

const PAGE_SIZE: u32 = 50;
const LEDGER_PAGE_SIZE: u32 = 50;
const RESERVATIONS_SHOWN: usize = 100;

/// How a SKU's stock stands, for the row's colour.
pub fn level(available: i64, threshold: i64) -> &'static str {
    if available <= 0 {
        "out"
    } else if threshold > 0 && available < threshold {
        "low"
    } else {
        "ok"
    }
}

pub struct StockRow {
    pub sku: String,
    pub name: String,
    pub status: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub threshold: i64,
    pub level: &'static str,
}

pub struct SortLink {
    pub label: &'static str,
    pub href: String,
    /// `▲`, `▼` or empty.
    pub mark: &'static str,
    pub numeric: bool,
}

#[derive(Template)]
#[template(path = "console/stock.html")]
struct StockPage {
    chrome: Chrome,
    q: String,
    filter: &'static str,
    sort: &'static str,
    dir: &'static str,
    headers: Vec<SortLink>,
    rows: Vec<StockRow>,
    page: u32,
    previous: Option<String>,
    next: Option<String>,
    hot: Vec<HotSku>,
    live: bool,
    skus: String,
}

#[derive(Debug, Deserialize)]
pub struct TableQuery {
    q: Option<String>,
    filter: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<u32>,
}

const FILTERS: [(&str, StockFilter); 3] = [
    ("all", StockFilter::All),
    ("low", StockFilter::Low),
    ("out", StockFilter::Out),
];

const SORTS: [(&str, StockSort, &str, bool); 5] = [
    ("sku", StockSort::Sku, "SKU", false),
    ("name", StockSort::Name, "Name", false),
    ("on_hand", StockSort::OnHand, "On hand", true),
    ("reserved", StockSort::Reserved, "Reserved", true),
    ("available", StockSort::Available, "Available", true),
];

fn table_link(q: &str, filter: &str, sort: &str, dir: &str, page: u32) -> String {
    format!(
        "/admin/stock?q={}&filter={filter}&sort={sort}&dir={dir}&page={page}",
        encode(q)
    )
}

/// `GET /admin/stock`
pub async fn table(
    state: web::Data<AppState>,
    console: web::Data<Console>,
    admin: AdminSession,
    query: web::Query<TableQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let q: String = query
        .q
        .as_deref()
        .unwrap_or("")
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let (filter_name, filter) = FILTERS
        .into_iter()
        .find(|(name, _)| Some(*name) == query.filter.as_deref())
        .unwrap_or(FILTERS[0]);
    let (sort_name, sort, _, _) = SORTS
        .into_iter()
        .find(|(name, ..)| Some(*name) == query.sort.as_deref())
        .unwrap_or(SORTS[0]);
    let descending = query.dir.as_deref() == Some("desc");
    let dir = if descending { "desc" } else { "asc" };
    let page_number = query.page.unwrap_or(1).clamp(1, 100_000);
    let mut items = state
        .inventory
        .overview(&StockOverviewQuery {
            text: (!q.is_empty()).then(|| q.clone()),
            filter,
            sort,
            descending,
            offset: (page_number - 1) * PAGE_SIZE,
            limit: PAGE_SIZE,
        })
        .await?;
    let has_more = items.len() > PAGE_SIZE as usize;
    items.truncate(PAGE_SIZE as usize);
    let rows: Vec<StockRow> = items
        .into_iter()
        .map(|item| {
            let available = item.on_hand - item.reserved;
            StockRow {
                level: level(available, item.low_stock_threshold),
                sku: item.sku,
                name: item.name,
                status: item.status,
                on_hand: item.on_hand,
                reserved: item.reserved,
                available,
                threshold: item.low_stock_threshold,
            }
        })
        .collect();
    let headers = SORTS
        .into_iter()
        .map(|(name, _, label, numeric)| {
            let current = name == sort_name;
            let next_dir = if current && !descending {
                "desc"
            } else {
                "asc"
            };
            SortLink {
                label,
                href: table_link(&q, filter_name, name, next_dir, 1),
                mark: match (current, descending) {
                    (false, _) => "",
                    (true, false) => "▲",
                    (true, true) => "▼",
                },
                numeric,
            }
        })
        .collect();
    let live = console.hub().start(&state).await;
    let skus = rows
        .iter()
        .map(|row| row.sku.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let template = StockPage {
        chrome: Chrome::new("stock", &admin),
        previous: (page_number > 1)
            .then(|| table_link(&q, filter_name, sort_name, dir, page_number - 1)),
        next: has_more.then(|| table_link(&q, filter_name, sort_name, dir, page_number + 1)),
        q,
        filter: filter_name,
        sort: sort_name,
        dir,
        headers,
        rows,
        page: page_number,
        hot: console.hub().hot(),
        live,
        skus,
    };
    Ok(page::render(StatusCode::OK, &template))
}

pub struct ReservationRow {
    pub order_id: String,
    pub quantity: i64,
    pub expires_at: String,
}

pub struct MovementRow {
    pub at: String,
    pub kind: String,
    pub delta_on_hand: i64,
    pub delta_reserved: i64,
    pub actor: String,
    pub reason: String,
    pub order_id: Option<String>,
    pub version: i64,
}

/// What the adjust form shows back after a refusal.
#[derive(Default)]
pub struct AdjustDraft {
    pub mode: String,
    pub amount: String,
    pub reason: String,
    pub threshold: String,
    /// The form's Idempotency-Key: a form sent twice (a double click, a resend) changes
    /// the stock once.
    pub request: String,
}

#[derive(Template)]
#[template(path = "console/sku.html")]
struct SkuPage {
    chrome: Chrome,
    sku: String,
    name: String,
    status: String,
    stock: StockView,
    level: &'static str,
    reservations: Vec<ReservationRow>,
    more_reservations: usize,
    movements: Vec<MovementRow>,
    ledger_first: bool,
    ledger_next: Option<String>,
    draft: AdjustDraft,
    problems: Vec<String>,
    notice: Option<String>,
    live: bool,
}

#[derive(Template)]
#[template(path = "console/reservations.html")]
struct ReservationsFragment {
    reservations: Vec<ReservationRow>,
    more_reservations: usize,
}

fn reservation_rows(stock: &StockView) -> (Vec<ReservationRow>, usize) {
    let mut rows: Vec<ReservationRow> = stock
        .reservations
        .iter()
        .map(|held| ReservationRow {
            order_id: held.order_id.clone(),
            quantity: held.quantity,
            expires_at: held.expires_at.clone(),
        })
        .collect();
    // RFC 3339 UTC times of one format sort as text.
    rows.sort_by(|a, b| a.expires_at.cmp(&b.expires_at));
    let more = rows.len().saturating_sub(RESERVATIONS_SHOWN);
    rows.truncate(RESERVATIONS_SHOWN);
    for row in &mut rows {
        row.expires_at = short_time(&row.expires_at);
    }
    (rows, more)
}

#[derive(Debug, Deserialize)]
pub struct SkuQuery {
    after: Option<String>,
    adjusted: Option<String>,
}

/// A SKU of the catalog, or the console's 404.
async fn catalog_sku(
    state: &AppState,
    raw: &str,
) -> Result<(String, String, String), ConsoleError> {
    let unknown = || ConsoleError::NotFound(format!("no SKU {raw:?} in the catalog"));
    let sku = parse_sku(raw).map_err(|_| unknown())?;
    match state.catalog.get_product_by_sku(&sku, true).await {
        Ok(product) => Ok((sku, product.name, product.status.as_str().to_owned())),
        Err(error) if error.code() == ErrorCode::NotFound => Err(unknown()),
        Err(error) => Err(error.into()),
    }
}

struct SkuPageInput {
    after: Option<String>,
    draft: AdjustDraft,
    problems: Vec<String>,
    notice: Option<String>,
}

async fn sku_response(
    state: &AppState,
    console: &Console,
    admin: &AdminSession,
    raw_sku: &str,
    status: StatusCode,
    input: SkuPageInput,
) -> Result<HttpResponse, ConsoleError> {
    let (sku, name, product_status) = catalog_sku(state, raw_sku).await?;
    let stock = state.inventory.stock(&sku).await?;
    let after = match input.after.as_deref() {
        Some(cursor) => Some(decode_cursor(cursor)?),
        None => None,
    };
    let mut movements = state
        .inventory
        .movements(&sku, after.as_deref(), LEDGER_PAGE_SIZE)
        .await?;
    let has_more = movements.len() > LEDGER_PAGE_SIZE as usize;
    movements.truncate(LEDGER_PAGE_SIZE as usize);
    let ledger_next = has_more.then(|| movements.last()).flatten().map(|last| {
        format!(
            "/admin/stock/{sku}?after={}",
            encode(&encode_cursor(&last.id))
        )
    });
    let (reservations, more_reservations) = reservation_rows(&stock);
    let live = console.hub().start(state).await;
    let template = SkuPage {
        chrome: Chrome::new("stock", admin),
        level: level(stock.available, stock.low_stock_threshold),
        movements: movements
            .into_iter()
            .map(|movement| MovementRow {
                at: short_time(&souk_db::clock::to_datetime(movement.created_at).to_rfc3339()),
                kind: movement.kind,
                delta_on_hand: movement.delta_on_hand,
                delta_reserved: movement.delta_reserved,
                actor: movement.actor,
                reason: movement.reason,
                order_id: movement.order_id,
                version: movement.version,
            })
            .collect(),
        ledger_first: after.is_none(),
        ledger_next,
        reservations,
        more_reservations,
        sku,
        name,
        status: product_status,
        stock,
        draft: input.draft,
        problems: input.problems,
        notice: input.notice,
        live,
    };
    Ok(page::render(status, &template))
}

/// `GET /admin/stock/{sku}`
pub async fn sku_page(
    state: web::Data<AppState>,
    console: web::Data<Console>,
    admin: AdminSession,
    sku: web::Path<String>,
    query: web::Query<SkuQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let query = query.into_inner();
    let notice = query
        .adjusted
        .is_some()
        .then(|| "Adjustment committed.".to_owned());
    sku_response(
        &state,
        &console,
        &admin,
        &sku,
        StatusCode::OK,
        SkuPageInput {
            after: query.after,
            draft: AdjustDraft {
                mode: "delta".into(),
                request: souk_db::ids::new_id(),
                ..AdjustDraft::default()
            },
            problems: Vec::new(),
            notice,
        },
    )
    .await
}

/// `GET /admin/stock/{sku}/reservations`: the open-reservations table alone, which the
/// page's script reloads when the live feed says the SKU changed. It is read from the
/// SKU actor's memory, not the database.
pub async fn reservations_fragment(
    state: web::Data<AppState>,
    _admin: AdminSession,
    sku: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let (sku, ..) = catalog_sku(&state, &sku).await?;
    let stock = state.inventory.stock(&sku).await?;
    let (reservations, more_reservations) = reservation_rows(&stock);
    Ok(page::render(
        StatusCode::OK,
        &ReservationsFragment {
            reservations,
            more_reservations,
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct AdjustForm {
    csrf: Option<String>,
    /// `delta` (add or remove units) or `set` (make on hand this many).
    mode: Option<String>,
    amount: Option<String>,
    reason: Option<String>,
    threshold: Option<String>,
    /// The form's Idempotency-Key, given when the form was shown.
    request: Option<String>,
}

fn parse_whole(field: &str, raw: &str) -> Result<i64, String> {
    raw.trim()
        .trim_start_matches('+')
        .parse::<i64>()
        .map_err(|_| format!("{field} must be a whole number"))
}

/// The actor's refusals and the validation's, in the words an admin reads.
fn plain_words(error: &Error, stock: Option<&StockView>, delta: i64) -> Vec<String> {
    match error.code() {
        ErrorCode::BelowReserved => {
            let detail = match stock {
                Some(stock) => format!(
                    "Refused: this would leave {} on hand, but {} units are reserved by open \
                     orders. On hand cannot go below what is reserved; release or wait for \
                     those orders first.",
                    stock.on_hand + delta,
                    stock.reserved
                ),
                None => format!("Refused: {}.", error.detail()),
            };
            vec![detail]
        }
        ErrorCode::ValidationFailed if !error.field_errors().is_empty() => error
            .field_errors()
            .iter()
            .map(|field| format!("{}: {}.", field.field.replace('_', " "), field.message))
            .collect(),
        _ => vec![format!("Refused: {}.", error.detail())],
    }
}

/// `POST /admin/stock/{sku}/adjust`
pub async fn adjust(
    state: web::Data<AppState>,
    console: web::Data<Console>,
    admin: AdminSession,
    raw_sku: web::Path<String>,
    form: web::Form<AdjustForm>,
) -> Result<HttpResponse, ConsoleError> {
    let form = form.into_inner();
    csrf::check(&admin, form.csrf.as_deref())?;
    let (sku, ..) = catalog_sku(&state, &raw_sku).await?;
    let draft = AdjustDraft {
        mode: if form.mode.as_deref() == Some("set") {
            "set".into()
        } else {
            "delta".into()
        },
        amount: form.amount.clone().unwrap_or_default(),
        reason: form.reason.clone().unwrap_or_default(),
        threshold: form.threshold.clone().unwrap_or_default(),
        // Shown again after a refusal, which changed nothing: the same key serves.
        request: form.request.clone().unwrap_or_else(souk_db::ids::new_id),
    };
    let refuse = |draft: AdjustDraft, status: StatusCode, problems: Vec<String>| {
        let (state, console, admin, sku) =
            (state.clone(), console.clone(), admin.clone(), sku.clone());
        async move {
            tracing::info!(user_id = %admin.user_id, %sku, ?problems, "console adjustment refused");
            let input = SkuPageInput {
                after: None,
                draft,
                problems,
                notice: None,
            };
            sku_response(&state, &console, &admin, &sku, status, input).await
        }
    };
    // A form without a key (one made by hand) is applied as sent.
    let request_key = match form
        .request
        .as_deref()
        .map(|raw| checked_idempotency_key("request", raw))
    {
        None => None,
        Some(Ok(key)) => Some(key),
        Some(Err(_)) => {
            let problem = "This form is out of date: reload the page and try again.".to_owned();
            return refuse(draft, StatusCode::UNPROCESSABLE_ENTITY, vec![problem]).await;
        }
    };
    let amount = match parse_whole("amount", draft.amount.as_str()) {
        Ok(amount) => amount,
        Err(problem) => {
            return refuse(draft, StatusCode::UNPROCESSABLE_ENTITY, vec![problem]).await
        }
    };
    let threshold = match draft.threshold.trim() {
        "" => None,
        raw => match parse_whole("low-stock threshold", raw) {
            Ok(threshold) => Some(threshold),
            Err(problem) => {
                return refuse(draft, StatusCode::UNPROCESSABLE_ENTITY, vec![problem]).await
            }
        },
    };
    // "Set to" is sent as a count, which the actor applies to on_hand as it holds it
    // then; the difference from what is read here only words the form's checks.
    let current = if draft.mode == "set" {
        Some(state.inventory.stock(&sku).await?)
    } else {
        None
    };
    let (delta, change) = match &current {
        Some(stock) => (
            amount.saturating_sub(stock.on_hand),
            OnHandChange::To(amount),
        ),
        None => (amount, OnHandChange::By(amount)),
    };
    let reason = match validate_adjustment(delta, &draft.reason, threshold) {
        Ok(reason) => reason,
        Err(error) => {
            let problems = if draft.mode == "set" && delta == 0 && threshold.is_none() {
                vec![format!("On hand is already {amount}; nothing to change.")]
            } else {
                plain_words(&error, None, delta)
            };
            return refuse(draft, crate::error::http_status(error.code()), problems).await;
        }
    };
    match state
        .inventory
        .adjust(
            &sku,
            StockChange {
                on_hand: change,
                reason,
                low_stock_threshold: threshold,
                request_key,
            },
            &admin.user_id,
        )
        .await
    {
        Ok(stock) => {
            tracing::info!(user_id = %admin.user_id, %sku, delta, version = stock.version, "console adjustment committed");
            Ok(page::see_other(&format!("/admin/stock/{sku}?adjusted=1")))
        }
        Err(error) if crate::error::http_status(error.code()).is_client_error() => {
            let stock = match current {
                Some(stock) => Some(stock),
                None => state.inventory.stock(&sku).await.ok(),
            };
            let problems = plain_words(&error, stock.as_ref(), delta);
            refuse(draft, crate::error::http_status(error.code()), problems).await
        }
        Err(error) => Err(error.into()),
    }
}
