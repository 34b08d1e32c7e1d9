//! Entity messages as bytes, for a router that reaches the owner on another node: each
//! kind's request, and its reply or error, as JSON of the kind's own types (the
//! envelope around them is protobuf, in `souk-cluster`). A reservation that carries its
//! order is answered with what became of the order as well; every other answer is
//! encoded as a node of an earlier version encodes it.

use super::EntityKind;
use crate::inventory::{
    Command, InventoryError, OrderWritten, Placement, Sku, SkuReply, SkuRequest,
};
use crate::orders::{Order, OrderCommand, OrderView};
use crate::{Error, ErrorCode, WireError};

/// Bytes that are not a message of the kind.
#[derive(Debug, thiserror::Error)]
#[error("undecodable {kind} message: {reason}")]
pub struct DecodeError {
    pub kind: &'static str,
    pub reason: String,
}

/// An entity kind whose messages can cross to another node.
pub trait WireKind: EntityKind<Request: Clone> {
    fn encode_request(request: &Self::Request) -> Vec<u8>;
    fn decode_request(bytes: &[u8]) -> Result<Self::Request, DecodeError>;
    /// The answer to `request` (which the owner handled, and may have changed: a
    /// carried order was taken and written).
    fn encode_result(request: &Self::Request, result: &Result<Self::Reply, Self::Error>)
        -> Vec<u8>;
    /// The answer to `request`, as sent by its owner; what else it says (a carried
    /// order's outcome) is given to `request`.
    fn decode_result(
        request: &Self::Request,
        bytes: &[u8],
    ) -> Result<Result<Self::Reply, Self::Error>, DecodeError>;
    /// The retryable error a caller gets when no owner answered in time.
    fn unavailable(detail: String) -> Self::Error;
    /// Whether handling `request` twice changes nothing more, so a call whose owner
    /// stopped answering may go to the next owner.
    fn idempotent(_request: &Self::Request) -> bool {
        true
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain data types to JSON cannot fail (string keys only).
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<K: EntityKind, T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(bytes).map_err(|error| DecodeError {
        kind: K::NAME,
        reason: error.to_string(),
    })
}

/// A SKU's answer as it crosses: `Ok` and `Err` as a `Result` is encoded, and `Placed`
/// for a reservation whose carried order the owner wrote or refused. Encoded from
/// borrows (`SkuAnswer<&SkuReply, &InventoryError>`), decoded as owned values.
#[derive(serde::Serialize, serde::Deserialize)]
enum SkuAnswer<Reply, Refusal> {
    Ok(Reply),
    Err(Refusal),
    Placed { reply: Reply, order: OrderWritten },
}

/// The order a request carries, if it is a reservation that carries one.
fn placement(request: &SkuRequest) -> Option<&Placement> {
    match request {
        SkuRequest::Execute(Command::Reserve { place, .. }) => Some(place),
        _ => None,
    }
}

impl WireKind for Sku {
    fn encode_request(request: &SkuRequest) -> Vec<u8> {
        encode(request)
    }

    fn decode_request(bytes: &[u8]) -> Result<SkuRequest, DecodeError> {
        decode::<Self, _>(bytes)
    }

    fn encode_result(request: &SkuRequest, result: &Result<SkuReply, InventoryError>) -> Vec<u8> {
        let written = placement(request).and_then(Placement::written);
        encode(&match (result, written) {
            (Ok(reply), Some(order)) => SkuAnswer::Placed { reply, order },
            (Ok(reply), None) => SkuAnswer::Ok(reply),
            (Err(error), _) => SkuAnswer::Err(error),
        })
    }

    fn decode_result(
        request: &SkuRequest,
        bytes: &[u8],
    ) -> Result<Result<SkuReply, InventoryError>, DecodeError> {
        let answer: SkuAnswer<SkuReply, InventoryError> = decode::<Self, _>(bytes)?;
        Ok(match answer {
            SkuAnswer::Ok(reply) => Ok(reply),
            SkuAnswer::Err(error) => Err(error),
            SkuAnswer::Placed { reply, order } => {
                if let Some(place) = placement(request) {
                    place.tell_written(order);
                }
                Ok(reply)
            }
        })
    }

