//! The address book: each signed-in user's saved shipping and billing addresses —
//! list (cursor-paged), create (at most `max_addresses` per user, `409 address_limit`
//! past it), read, edit (only the fields given; the result is validated whole) and
//! delete — and the snapshot of one that checkout copies into an order. Another
//! user's address is `not_found`, never `forbidden`: its existence does not leak.

use serde::Serialize;
use souk_db::addresses::{self, AddressRecord, Inserted};
use souk_db::clock::{now_micros, to_datetime};
use souk_db::{Db, DbError};
use utoipa::ToSchema;

use crate::error::{Error, ErrorCode};
use crate::identity::address::{AddressFields, PostalAddress};
use crate::paging::{checked_limit, decode_cursor, paginate, Page};

/// A saved address as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AddressView {
    /// Opaque id.
    pub id: String,
    /// The recipient.
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    /// State, province or county.
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    pub phone: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

impl From<AddressRecord> for AddressView {
    fn from(record: AddressRecord) -> Self {
        Self {
            created_at: to_datetime(record.created_at).to_rfc3339(),
            updated_at: to_datetime(record.updated_at).to_rfc3339(),
            id: record.id,
            name: record.name,
            line1: record.line1,
            line2: record.line2,
            city: record.city,
            region: record.region,
            postal_code: record.postal_code,
            country: record.country,
            phone: record.phone,
        }
    }
}

fn content(record: &AddressRecord) -> PostalAddress {
    PostalAddress {
        name: record.name.clone(),
        line1: record.line1.clone(),
        line2: record.line2.clone(),
        city: record.city.clone(),
        region: record.region.clone(),
        postal_code: record.postal_code.clone(),
        country: record.country.clone(),
        phone: record.phone.clone(),
    }
}

fn fill(record: &mut AddressRecord, address: PostalAddress) {
    record.name = address.name;
    record.line1 = address.line1;
    record.line2 = address.line2;
    record.city = address.city;
    record.region = address.region;
    record.postal_code = address.postal_code;
    record.country = address.country;
    record.phone = address.phone;
}

fn not_found() -> Error {
    Error::not_found("address")
}

/// How often an edit is tried again when a concurrent edit of the same address won.
const EDIT_ATTEMPTS: usize = 5;

#[derive(Clone)]
pub struct AddressBook {
    db: Db,
    max_addresses: u32,
}

impl AddressBook {
    /// `max_addresses`: how many addresses one user may keep (at least one).
    pub fn new(db: Db, max_addresses: u32) -> Self {
        Self {
            db,
            max_addresses: max_addresses.max(1),
        }
    }

    pub fn max_addresses(&self) -> u32 {
        self.max_addresses
    }

    /// The user's addresses, oldest first.
    #[tracing::instrument(name = "list_addresses", skip(self, cursor))]
    pub async fn list(
        &self,
        user_id: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<AddressView>, Error> {
        let limit = checked_limit(limit)?;
        let after = cursor.map(decode_cursor).transpose()?;
        let rows = addresses::list(self.db.pool(), user_id, after.as_deref(), limit).await?;
        Ok(paginate(
            rows,
            limit,
            |row| row.id.as_str(),
            AddressView::from,
        ))
    }

    async fn find(&self, user_id: &str, id: &str) -> Result<AddressRecord, Error> {
        if !souk_db::ids::is_well_formed(id) {
            return Err(not_found());
        }
        addresses::find(self.db.pool(), user_id, id)
            .await?
            .ok_or_else(not_found)
    }

    #[tracing::instrument(name = "get_address", skip(self))]
    pub async fn get(&self, user_id: &str, id: &str) -> Result<AddressView, Error> {
        Ok(self.find(user_id, id).await?.into())
    }

    /// Saves a new address unless the user already keeps `max_addresses`.
    #[tracing::instrument(name = "create_address", skip(self, fields))]
    pub async fn create(&self, user_id: &str, fields: AddressFields) -> Result<AddressView, Error> {
        let address = PostalAddress::parse(&fields)?;
        let now = now_micros();
        let mut record = AddressRecord {
            id: souk_db::ids::new_id(),
            user_id: user_id.to_owned(),
            name: String::new(),
            line1: String::new(),
            line2: None,
            city: String::new(),
            region: None,
            postal_code: None,
            country: String::new(),
            phone: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        fill(&mut record, address);
        let mut connection = self.db.pool().acquire().await.map_err(DbError::from)?;
        match addresses::insert(&mut connection, &record, self.max_addresses).await? {
            Inserted::Inserted => {
                tracing::info!(user_id, address_id = %record.id, "address saved");
                Ok(record.into())
            }
            Inserted::Full => Err(Error::new(
                ErrorCode::AddressLimit,
                format!(
                    "an address book holds at most {} addresses; delete one first",
                    self.max_addresses
                ),
            )),
        }
    }

    /// Applies the fields given over the stored address and validates the result whole
    /// (a new country may need a postal code). A concurrent edit that wins is read
    /// again and these changes applied over it.
    #[tracing::instrument(name = "update_address", skip(self, changes))]
    pub async fn update(
        &self,
        user_id: &str,
        id: &str,
        changes: AddressFields,
    ) -> Result<AddressView, Error> {
        for _ in 0..EDIT_ATTEMPTS {
            let mut record = self.find(user_id, id).await?;
            let address = PostalAddress::parse(&changes.clone().over(&content(&record)))?;
            let expected_version = record.version;
            fill(&mut record, address);
            record.version += 1;
            record.updated_at = now_micros();
            if addresses::update(self.db.pool(), &record, expected_version).await? {
                return Ok(record.into());
            }
        }
        Err(Error::unavailable_retry_after(
            ErrorCode::ServiceUnavailable,
            "the address keeps changing; retry",
            1,
        ))
    }

    #[tracing::instrument(name = "delete_address", skip(self))]
    pub async fn delete(&self, user_id: &str, id: &str) -> Result<(), Error> {
        if !souk_db::ids::is_well_formed(id)
            || !addresses::delete(self.db.pool(), user_id, id).await?
        {
            return Err(not_found());
        }
        tracing::info!(user_id, address_id = %id, "address deleted");
        Ok(())
    }

    /// The address as it is now, for an order to keep; `None` when `id` is not one of
    /// the user's addresses (malformed, deleted, or another user's).
    #[tracing::instrument(name = "snapshot_address", skip(self))]
    pub async fn snapshot(&self, user_id: &str, id: &str) -> Result<Option<PostalAddress>, Error> {
        if !souk_db::ids::is_well_formed(id) {
            return Ok(None);
        }
        Ok(addresses::find(self.db.pool(), user_id, id)
            .await?
            .as_ref()
            .map(content))
    }
}
