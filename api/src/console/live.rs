//! Live stock for the console: one hub per node subscribes to the SKU actors' feed of
//! committed batches (never to the database), keeps a one-minute window of reservations
//! per SKU for the hot-SKU ranking, and every half second hands the open consoles one
//! shared tick: the SKUs that changed, each already serialized, and the ranking. A
//! console's event stream (`GET /admin/live?skus=…`) only picks the SKUs it shows out
//! of each tick, so viewers add no work to the actors and almost none per batch.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use souk_actors::inventory::{CommittedReceiver, CommittedStock};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::OnceCell;

use super::page::ConsoleError;
use super::session::{self, AdminSession};
use super::Console;
use crate::state::AppState;

const TICK: Duration = Duration::from_millis(500);
const WINDOW_SECS: u64 = 60;
const HOT_SKUS: usize = 10;
/// Ticks kept for a viewer that is behind; a viewer further behind is told to resync.
const TICKS_BUFFERED: usize = 64;
const KEEPALIVE: Duration = Duration::from_secs(15);
/// How often an open stream checks that its session is still live.
const SESSION_RECHECK: Duration = Duration::from_secs(30);
/// SKUs one stream may follow (a page of the stock table and then some).
const MAX_SKUS: usize = 200;

/// One SKU of the hot panel.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HotSku {
    pub sku: String,
    /// Reservations per second over the last minute.
    pub per_second: f64,
    pub last_minute: u64,
    pub available: i64,
}

/// What every open console receives twice a second.
#[derive(Debug, Default)]
pub struct Tick {
    /// SKU → its stock as a JSON object, for the SKUs that changed since the last tick.
    stock: HashMap<String, String>,
    /// The hot panel as a JSON array, once a second.
    hot: Option<Arc<str>>,
}

pub struct Hub {
    ticks: OnceCell<Option<broadcast::Sender<Arc<Tick>>>>,
    hot: Arc<Mutex<Vec<HotSku>>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        Self {
            ticks: OnceCell::new(),
            hot: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Starts the hub on first use; `false` when the SKU actors run in another process
    /// (their feed does not reach here).
    pub async fn start(&self, state: &AppState) -> bool {
        self.sender(state).await.is_some()
    }

    async fn sender(&self, state: &AppState) -> Option<&broadcast::Sender<Arc<Tick>>> {
        self.ticks
            .get_or_init(|| async {
                let feed = state.inventory.committed()?;
                let (ticks, _) = broadcast::channel(TICKS_BUFFERED);
                actix_rt::spawn(run(feed, ticks.clone(), self.hot.clone()));
                tracing::info!("console live hub started");
                Some(ticks)
            })
            .await
            .as_ref()
    }

    pub async fn subscribe(&self, state: &AppState) -> Option<broadcast::Receiver<Arc<Tick>>> {
        self.sender(state).await.map(broadcast::Sender::subscribe)
    }

    /// The hot panel as of the last second.
    pub fn hot(&self) -> Vec<HotSku> {
        self.hot.lock().map(|hot| hot.clone()).unwrap_or_default()
    }
}

/// Reservations per SKU over the last minute, in one-second buckets, with running
/// totals so ranking costs one pass over the SKUs seen in the minute.
#[derive(Default)]
struct Window {
    buckets: VecDeque<(u64, HashMap<String, u32>)>,
    totals: HashMap<String, u64>,
    available: HashMap<String, i64>,
}

impl Window {
    fn record(&mut self, second: u64, stock: &CommittedStock) {
        if stock.reservations > 0 {
            if self.buckets.back().is_none_or(|(at, _)| *at != second) {
                self.buckets.push_back((second, HashMap::new()));
            }
            if let Some((_, counts)) = self.buckets.back_mut() {
                *counts.entry(stock.sku.clone()).or_default() += stock.reservations;
            }
            *self.totals.entry(stock.sku.clone()).or_default() += u64::from(stock.reservations);
        }
        if self.totals.contains_key(&stock.sku) {
            self.available.insert(stock.sku.clone(), stock.available());
        }
    }

