//! Stock on the wire: SKU commands, outcomes and the actors' refusals as protobuf
//! messages and statuses, shared by the inventory's gRPC server and its remote client,
//! so a refusal crosses the wire exactly.

use std::collections::HashMap;

use souk_actors::inventory::service::StockView;
use souk_actors::inventory::stock::{Command, Holder, Outcome, StockError};
use souk_actors::inventory::{InventoryError, Placement};
use souk_proto::v1 as pb;
use souk_proto::v1::execute_request::Command as WireCommand;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::{Error, FieldError, FieldErrors};

/// `ErrorInfo.domain` of the actors' own refusals, which callers map back exactly.
const STOCK_DOMAIN: &str = "souk.inventory";

/// The most units one command from another service may move, and the longest
/// reservation it may ask for: far beyond any order, small enough that no stock sum or
/// deadline can overflow.
const MAX_WIRE_QUANTITY: i64 = 1_000_000_000;
const MAX_WIRE_TTL_MS: i64 = 30 * 24 * 3_600_000;
/// An order id as the orders service writes it (a UUID), with room to spare.
const MAX_ORDER_ID_CHARS: usize = 64;

pub fn stock_message(view: StockView) -> pb::Stock {
    pb::Stock {
        sku: view.sku,
        on_hand: view.on_hand,
        reserved: view.reserved,
        available: view.available,
        low_stock_threshold: view.low_stock_threshold,
        version: view.version,
        reservations: view
            .reservations
            .into_iter()
            .map(|reservation| pb::Reservation {
                order_id: reservation.order_id,
                quantity: reservation.quantity,
                expires_at: reservation.expires_at,
            })
            .collect(),
    }
}

/// The commands another service may send; adjustments and timers stay local.
pub fn command_to_wire(sku: &str, command: &Command) -> Option<pb::ExecuteRequest> {
    use pb::execute_request as wire;
    let (actor, command) = match command.clone() {
        // A carried order does not cross to a split inventory service: the checkout,
        // finding it unplaced, writes it (see `Placement`).
        Command::Reserve {
            order_id,
            quantity,
            ttl_ms,
            actor,
            holder,
            place: _,
        } => (
            actor,
            WireCommand::Reserve(wire::Reserve {
                order_id,
                quantity,
                ttl_ms,
                customer_id: holder
                    .as_ref()
                    .map(|holder| holder.customer_id.clone())
                    .unwrap_or_default(),
                max_units_per_customer: holder.and_then(|holder| holder.max_units).unwrap_or(0),
            }),
        ),
        Command::Release {
            order_id,
            actor,
            reason,
        } => (
            actor,
            WireCommand::Release(wire::Release { order_id, reason }),
        ),
        Command::Commit {
            order_id,
            quantity,
            actor,
        } => (
            actor,
            WireCommand::Commit(wire::Commit { order_id, quantity }),
        ),
        Command::Return {
            order_id,
            sale_order_id,
            quantity,
            actor,
            reason,
        } => (
            actor,
            WireCommand::Return(wire::Return {
                order_id,
                quantity,
                reason,
                sale_order_id,
            }),
        ),
        Command::Adjust { .. }
        | Command::SetOnHand { .. }
        | Command::KeyedChange { .. }
        | Command::SetThreshold { .. }
        | Command::ExpireDue => return None,
    };
    Some(pb::ExecuteRequest {
        sku: sku.to_owned(),
        actor,
        command: Some(command),
    })
}

pub fn command_from_wire(request: pb::ExecuteRequest) -> Result<(String, Command), Error> {
    let actor = request.actor;
    let command = match request.command {
        Some(WireCommand::Reserve(reserve)) => Command::Reserve {
            holder: (!reserve.customer_id.is_empty()).then(|| Holder {
                customer_id: reserve.customer_id,
                max_units: (reserve.max_units_per_customer > 0)
                    .then_some(reserve.max_units_per_customer),
            }),
            order_id: reserve.order_id,
            quantity: reserve.quantity,
            ttl_ms: reserve.ttl_ms,
            actor,
            place: Placement::default(),
        },
        Some(WireCommand::Release(release)) => Command::Release {
            order_id: release.order_id,
            actor,
            reason: release.reason,
        },
        Some(WireCommand::Commit(commit)) => Command::Commit {
            order_id: commit.order_id,
            quantity: commit.quantity,
            actor,
        },
        Some(WireCommand::Return(returned)) => Command::Return {
            order_id: returned.order_id,
            sale_order_id: returned.sale_order_id,
            quantity: returned.quantity,
            actor,
            reason: returned.reason,
        },
        None => {
            return Err(Error::validation(vec![FieldError::new(
                "command",
                "is required",
            )]));
        }
    };
    check_wire_command(&command)?;
    Ok((request.sku, command))
}