    fn unavailable(detail: String) -> InventoryError {
        InventoryError::Unavailable(detail)
    }

    /// Every stock command is idempotent by its order id or its request key, but an
    /// adjustment or a count sent without a key: applied twice, an adjustment counts its
    /// units twice, and a count applied again after a sale puts the sold units back.
    fn idempotent(request: &SkuRequest) -> bool {
        !matches!(
            request,
            SkuRequest::Execute(Command::Adjust { .. } | Command::SetOnHand { .. })
        )
    }
}

impl WireKind for Order {
    fn encode_request(request: &OrderCommand) -> Vec<u8> {
        encode(request)
    }

    fn decode_request(bytes: &[u8]) -> Result<OrderCommand, DecodeError> {
        decode::<Self, _>(bytes)
    }

    fn encode_result(_: &OrderCommand, result: &Result<Option<OrderView>, Error>) -> Vec<u8> {
        encode(&result.as_ref().map_err(WireError::from))
    }

    fn decode_result(
        _: &OrderCommand,
        bytes: &[u8],
    ) -> Result<Result<Option<OrderView>, Error>, DecodeError> {
        let result: Result<Option<OrderView>, WireError> = decode::<Self, _>(bytes)?;
        Ok(result.map_err(Error::from))
    }

    fn unavailable(detail: String) -> Error {
        Error::unavailable_retry_after(ErrorCode::ServiceUnavailable, detail, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::stock::{Command, Holder, Outcome, StockError};
    use crate::orders::{Caller, Event};
    use souk_db::orders::{HistoryRecord, NewOrder};
    use souk_db::outbox::OutboxEvent;
    use souk_db::DbError;

    #[test]
    fn sku_messages_cross_unchanged() {
        let request = SkuRequest::Execute(Command::Reserve {
            order_id: "o1".into(),
            quantity: 2,
            ttl_ms: 900_000,
            actor: "order:o1".into(),
            holder: Some(Holder {
                customer_id: "u1".into(),
                max_units: Some(20),
            }),
            place: Default::default(),
        });
        let decoded = Sku::decode_request(&Sku::encode_request(&request)).unwrap();
        assert_eq!(format!("{decoded:?}"), format!("{request:?}"));
        for result in [
            Ok(SkuReply::Done(Outcome::Reserved { available: 7 })),
            Err(InventoryError::Stock(StockError::CustomerLimit {
                limit: 20,
                allowed: 3,
            })),
            Err(InventoryError::Fenced),
        ] {
            let decoded =
                Sku::decode_result(&request, &Sku::encode_result(&request, &result)).unwrap();
            assert_eq!(format!("{decoded:?}"), format!("{result:?}"));
        }
        assert!(Sku::decode_request(b"{\"Execute\":{\"Nope\":{}}}").is_err());
    }

    fn reserve(place: Placement) -> SkuRequest {
        SkuRequest::Execute(Command::Reserve {
            order_id: "order-1".into(),
            quantity: 1,
            ttl_ms: 900_000,
            actor: "order:order-1".into(),
            holder: None,
            place,
        })
    }

    fn new_order() -> NewOrder {
        let order = crate::orders::placed::tests::order();
        NewOrder {
            lines: vec![crate::orders::placed::tests::line()],
            history: HistoryRecord {
                id: "history-1".into(),
                order_id: order.id.clone(),
                from_status: None,
                to_status: order.status.clone(),
                actor: "user:user-1".into(),
                reason: "placed".into(),
                created_at: 1,
            },
            event: OutboxEvent::new("order.placed", &order.id, &"payload").unwrap(),
            max_unpaid: Some(3),
            order,
        }
    }

    #[test]
    fn a_carried_order_crosses_to_the_owner_and_its_outcome_comes_back() {
        let sent = new_order();
        let (place, placed) = Placement::of(sent.clone());
        let request = reserve(place);
        // The owner's node: the order arrives whole, and its writer refuses it.
        let at_owner = Sku::decode_request(&Sku::encode_request(&request)).unwrap();
        let (carried, teller) = placement(&at_owner).unwrap().take().unwrap();
        assert_eq!(format!("{carried:?}"), format!("{sent:?}"));
        teller.tell(Err(DbError::UnpaidOrderLimit { limit: 3 }));
        let reply = Ok(SkuReply::Done(Outcome::Reserved { available: 4 }));
        let answer = Sku::encode_result(&at_owner, &reply);
        // The sender's node: the reservation's answer, and the order's outcome told to
        // the checkout that handed it over.
        let decoded = Sku::decode_result(&request, &answer).unwrap();
        assert_eq!(format!("{decoded:?}"), format!("{reply:?}"));
        assert!(matches!(
            placed.outcome(),
            Some(Err(DbError::UnpaidOrderLimit { limit: 3 }))
        ));
    }

    #[test]
    fn without_a_carried_order_the_messages_are_an_earlier_versions() {
        // A reservation carrying nothing has no `place`, as before carried orders.
        let plain = reserve(Placement::default());
        let bytes = Sku::encode_request(&plain);
        assert!(!String::from_utf8_lossy(&bytes).contains("place"));
        // Its answer is a plain result, which a node of an earlier version decodes.
        let reply: Result<SkuReply, InventoryError> =
            Ok(SkuReply::Done(Outcome::Reserved { available: 4 }));
        assert_eq!(
            Sku::encode_result(&plain, &reply),
            serde_json::to_vec(&reply).unwrap()
        );
        // An owner of an earlier version ignores a carried order and answers plainly:
        // the order is untold, and its checkout writes it.
        let (place, placed) = Placement::of(new_order());
        let carrying = reserve(place);
        let decoded = Sku::decode_result(&carrying, &serde_json::to_vec(&reply).unwrap());
        assert!(decoded.unwrap().is_ok());
        assert!(placed.outcome().is_none());
        // An owner that did not write it (the batch wrote nothing) answers plainly too.
        let at_owner = Sku::decode_request(&Sku::encode_request(&carrying)).unwrap();
        assert_eq!(
            Sku::encode_result(&at_owner, &reply),
            serde_json::to_vec(&reply).unwrap()
        );
    }

    #[test]
    fn order_errors_keep_their_code_detail_and_pause() {
        let command = OrderCommand::Fulfil {
            admin_id: "a1".into(),
            event: Event::Ship,
        };
        let decoded = Order::decode_request(&Order::encode_request(&command)).unwrap();
        assert_eq!(format!("{decoded:?}"), format!("{command:?}"));
        let cancel = OrderCommand::Cancel {
            caller: Caller::Shopper("u1".into()),
            reason: "changed my mind".into(),
        };
        let decoded = Order::decode_request(&Order::encode_request(&cancel)).unwrap();
        assert_eq!(format!("{decoded:?}"), format!("{cancel:?}"));
        let refused: Result<Option<OrderView>, Error> = Err(Error::stale_owner());
        let decoded =
            Order::decode_result(&cancel, &Order::encode_result(&cancel, &refused)).unwrap();
        let error = decoded.unwrap_err();
        assert_eq!(error.code(), ErrorCode::StaleOwner);
        assert_eq!(error.retry_after_secs(), Some(1));
        assert!(Order::is_not_owner(&error));
        let unknown = br#"{"Err":{"code":"from_the_future","detail":"x"}}"#;
        let decoded = Order::decode_result(&cancel, unknown).unwrap();
        assert_eq!(decoded.unwrap_err().code(), ErrorCode::Internal);
    }
}
