//! Orders: the state machine every order actor will run (issue #4). The actor, the
//! order service and its REST API are not built yet; the rules are, and are
//! property-tested, so they can be built on.

pub mod state;

pub use state::{
    transition, Event, Fulfilment, OrderActor, OrderStatus, Payment, StockEffect, TransitionError,
};
