//! The order service: the one door to orders. Checkout creates an order through the
//! rules; every command for an existing order (pay, cancel, ship, deliver, expire, a
//! return's step) goes through the order router to that order's actor, so commands of
//! one order run one at a time wherever it lives; reads come from the order tables.

use souk_db::orders::OrderFilter;

use super::actor::{OrderCommand, OrderRouter};
use super::logic::OrderLogic;
use super::returns::{ReturnCommand, ReturnStatus};
use super::state::Event;
use super::views::{Caller, CreateOrderInput, OrderItemInput, OrderView, ReturnView};
use crate::error::Error;
use crate::inventory::InventoryService;

#[derive(Clone)]
pub struct OrderService {
    logic: OrderLogic,
    router: OrderRouter,
}

impl OrderService {
    pub fn new(logic: OrderLogic, router: OrderRouter) -> Self {
        Self { logic, router }
    }

    pub fn router(&self) -> &OrderRouter {
        &self.router
    }

    /// The same service, reaching the order actors through `router`.
    pub fn with_router(&self, router: OrderRouter) -> Self {
        Self {
            logic: self.logic.clone(),
            router,
        }
    }

    /// The same service, its checkouts reaching the SKU actors through `inventory`.
    pub fn with_inventory(&self, inventory: InventoryService) -> Self {
        let mut logic = self.logic.clone();
        logic.inventory = inventory;
        Self {
            logic,
            router: self.router.clone(),
        }
    }

    /// Places an order. Returns it and whether it was created now (`false`: the same
    /// idempotency key and body were seen before, and this is that order).
    pub async fn create(
        &self,
        user_id: &str,
        input: CreateOrderInput,
        key: Option<String>,
    ) -> Result<(OrderView, bool), Error> {
        self.logic.create(user_id, input, key).await
    }

    /// The order an idempotency key placed for this user, if any.
    pub async fn find_by_idempotency_key(
        &self,
        user_id: &str,
        key: &str,
    ) -> Result<Option<OrderView>, Error> {
        self.logic.find_by_idempotency_key(user_id, key).await
    }

    /// The order if the caller may see it: its owner (`owner`), or an admin (`None`).
    pub async fn get(&self, id: &str, owner: Option<&str>) -> Result<OrderView, Error> {
        self.logic.get(id, owner).await
    }

    pub async fn list(
        &self,
        filter: &OrderFilter,
    ) -> Result<(Vec<OrderView>, Option<(i64, String)>), Error> {
        self.logic.list(filter).await
    }

    async fn command(&self, id: &str, command: OrderCommand) -> Result<OrderView, Error> {
        if !souk_db::ids::is_well_formed(id) {
            return Err(Error::not_found("order"));
        }
        self.router
            .send(id.to_owned(), command)
            .await?
            .ok_or_else(|| Error::internal("an order command returned no order"))
    }

    pub async fn pay(&self, user_id: &str, id: &str, method: &str) -> Result<OrderView, Error> {
        let command = OrderCommand::Pay {
            user_id: user_id.to_owned(),
            method: method.to_owned(),
        };
        self.command(id, command).await
    }

    pub async fn cancel(&self, caller: Caller, id: &str, reason: &str) -> Result<OrderView, Error> {
        let command = OrderCommand::Cancel {
            caller,
            reason: reason.to_owned(),
        };
        self.command(id, command).await
    }

    pub async fn fulfil(&self, admin_id: &str, id: &str, event: Event) -> Result<OrderView, Error> {
        let command = OrderCommand::Fulfil {
            admin_id: admin_id.to_owned(),
            event,
        };
        self.command(id, command).await
    }

    /// The shopper asks to return `items` of their delivered order; the new return.
    pub async fn request_return(
        &self,
        user_id: &str,
        order_id: &str,
        items: Vec<OrderItemInput>,
        reason: &str,
    ) -> Result<ReturnView, Error> {
        let return_id = souk_db::ids::new_id();
        let command = ReturnCommand::Request {
            return_id: return_id.clone(),
            user_id: user_id.to_owned(),
            items,
            reason: reason.to_owned(),
        };
        self.return_step(order_id, &return_id, command).await
    }

    /// Returns in `status` (all when `None`), oldest first, and the next page's start.
    pub async fn list_returns(
        &self,
        status: Option<ReturnStatus>,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<(Vec<ReturnView>, Option<(i64, String)>), Error> {
        self.logic.list_returns(status, after, limit).await
    }

    /// An admin's step of a return (approve, reject, receive, refund); the return after it.
    pub async fn return_step(
        &self,
        order_id: &str,
        return_id: &str,
        command: ReturnCommand,
    ) -> Result<ReturnView, Error> {
        if !souk_db::ids::is_well_formed(return_id) {
            return Err(Error::not_found("return"));
        }
        let order = self
            .command(order_id, OrderCommand::Return(command))
            .await?;
        order
            .returns
            .into_iter()
            .find(|returned| returned.id == return_id)
            .ok_or_else(|| Error::not_found("return"))
    }

    /// Expires the order if it is unpaid past its deadline (otherwise nothing happens).
    pub async fn expire(&self, id: &str) -> Result<(), Error> {
        self.router
            .send(id.to_owned(), OrderCommand::Expire)
            .await
            .map(|_| ())
    }

    /// Unpaid orders past their deadline, at most 100, oldest first.
    pub async fn due_for_expiry(&self) -> Result<Vec<String>, Error> {
        self.logic.due_for_expiry().await
    }

    /// One pass of the expiry sweep: every due order this node runs is expired through
    /// its actor (on a cluster, each node expires the orders of the shards it serves).
    pub async fn expire_due(&self) -> Result<usize, Error> {
        let mut expired = 0;
        let due = self.due_for_expiry().await?;
        for id in due.into_iter().filter(|id| self.router.serves_here(id)) {
            match self.expire(&id).await {
                Ok(()) => expired += 1,
                Err(error) => tracing::warn!(order_id = %id, %error, "cannot expire order"),
            }
        }
        Ok(expired)
    }

    /// One pass of the settlement sweep: every order this node runs whose stock effect
    /// a crash left owed is settled through its actor; answers how many were.
    pub async fn settle_unsettled(&self) -> Result<usize, Error> {
        let mut settled = 0;
        let owed = self.logic.unsettled().await?;
        for id in owed.into_iter().filter(|id| self.router.serves_here(id)) {
            match self.router.send(id.clone(), OrderCommand::Settle).await {
                Ok(_) => settled += 1,
                Err(error) => tracing::warn!(order_id = %id, %error, "cannot settle order"),
            }
        }
        Ok(settled)
    }

    /// Asks again for the refunds owed on captures no order could keep: those of the
    /// orders this node runs.
    pub async fn refund_unkept_captures(&self) -> Result<usize, Error> {
        let router = &self.router;
        self.logic
            .refund_unkept_captures(|order_id| router.serves_here(order_id))
            .await
    }
}
