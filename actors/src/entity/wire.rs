//! Entity messages as bytes, for a router that reaches the owner on another node of the
//! same build: each kind's request, and its reply or error, as JSON of the kind's own
//! types (the envelope around them is protobuf, in `souk-cluster`).

use super::EntityKind;
use crate::inventory::{Command, InventoryError, Sku, SkuReply, SkuRequest};
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
    fn encode_result(result: &Result<Self::Reply, Self::Error>) -> Vec<u8>;
    fn decode_result(bytes: &[u8]) -> Result<Result<Self::Reply, Self::Error>, DecodeError>;
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

impl WireKind for Sku {
    fn encode_request(request: &SkuRequest) -> Vec<u8> {
        encode(request)
    }

    fn decode_request(bytes: &[u8]) -> Result<SkuRequest, DecodeError> {
        decode::<Self, _>(bytes)
    }

    fn encode_result(result: &Result<SkuReply, InventoryError>) -> Vec<u8> {
        encode(result)
    }

    fn decode_result(bytes: &[u8]) -> Result<Result<SkuReply, InventoryError>, DecodeError> {
        decode::<Self, _>(bytes)
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

    fn encode_result(result: &Result<Option<OrderView>, Error>) -> Vec<u8> {
        encode(&result.as_ref().map_err(WireError::from))
    }

    fn decode_result(bytes: &[u8]) -> Result<Result<Option<OrderView>, Error>, DecodeError> {
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
            let decoded = Sku::decode_result(&Sku::encode_result(&result)).unwrap();
            assert_eq!(format!("{decoded:?}"), format!("{result:?}"));
        }
        assert!(Sku::decode_request(b"{\"Execute\":{\"Nope\":{}}}").is_err());
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
        let decoded = Order::decode_result(&Order::encode_result(&refused)).unwrap();
        let error = decoded.unwrap_err();
        assert_eq!(error.code(), ErrorCode::StaleOwner);
        assert_eq!(error.retry_after_secs(), Some(1));
        assert!(Order::is_not_owner(&error));
        let unknown = br#"{"Err":{"code":"from_the_future","detail":"x"}}"#;
        let decoded = Order::decode_result(unknown).unwrap();
        assert_eq!(decoded.unwrap_err().code(), ErrorCode::Internal);
    }
}
