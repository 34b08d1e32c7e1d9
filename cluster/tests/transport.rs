//! The NATS mailbox between in-process nodes over the test nats-server: a message
//! reaches the node that owns its entity wherever it is sent from; handler errors and
//! deadlines come back as such; calls in flight while shards move (a join, a graceful
//! stop, a kill) still succeed within their deadline through "not owner" retries; an
//! at-most-once call whose owner leaves before answering is not sent again.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use souk_cluster::{
    BoxFuture, ClusterNode, ClusterSettings, Envelope, EnvelopeHandler, HandlerError,
    MailboxServer, RemoteError, SendError,
};
use support::{connect, drop_namespace, eventually, fresh_namespace, nats_url, settings};

/// The entity host stand-in: answers `<node>|<kind>|<key>|<epoch>|<payload>`; kind
/// `fail` answers an error, `slow` takes two seconds, `hold` counts how often each key
/// was handled ([`HELD`]) and takes three.
struct Echo {
    node: String,
}

/// How many times each key of kind `hold` was handled, over every node.
static HELD: std::sync::Mutex<std::collections::BTreeMap<String, usize>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn held(key: &str) -> usize {
    HELD.lock().unwrap().get(key).copied().unwrap_or(0)
}

impl EnvelopeHandler for Echo {
    fn handle(&self, envelope: Envelope) -> BoxFuture<Result<Bytes, HandlerError>> {
        let node = self.node.clone();
        Box::pin(async move {
            match envelope.kind.as_str() {
                "fail" => Err(HandlerError::Failed(RemoteError::new(
                    "out_of_stock",
                    format!("{} has none left", envelope.key),
                    false,
                ))),
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Ok(Bytes::from_static(b"late"))
                }
                "hold" => {
                    *HELD
                        .lock()
                        .unwrap()
                        .entry(envelope.key.clone())
                        .or_default() += 1;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    Ok(Bytes::from(node))
                }
                _ => Ok(Bytes::from(format!(
                    "{node}|{}|{}|{}|{}",
                    envelope.kind,
                    envelope.key,
                    envelope.epoch,
                    String::from_utf8_lossy(&envelope.payload)
                ))),
            }
        })
    }
}

async fn serving_node(url: &str, settings: ClusterSettings) -> (ClusterNode, MailboxServer) {
    let node = ClusterNode::start(connect(url).await, settings)
        .await
        .expect("start node");
    let server = node
        .serve(Arc::new(Echo {
            node: node.node_id().to_string(),
        }))
        .await
        .expect("serve");
    (node, server)
}

type Serving = (ClusterNode, MailboxServer);

/// Nodes `a` and `b` in a fresh namespace, both ready and seeing each other.
async fn two_ready_nodes() -> (String, String, [Serving; 2]) {
    let url = nats_url();
    let namespace = fresh_namespace();
    let (a, server_a) = serving_node(&url, settings("a", &namespace)).await;
    let (b, server_b) = serving_node(&url, settings("b", &namespace)).await;
    eventually(Duration::from_secs(10), "both ready", || async {
        a.snapshot().ready && b.snapshot().ready && a.snapshot().ring.members().len() == 2
    })
    .await;
    (url, namespace, [(a, server_a), (b, server_b)])
}

async fn stop_both(url: &str, namespace: &str, nodes: [Serving; 2]) {
    for (node, server) in nodes {
        server.stop(Duration::from_secs(3)).await;
        node.stop().await;
    }
    drop_namespace(&connect(url).await, namespace).await;
}