    fn expire(&mut self, second: u64) {
        while let Some((at, _)) = self.buckets.front() {
            if second.saturating_sub(*at) < WINDOW_SECS {
                break;
            }
            let Some((_, counts)) = self.buckets.pop_front() else {
                break;
            };
            for (sku, count) in counts {
                if let Some(total) = self.totals.get_mut(&sku) {
                    *total = total.saturating_sub(u64::from(count));
                    if *total == 0 {
                        self.totals.remove(&sku);
                        self.available.remove(&sku);
                    }
                }
            }
        }
    }

    fn ranking(&self, elapsed_secs: u64) -> Vec<HotSku> {
        let span = elapsed_secs.clamp(1, WINDOW_SECS) as f64;
        let mut ranked: Vec<(&String, u64)> = self
            .totals
            .iter()
            .map(|(sku, total)| (sku, *total))
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        ranked
            .into_iter()
            .take(HOT_SKUS)
            .map(|(sku, total)| HotSku {
                sku: sku.clone(),
                per_second: (total as f64 / span * 10.0).round() / 10.0,
                last_minute: total,
                available: self.available.get(sku).copied().unwrap_or(0),
            })
            .collect()
    }
}

fn stock_json(stock: &CommittedStock) -> String {
    serde_json::json!({
        "sku": stock.sku,
        "on_hand": stock.on_hand,
        "reserved": stock.reserved,
        "available": stock.available(),
        "threshold": stock.low_stock_threshold,
        "version": stock.version,
    })
    .to_string()
}

/// The hub's loop: fold committed batches into the window and the pending changes;
/// every tick, hand them to the viewers.
async fn run(
    mut feed: CommittedReceiver,
    ticks: broadcast::Sender<Arc<Tick>>,
    hot: Arc<Mutex<Vec<HotSku>>>,
) {
    let started = Instant::now();
    let mut window = Window::default();
    let mut pending: HashMap<String, Arc<CommittedStock>> = HashMap::new();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tick_count: u64 = 0;
    let mut last_hot: Vec<HotSku> = Vec::new();
    loop {
        tokio::select! {
            received = feed.recv() => match received {
                Ok(stock) => {
                    window.record(started.elapsed().as_secs(), &stock);
                    pending.insert(stock.sku.clone(), stock);
                }
                Err(RecvError::Lagged(missed)) => {
                    metrics::counter!("souk_console_feed_lagged_total").increment(missed);
                    tracing::debug!(missed, "console hub fell behind the stock feed");
                }
                Err(RecvError::Closed) => {
                    tracing::info!("stock feed closed; console live hub stops");
                    return;
                }
            },
            _ = ticker.tick() => {
                tick_count += 1;
                let second = started.elapsed().as_secs();
                let mut tick = Tick::default();
                if tick_count % 2 == 0 {
                    window.expire(second);
                    let ranking = window.ranking(second);
                    if ranking != last_hot || !ranking.is_empty() {
                        tick.hot = Some(Arc::from(
                            serde_json::to_string(&ranking).unwrap_or_else(|_| "[]".into()),
                        ));
                    }
                    if let Ok(mut shared) = hot.lock() {
                        shared.clone_from(&ranking);
                    }
                    last_hot = ranking;
                }
                if ticks.receiver_count() == 0 {
                    pending.clear();
                    continue;
                }
                tick.stock = pending
                    .drain()
                    .map(|(sku, stock)| (sku, stock_json(&stock)))
                    .collect();
                if !tick.stock.is_empty() || tick.hot.is_some() {
                    let _ = ticks.send(Arc::new(tick));
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    /// Comma-separated SKUs whose stock this console shows.
    skus: Option<String>,
}

fn event(name: &str, data: &str) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// The part of a tick one viewer shows, as SSE text (empty when nothing concerns it).
fn frame(tick: &Tick, skus: &[String]) -> String {
    let mut frame = String::new();
    let changed: Vec<&str> = skus
        .iter()
        .filter_map(|sku| tick.stock.get(sku).map(String::as_str))
        .collect();
    if !changed.is_empty() {
        frame.push_str(&event("stock", &format!("[{}]", changed.join(","))));
    }
    if let Some(hot) = &tick.hot {
        frame.push_str(&event("hot", hot));
    }
    frame
}

/// SIGTERM or SIGINT: the node is stopping, and open streams must not hold its graceful
/// shutdown until the timeout; browsers reconnect to whichever node serves next.
struct Stopping {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Stopping {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = signal(SignalKind::terminate())
                .and_then(|terminate| Ok((terminate, signal(SignalKind::interrupt())?)))
                .ok();
            Self { signals }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn wait(&mut self) {
        #[cfg(unix)]
        if let Some((terminate, interrupt)) = &mut self.signals {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            return;
        }
        std::future::pending::<()>().await;
    }
}

struct Viewer {
    ticks: broadcast::Receiver<Arc<Tick>>,
    stopping: Stopping,
    skus: Vec<String>,
    state: web::Data<AppState>,
    console: web::Data<Console>,
    request: HttpRequest,
    next_check: tokio::time::Instant,
    /// A stream silent this long gets a comment, which also finds closed connections.
    next_keepalive: tokio::time::Instant,
    done: bool,
    _gauge: ViewerGauge,
}

/// Counts open streams in `souk_console_live_viewers`.
struct ViewerGauge;

impl ViewerGauge {
    fn new() -> Self {
        metrics::gauge!("souk_console_live_viewers").increment(1.0);
        Self
    }
}

impl Drop for ViewerGauge {
    fn drop(&mut self) {
        metrics::gauge!("souk_console_live_viewers").decrement(1.0);
    }
}

impl Viewer {
    /// The next text to send: a frame, a keepalive comment, or the end of the stream.
    async fn next(&mut self) -> Option<String> {
        let text = self.next_text().await;
        self.next_keepalive = tokio::time::Instant::now() + KEEPALIVE;
        text
    }

    async fn next_text(&mut self) -> Option<String> {
        if self.done {
            return None;
        }
        loop {
            let keepalive = tokio::time::sleep_until(self.next_keepalive);
            tokio::select! {
                received = self.ticks.recv() => match received {
                    Ok(tick) => {
                        if tokio::time::Instant::now() >= self.next_check {
                            if let Some(end) = self.recheck().await {
                                return Some(end);
                            }
                        }
                        let frame = frame(&tick, &self.skus);
                        if !frame.is_empty() {
                            return Some(frame);
                        }
                    }
                    Err(RecvError::Lagged(_)) => return Some(event("resync", "{}")),
                    Err(RecvError::Closed) => {
                        self.done = true;
                        return Some(event("unavailable", "{}"));
                    }
                },
                _ = self.stopping.wait() => {
                    self.done = true;
                    return None;
                }
                _ = keepalive => {
                    if tokio::time::Instant::now() >= self.next_check {
                        if let Some(end) = self.recheck().await {
                            return Some(end);
                        }
                    }
                    return Some(": keepalive\n\n".to_owned());
                }
            }
        }
    }

    /// Ends the stream once the session is over (signed out, demoted, expired).
    async fn recheck(&mut self) -> Option<String> {
        self.next_check = tokio::time::Instant::now() + SESSION_RECHECK;
        match session::authenticate(&self.state, &self.console, &self.request).await {
            Ok(_) => None,
            Err(ConsoleError::SignIn) => {
                self.done = true;
                Some(event("signed-out", "{}"))
            }
            // The check itself failed (the database is away): keep streaming, check
            // again next time.
            Err(error) => {
                tracing::warn!(%error, "console live stream: cannot check the session");
                None
            }
        }
    }
}

fn parse_skus(raw: Option<&str>) -> Vec<String> {
    let mut skus: Vec<String> = raw
        .unwrap_or("")
        .split(',')
        .filter_map(|sku| souk_actors::catalog::model::parse_sku(sku.trim()).ok())
        .take(MAX_SKUS)
        .collect();
    skus.sort();
    skus.dedup();
    skus
}

/// `GET /admin/live`: the event stream of an open console.
pub async fn events(
    state: web::Data<AppState>,
    console: web::Data<Console>,
    _admin: AdminSession,
    request: HttpRequest,
    query: web::Query<LiveQuery>,
) -> HttpResponse {
    let skus = parse_skus(query.skus.as_deref());
    let response = || {
        let mut builder = HttpResponse::Ok();
        builder
            .content_type("text/event-stream")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header(("X-Accel-Buffering", "no"));
        builder
    };
    let Some(ticks) = console.hub().subscribe(&state).await else {
        // The SKU actors run elsewhere: say so, and ask the browser not to retry soon.
        return response().body(format!("retry: 600000\n{}", event("unavailable", "{}")));
    };
    let hot = serde_json::to_string(&console.hub().hot()).unwrap_or_else(|_| "[]".into());
    let first = format!("retry: 3000\n{}", event("hot", &hot));
    let viewer = Viewer {
        ticks,
        stopping: Stopping::new(),
        skus,
        state,
        console,
        request,
        next_check: tokio::time::Instant::now() + SESSION_RECHECK,
        next_keepalive: tokio::time::Instant::now() + KEEPALIVE,
        done: false,
        _gauge: ViewerGauge::new(),
    };
    let opening =
        futures_util::stream::once(async move { Ok::<_, Infallible>(Bytes::from(first)) });
    let rest = futures_util::stream::unfold(viewer, |mut viewer| async move {
        let text = viewer.next().await?;
        Some((Ok::<_, Infallible>(Bytes::from(text)), viewer))
    });
    response().streaming(futures_util::StreamExt::chain(opening, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(sku: &str, reservations: u32, on_hand: i64, reserved: i64) -> CommittedStock {
        CommittedStock {
            sku: sku.into(),
            on_hand,
            reserved,
            low_stock_threshold: 0,
            version: 1,
            reservations,
            committed_at: 0,
        }
    }

    #[test]
    fn ranks_by_reservations_over_the_last_minute() {
        let mut window = Window::default();
        window.record(0, &committed("A", 30, 100, 30));
        window.record(10, &committed("B", 50, 100, 50));
        window.record(30, &committed("A", 30, 100, 60));
        window.record(30, &committed("C", 0, 5, 0));
        let ranking = window.ranking(60);
        assert_eq!(
            ranking
                .iter()
                .map(|hot| (hot.sku.as_str(), hot.last_minute))
                .collect::<Vec<_>>(),
            vec![("A", 60), ("B", 50)]
        );
        assert_eq!(ranking[0].per_second, 1.0);
        assert_eq!(ranking[0].available, 40);
        // A minute after A's first batch, that batch no longer counts.
        window.expire(60);
        let ranking = window.ranking(60);
        assert_eq!(ranking[0].sku, "B");
        assert_eq!(ranking[1].last_minute, 30);
        window.expire(91);
        assert!(window.ranking(60).is_empty());
    }

    #[test]
    fn a_viewer_gets_only_its_skus() {
        let mut tick = Tick::default();
        tick.stock.insert("A".into(), "{\"sku\":\"A\"}".into());
        tick.stock.insert("B".into(), "{\"sku\":\"B\"}".into());
        assert_eq!(
            frame(&tick, &["B".to_owned()]),
            "event: stock\ndata: [{\"sku\":\"B\"}]\n\n"
        );
        assert_eq!(frame(&tick, &["Z".to_owned()]), "");
    }
}