/// Refuses what no orders service sends: an order id that is empty or too long, a
/// quantity or a reservation's length out of range.
fn check_wire_command(command: &Command) -> Result<(), Error> {
    let mut errors = FieldErrors::default();
    let (order_id, quantity) = match command {
        Command::Reserve {
            order_id,
            quantity,
            ttl_ms,
            ..
        } => {
            if !(1..=MAX_WIRE_TTL_MS).contains(ttl_ms) {
                errors.push("ttl_ms", format!("must be 1 to {MAX_WIRE_TTL_MS}"));
            }
            (order_id, Some((*quantity, 1)))
        }
        Command::Return {
            order_id, quantity, ..
        } => (order_id, Some((*quantity, 1))),
        // 0: the quantity of a sale sent by a node that does not say it.
        Command::Commit {
            order_id, quantity, ..
        } => (order_id, Some((*quantity, 0))),
        Command::Release { order_id, .. } => (order_id, None),
        _ => return Ok(()),
    };
    if order_id.is_empty() || order_id.chars().count() > MAX_ORDER_ID_CHARS {
        errors.push(
            "order_id",
            format!("must be 1 to {MAX_ORDER_ID_CHARS} characters"),
        );
    }
    if let Some((quantity, least)) = quantity {
        if !(least..=MAX_WIRE_QUANTITY).contains(&quantity) {
            errors.push(
                "quantity",
                format!("must be {least} to {MAX_WIRE_QUANTITY}"),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::validation(errors.into_vec()))
    }
}

pub fn outcome_to_wire(outcome: &Outcome) -> pb::ExecuteResponse {
    let (name, available) = match outcome {
        Outcome::Reserved { available } => ("reserved", *available),
        Outcome::AlreadyReserved => ("already_reserved", 0),
        Outcome::Released => ("released", 0),
        Outcome::NotHeld => ("not_held", 0),
        Outcome::Sold => ("sold", 0),
        Outcome::AlreadySold => ("already_sold", 0),
        Outcome::Returned => ("returned", 0),
        Outcome::AlreadyReturned => ("already_returned", 0),
        Outcome::NotSold => ("not_sold", 0),
        Outcome::Adjusted { available, .. } => ("adjusted", *available),
        Outcome::ThresholdSet => ("threshold_set", 0),
        Outcome::Expired { .. } => ("expired", 0),
    };
    pb::ExecuteResponse {
        outcome: name.to_owned(),
        available,
    }
}

pub fn outcome_from_wire(response: &pb::ExecuteResponse) -> Result<Outcome, InventoryError> {
    Ok(match response.outcome.as_str() {
        "reserved" => Outcome::Reserved {
            available: response.available,
        },
        "already_reserved" => Outcome::AlreadyReserved,
        "released" => Outcome::Released,
        "not_held" => Outcome::NotHeld,
        "sold" => Outcome::Sold,
        "already_sold" => Outcome::AlreadySold,
        "returned" => Outcome::Returned,
        "already_returned" => Outcome::AlreadyReturned,
        "not_sold" => Outcome::NotSold,
        other => {
            return Err(InventoryError::Unavailable(format!(
                "the inventory service answered an unknown outcome {other:?}"
            )))
        }
    })
}

/// The actors' error as a status whose details let the caller rebuild it exactly.
pub fn inventory_error_to_status(error: &InventoryError) -> Status {
    let mut extra = None;
    let (code, reason, value) = match error {
        InventoryError::Stock(StockError::Insufficient { available }) => {
            (Code::FailedPrecondition, "insufficient", *available)
        }
        InventoryError::Stock(StockError::ConflictingReservation { held }) => {
            (Code::FailedPrecondition, "conflicting_reservation", *held)
        }
        InventoryError::Stock(StockError::BelowReserved { reserved }) => {
            (Code::FailedPrecondition, "below_reserved", *reserved)
        }
        InventoryError::Stock(StockError::NotReserved) => {
            (Code::FailedPrecondition, "not_reserved", 0)
        }
        InventoryError::Stock(StockError::InvalidQuantity) => {
            (Code::InvalidArgument, "invalid_quantity", 0)
        }
        InventoryError::Stock(StockError::CustomerLimit { limit, allowed }) => {
            extra = Some(("limit", *limit));
            (Code::FailedPrecondition, "customer_limit", *allowed)
        }
        InventoryError::Fenced => (Code::Unavailable, "fenced", 0),
        InventoryError::Restarting { retry_after_ms } => (
            Code::Unavailable,
            "restarting",
            i64::try_from(*retry_after_ms).unwrap_or(0),
        ),
        InventoryError::Unavailable(_) | InventoryError::Unreachable(_) => {
            (Code::Unavailable, "unavailable", 0)
        }
    };
    let mut metadata = HashMap::from([("value".to_owned(), value.to_string())]);
    if let Some((key, extra_value)) = extra {
        metadata.insert(key.to_owned(), extra_value.to_string());
    }
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, STOCK_DOMAIN, metadata);
    Status::with_error_details(code, error.to_string(), details)
}