fn in_ms(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_the_owner_from_any_node() {
    let (url, namespace, [(a, server_a), (b, server_b)]) = two_ready_nodes().await;

    let mut served_by = std::collections::BTreeMap::new();
    for (sender, other) in [(&a, &b), (&b, &a)] {
        let mailbox = sender.mailbox();
        for index in 0..40 {
            let key = format!("SKU-{index}");
            let answer = mailbox
                .send("sku", &key, Bytes::from("reserve 1"), in_ms(2_000))
                .await
                .expect("answered");
            let answer = String::from_utf8(answer.to_vec()).unwrap();
            let parts: Vec<&str> = answer.split('|').collect();
            let table = other.snapshot();
            let shard = table.shard_of(&key);
            let owner = [&a, &b]
                .into_iter()
                .find(|node| node.snapshot().serves(shard))
                .unwrap();
            assert_eq!(
                parts[0],
                owner.node_id().as_str(),
                "{key} went to its owner"
            );
            assert_eq!(&parts[1..3], &["sku", key.as_str()]);
            assert_eq!(
                parts[3],
                owner.snapshot().serving_epoch(shard).unwrap().to_string()
            );
            assert_eq!(parts[4], "reserve 1");
            *served_by.entry(parts[0].to_owned()).or_insert(0) += 1;
        }
    }
    assert_eq!(
        served_by.len(),
        2,
        "both nodes own some of 40 keys: {served_by:?}"
    );

    // A handler's error comes back as it is, not retried.
    let error = a
        .mailbox()
        .send("fail", "SKU-1", Bytes::new(), in_ms(2_000))
        .await
        .expect_err("fails");
    assert_eq!(
        error,
        SendError::Remote(RemoteError::new(
            "out_of_stock",
            "SKU-1 has none left",
            false
        ))
    );

    // The caller's deadline bounds a slow owner.
    let started = Instant::now();
    let error = b
        .mailbox()
        .send("slow", "SKU-2", Bytes::new(), in_ms(300))
        .await
        .expect_err("too slow");
    let waited = started.elapsed();
    assert_eq!(error, SendError::DeadlineExceeded);
    assert!(
        waited < Duration::from_millis(800),
        "gave up after {waited:?}"
    );

    stop_both(&url, &namespace, [(a, server_a), (b, server_b)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_sent_together_share_messages_and_each_gets_its_own_answer() {
    let (url, namespace, [(a, server_a), (b, server_b)]) = two_ready_nodes().await;
    let table = a.snapshot();
    let keys_of_b: Vec<String> = (0..2_000)
        .map(|index| format!("SKU-{index}"))
        .filter(|key| !table.serves_key(key))
        .take(300)
        .collect();
    assert_eq!(keys_of_b.len(), 300, "b owns enough of 2 000 keys");

    let mailbox = a.mailbox();
    let calls = keys_of_b.iter().enumerate().map(|(index, key)| {
        let mailbox = mailbox.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let answer = mailbox
                .send(
                    "sku",
                    &key,
                    Bytes::from(format!("call {index}")),
                    in_ms(5_000),
                )
                .await
                .expect("answered");
            (key, index, String::from_utf8(answer.to_vec()).unwrap())
        })
    });
    for call in futures_util::future::join_all(calls).await {
        let (key, index, answer) = call.expect("call task");
        let parts: Vec<&str> = answer.split('|').collect();
        assert_eq!(parts[0], "b", "{key} went to its owner");
        assert_eq!(parts[2], key, "the answer to {key} is its own");
        assert_eq!(parts[4], format!("call {index}"));
    }
    let stats = mailbox.stats();
    assert_eq!(stats.sends, 300);
    assert!(
        stats.messages >= 1 && stats.messages < stats.sends,
        "300 calls sent at once share NATS messages: {stats:?}"
    );

    stop_both(&url, &namespace, [(a, server_a), (b, server_b)]).await;
}

/// b leaves while handling two calls from a: the idempotent one is sent again to the
/// next owner and answered from there (handled twice); the at-most-once one fails as
/// unanswered and is handled once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_at_most_once_call_is_not_sent_again_when_its_owner_leaves() {
    let (url, namespace, [(a, server_a), (b, server_b)]) = two_ready_nodes().await;
    let table = a.snapshot();
    let mut keys_of_b = (0..2_000)
        .map(|index| format!("HOLD-{index}"))
        .filter(|key| !table.serves_key(key));
    let (again, once) = (keys_of_b.next().unwrap(), keys_of_b.next().unwrap());
    let mailbox = a.mailbox();
    let idempotent = {
        let (mailbox, key) = (mailbox.clone(), again.clone());
        tokio::spawn(async move {
            mailbox
                .send("hold", &key, Bytes::new(), in_ms(20_000))
                .await
        })
    };
    let at_most_once = {
        let (mailbox, key) = (mailbox.clone(), once.clone());
        tokio::spawn(async move {
            mailbox
                .send_at_most_once("hold", &key, Bytes::new(), in_ms(20_000))
                .await
        })
    };
    eventually(Duration::from_secs(5), "b handles both", || async {
        held(&again) == 1 && held(&once) == 1
    })
    .await;
    let leaving = tokio::spawn(b.stop());

    assert_eq!(
        at_most_once.await.unwrap(),
        Err(SendError::Unanswered),
        "the at-most-once call fails rather than going to a"
    );
    let answer = idempotent
        .await
        .unwrap()
        .expect("answered by the next owner");
    assert_eq!(&answer[..], b"a");
    assert_eq!(
        held(&again),
        2,
        "the idempotent call was handled again by a"
    );
    assert_eq!(
        held(&once),
        1,
        "the at-most-once call was handled only by b"
    );

    leaving.await.unwrap();
    server_b.stop(Duration::from_secs(3)).await;
    server_a.stop(Duration::from_secs(3)).await;
    a.stop().await;
    drop_namespace(&connect(&url).await, &namespace).await;
}

/// Sends to many keys in a loop until stopped; returns (successes, failures).
fn traffic(
    mailbox: souk_cluster::Mailbox,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    tokio::spawn(async move {
        let mut successes = 0;
        let mut failures = Vec::new();
        let mut index = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            index += 1;
            let key = format!("ORDER-{}", index % 200);
            match mailbox
                .send("order", &key, Bytes::from("get"), in_ms(8_000))
                .await
            {
                Ok(_) => successes += 1,
                Err(error) => failures.push(format!("{key}: {error}")),
            }
        }
        (successes, failures)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_survive_joins_stops_and_kills() {
    let (url, namespace, [(a, server_a), (b, server_b)]) = two_ready_nodes().await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mailbox = a.mailbox();
    let load = traffic(mailbox.clone(), stop.clone());

    // c joins (shards move to it), then b stops gracefully, then c is killed.
    let (c, server_c) = serving_node(&url, settings("c", &namespace)).await;
    eventually(Duration::from_secs(10), "c ready", || async {
        c.snapshot().ready
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server_b.stop(Duration::from_secs(3)).await;
    b.stop().await;
    eventually(
        Duration::from_secs(10),
        "a and c own everything",
        || async {
            a.snapshot().ring.members().len() == 2
                && (0..64).all(|shard| {
                    let shard = souk_cluster::ShardId(shard);
                    a.snapshot().serves(shard) || c.snapshot().serves(shard)
                })
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Instant::now();
    drop(server_c);
    drop(c);
    eventually(Duration::from_secs(10), "a owns everything", || async {
        (0..64).all(|shard| a.snapshot().serves(souk_cluster::ShardId(shard)))
    })
    .await;
    println!(
        "after the kill a serves everything in {:?}",
        killed.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (successes, failures) = load.await.unwrap();
    println!("{successes} calls answered through join, stop and kill");
    assert!(
        failures.is_empty(),
        "every call answered in its deadline: {failures:?}"
    );
    assert!(successes > 50, "traffic flowed: {successes}");
    let stats = mailbox.stats();
    println!("{stats:?}");
    assert!(
        stats.retries > 0,
        "some calls met a moving shard and were sent again"
    );

    server_a.stop(Duration::from_secs(3)).await;
    a.stop().await;
    drop_namespace(&connect(&url).await, &namespace).await;
}

/// How many answer messages one call sent straight to `node`'s calls subject gets
/// within half a second: one per process listening there.
async fn answers_to_one_call(client: &async_nats::Client, namespace: &str, node: &str) -> usize {
    answers_to_call(client, namespace, node, "probe", 1_000)
        .await
        .len()
}

/// The answers that came back within half a second to one raw `echo` call for `key`,
/// of `timeout_ms`, sent to `node`.
async fn answers_to_call(
    client: &async_nats::Client,
    namespace: &str,
    node: &str,
    key: &str,
    timeout_ms: u64,
) -> Vec<souk_proto::v1::ClusterAnswers> {
    use futures_util::StreamExt;
    use prost::Message;
    use souk_proto::v1::{ClusterAnswers, ClusterCall, ClusterCalls, ClusterEnvelope};

    let subject = souk_cluster::settings::Namespace::parse(namespace)
        .unwrap()
        .calls_subject(&souk_cluster::settings::NodeId::parse(node).unwrap());
    let inbox = client.new_inbox();
    let mut answers = client.subscribe(inbox.clone()).await.unwrap();
    let call = ClusterCalls {
        calls: vec![ClusterCall {
            id: 1,
            envelope: Some(ClusterEnvelope {
                kind: "echo".to_owned(),
                key: key.to_owned(),
                shard: souk_cluster::shard_of(key, 64).0,
                sender_node: "probe".to_owned(),
                timeout_ms,
                payload: Vec::new(),
            }),
        }],
    };
    client
        .publish_with_reply(subject, inbox, call.encode_to_vec().into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let mut received = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Some(message)) = tokio::time::timeout_at(until, answers.next()).await {
        received.push(ClusterAnswers::decode(message.payload).expect("answers decode"));
    }
    received
}

/// A call's time comes from its sender; a node serves none longer than the longest
/// call timeout it could be configured with, so any time a sender claims is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_claiming_endless_time_is_answered() {
    use souk_proto::v1::cluster_reply;

    let (url, namespace, nodes) = two_ready_nodes().await;
    let client = connect(&url).await;
    let served_by_a = (0..)
        .map(|index| format!("probe-{index}"))
        .find(|key| {
            nodes[0]
                .0
                .snapshot()
                .serves(souk_cluster::shard_of(key, 64))
        })
        .unwrap();
    for timeout_ms in [u64::MAX, 1_000] {
        let answers = answers_to_call(&client, &namespace, "a", &served_by_a, timeout_ms).await;
        let replies: Vec<_> = answers
            .iter()
            .flat_map(|message| &message.answers)
            .map(|answer| answer.reply.as_ref().and_then(|reply| reply.result.clone()))
            .collect();
        assert_eq!(replies.len(), 1, "one answer to a call of {timeout_ms} ms");
        assert!(
            matches!(&replies[0], Some(cluster_reply::Result::Ok(_))),
            "a call of {timeout_ms} ms is served: {:?}",
            replies[0]
        );
    }
    stop_both(&url, &namespace, nodes).await;
}

/// A second process started with a node's id (a replacement pod while the old one
/// still runs) displaces the first, which then stops answering that id's calls: were
/// both to answer, the displaced one's quick "not owner" would win over the owner's
/// answer, and an at-most-once call would be sent again and applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_displaced_node_stops_answering_calls_for_its_id() {
    let url = nats_url();
    let namespace = fresh_namespace();
    let client = connect(&url).await;
    let (old, old_server) = serving_node(&url, settings("a", &namespace)).await;
    eventually(Duration::from_secs(10), "the first ready", || async {
        old.snapshot().ready
    })
    .await;
    assert_eq!(answers_to_one_call(&client, &namespace, "a").await, 1);

    let (new, new_server) = serving_node(&url, settings("a", &namespace)).await;
    // The replacement holds the shards only once the displaced one has given them up.
    eventually(Duration::from_secs(10), "the replacement ready", || async {
        new.snapshot().ready
    })
    .await;
    for _ in 0..3 {
        assert_eq!(answers_to_one_call(&client, &namespace, "a").await, 1);
    }

    old_server.stop(Duration::from_secs(1)).await;
    drop(old);
    new_server.stop(Duration::from_secs(1)).await;
    new.stop().await;
    drop_namespace(&client, &namespace).await;
}
