//! Which of Souk's six services a node runs (`--services`), and what it needs from the
//! ones it does not: a node with every service is one process; any subset can run
//! apart, reaching the others over gRPC.

use std::collections::BTreeSet;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    User,
    Auth,
    Email,
    Product,
    Order,
    Inventory,
}

impl Service {
    pub const ALL: [Service; 6] = [
        Service::User,
        Service::Auth,
        Service::Email,
        Service::Product,
        Service::Order,
        Service::Inventory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::User => "user",
            Service::Auth => "auth",
            Service::Email => "email",
            Service::Product => "product",
            Service::Order => "order",
            Service::Inventory => "inventory",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|service| service.as_str() == raw)
    }

    /// The services whose behaviour this one calls. Orders reserve stock in the
    /// inventory's actors and snapshot prices from the catalog; the rest read only
    /// their own tables (and the users table, for authentication).
    pub fn dependencies(self) -> &'static [Service] {
        match self {
            Service::Order => &[Service::Inventory, Service::Product],
            _ => &[],
        }
    }

    /// The gRPC service names this service serves (for health checks).
    pub fn grpc_name(self) -> &'static str {
        match self {
            Service::User => "souk.v1.UserService",
            Service::Auth => "souk.v1.AuthService",
            Service::Email => "souk.v1.EmailService",
            Service::Product => "souk.v1.ProductService",
            Service::Order => "souk.v1.OrderService",
            Service::Inventory => "souk.v1.InventoryService",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The services of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSet(BTreeSet<Service>);

impl ServiceSet {
    pub fn all() -> Self {
        Self(Service::ALL.into_iter().collect())
    }

    /// A comma-separated list (`order,inventory`), or `all`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim() == "all" {
            return Ok(Self::all());
        }
        let mut set = BTreeSet::new();
        for name in raw
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            let service = Service::parse(name).ok_or_else(|| {
                format!("unknown service {name:?}; use user, auth, email, product, order, inventory or all")
            })?;
            set.insert(service);
        }
        if set.is_empty() {
            return Err("name at least one service, or all".to_owned());
        }
        Ok(Self(set))
    }

    pub fn contains(&self, service: Service) -> bool {
        self.0.contains(&service)
    }

    pub fn is_all(&self) -> bool {
        self.0.len() == Service::ALL.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = Service> + '_ {
        self.0.iter().copied()
    }

    /// The domains (of `souk-actors`) behind the services this node runs, in the
    /// order the node's tree lists them; the relay of `outbox` runs on every node.
    pub fn domains(&self) -> Vec<&'static str> {
        // Every node authenticates its callers, with its own cache of live sessions.
        let mut domains = vec!["identity"];
        if self.contains(Service::Product) {
            domains.push("catalog");
        }
        if self.contains(Service::Inventory) {
            domains.push("inventory");
        }
        if self.contains(Service::Order) {
            domains.push("orders");
        }
        if self.contains(Service::Email) {
            domains.push("email");
        }
        domains.push("outbox");
        domains
    }

    /// Services this node calls but does not run: each needs a gRPC URL.
    pub fn remote_dependencies(&self) -> BTreeSet<Service> {
        self.iter()
            .flat_map(|service| service.dependencies().iter().copied())
            .filter(|dependency| !self.contains(*dependency))
            .collect()
    }

    /// The kinds of entity this node hosts for its cluster: SKUs where the inventory
    /// service runs, orders where the order service does.
    pub fn entity_kinds(&self) -> Vec<String> {
        use souk_actors::entity::EntityKind;
        let mut kinds = Vec::new();
        if self.contains(Service::Inventory) {
            kinds.push(<souk_actors::inventory::Sku as EntityKind>::NAME.to_owned());
        }
        if self.contains(Service::Order) {
            kinds.push(<souk_actors::orders::actor::Order as EntityKind>::NAME.to_owned());
        }
        kinds
    }
}

impl fmt::Display for ServiceSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Service::as_str).collect();
        formatter.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_unknown_names_are_refused() {
        assert!(ServiceSet::parse("all").unwrap().is_all());
        let set = ServiceSet::parse("order, inventory").unwrap();
        assert!(set.contains(Service::Order) && !set.contains(Service::User));
        assert!(ServiceSet::parse("orders")
            .unwrap_err()
            .contains("unknown service"));
        assert!(ServiceSet::parse(" , ").is_err());
    }

    #[test]
    fn an_order_node_alone_needs_inventory_and_product() {
        let alone = ServiceSet::parse("order").unwrap();
        assert_eq!(
            alone.remote_dependencies().into_iter().collect::<Vec<_>>(),
            vec![Service::Product, Service::Inventory]
        );
        assert!(ServiceSet::all().remote_dependencies().is_empty());
    }
}