/// Rebuilds the actors' error from a status of `Execute`; `None` when the status did
/// not come from a Souk inventory (a transport failure).
pub fn inventory_error_from_status(status: &Status) -> Option<InventoryError> {
    let info = status
        .get_details_error_info()
        .filter(|info| info.domain == STOCK_DOMAIN)?;
    let number = |key: &str| -> i64 {
        info.metadata
            .get(key)
            .and_then(|raw| raw.parse().ok())
            .unwrap_or(0)
    };
    let value = number("value");
    Some(match info.reason.as_str() {
        "insufficient" => InventoryError::Stock(StockError::Insufficient { available: value }),
        "conflicting_reservation" => {
            InventoryError::Stock(StockError::ConflictingReservation { held: value })
        }
        "below_reserved" => InventoryError::Stock(StockError::BelowReserved { reserved: value }),
        "not_reserved" => InventoryError::Stock(StockError::NotReserved),
        "invalid_quantity" => InventoryError::Stock(StockError::InvalidQuantity),
        "customer_limit" => InventoryError::Stock(StockError::CustomerLimit {
            limit: number("limit"),
            allowed: value,
        }),
        "fenced" => InventoryError::Fenced,
        "restarting" => InventoryError::Restarting {
            retry_after_ms: u64::try_from(value).unwrap_or(0),
        },
        _ => InventoryError::Unavailable(status.message().to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_refusals_survive_the_wire() {
        for error in [
            InventoryError::Stock(StockError::Insufficient { available: 3 }),
            InventoryError::Stock(StockError::BelowReserved { reserved: 7 }),
            InventoryError::Stock(StockError::CustomerLimit {
                limit: 5,
                allowed: 2,
            }),
            InventoryError::Fenced,
            InventoryError::Restarting {
                retry_after_ms: 250,
            },
        ] {
            let status = inventory_error_to_status(&error);
            assert_eq!(inventory_error_from_status(&status), Some(error));
        }
        assert_eq!(
            inventory_error_from_status(&Status::unavailable("connection refused")),
            None
        );
    }

    /// The inventory's own answers, retryable ones included, are answers: they must not
    /// count toward the client's circuit breaker as if the service were unreachable.
    #[test]
    fn stock_refusals_are_not_transport_failures() {
        use crate::wire::status::is_transport_failure;
        for error in [
            InventoryError::Stock(StockError::Insufficient { available: 3 }),
            InventoryError::Fenced,
            InventoryError::Restarting {
                retry_after_ms: 400,
            },
            InventoryError::Unavailable("the batch failed".into()),
        ] {
            let status = inventory_error_to_status(&error);
            assert!(!is_transport_failure(&status), "{error:?}");
        }
        assert!(is_transport_failure(&Status::unavailable(
            "connection refused"
        )));
    }

    #[test]
    fn order_commands_round_trip_and_local_ones_stay_local() {
        let command = Command::Reserve {
            order_id: "o1".into(),
            quantity: 2,
            ttl_ms: 1000,
            actor: "order:o1".into(),
            holder: Some(Holder {
                customer_id: "u1".into(),
                max_units: Some(4),
            }),
            place: Default::default(),
        };
        let wire = command_to_wire("SKU-1", &command).expect("reserve travels");
        assert_eq!(
            command_from_wire(wire).unwrap(),
            ("SKU-1".to_owned(), command.clone())
        );
        assert!(command_to_wire("SKU-1", &Command::ExpireDue).is_none());
        // What no orders service sends is refused, every field named.
        let mut huge = command_to_wire("SKU-1", &command).unwrap();
        if let Some(WireCommand::Reserve(reserve)) = &mut huge.command {
            reserve.ttl_ms = i64::MAX;
            reserve.quantity = -1;
            reserve.order_id = String::new();
        }
        let refused = command_from_wire(huge).unwrap_err();
        let fields: Vec<&str> = refused
            .field_errors()
            .iter()
            .map(|error| error.field.as_str())
            .collect();
        assert_eq!(fields, ["ttl_ms", "order_id", "quantity"]);
        let returned = Command::Return {
            order_id: "o1".into(),
            sale_order_id: "o1".into(),
            quantity: i64::MAX,
            actor: "order:o1".into(),
            reason: String::new(),
        };
        let refused = command_from_wire(command_to_wire("SKU-1", &returned).unwrap()).unwrap_err();
        assert_eq!(refused.field_errors()[0].field, "quantity");
        let outcome = Outcome::Reserved { available: 4 };
        assert_eq!(
            outcome_from_wire(&outcome_to_wire(&outcome)).unwrap(),
            outcome
        );
    }
}
