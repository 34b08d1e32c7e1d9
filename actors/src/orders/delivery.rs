//! A checkout's delivery details, each read only when named or needed: the snapshots
//! of the shipping and billing addresses from the caller's address book, the shipping
//! method (it must serve the shipping address's country) and that country's tax rate.

use souk_db::shipping::ShippingMethodRecord;

use super::logic::OrderLogic;
use crate::error::{Error, FieldError, FieldErrors};
use crate::identity::PostalAddress;

impl OrderLogic {
    /// The snapshots of the addresses named, each read only when its id is given, once
    /// when both name the same; an id that is not one of the caller's addresses is
    /// `validation_failed` naming its field.
    pub(super) async fn address_snapshots(
        &self,
        user_id: &str,
        shipping_id: Option<&str>,
        billing_id: Option<&str>,
    ) -> Result<(Option<PostalAddress>, Option<PostalAddress>), Error> {
        let mut errors = FieldErrors::default();
        let shipping = match shipping_id {
            Some(id) => {
                self.address_snapshot(user_id, "shipping_address_id", id, &mut errors)
                    .await?
            }
            None => None,
        };
        let billing = match billing_id {
            Some(id) if Some(id) == shipping_id => shipping.clone(),
            Some(id) => {
                self.address_snapshot(user_id, "billing_address_id", id, &mut errors)
                    .await?
            }
            None => None,
        };
        errors.finish()?;
        Ok((shipping, billing))
    }

    async fn address_snapshot(
        &self,
        user_id: &str,
        field: &str,
        id: &str,
        errors: &mut FieldErrors,
    ) -> Result<Option<PostalAddress>, Error> {
        match self.addresses.snapshot(user_id, id).await? {
            Some(address) => Ok(Some(address)),
            None => {
                errors.push(field, "is not one of your saved addresses");
                Ok(None)
            }
        }
    }

    /// The shipping method named (it needs a shipping address, in a country it serves)
    /// and the shipping country's tax rate in basis points; each read only when needed.
    pub(super) async fn pricing(
        &self,
        method_code: Option<&str>,
        shipping_address: Option<&PostalAddress>,
    ) -> Result<(Option<ShippingMethodRecord>, i64), Error> {
        let method = match (method_code, shipping_address) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Error::validation(vec![FieldError::new(
                    "shipping_address_id",
                    "is required when a shipping method is chosen",
                )]))
            }
            (Some(code), Some(address)) => {
                let Some(method) = self.shipping.active_method(code).await? else {
                    return Err(Error::validation(vec![FieldError::new(
                        "shipping_method",
                        format!("{code:?} is not an active shipping method"),
                    )]));
                };
                if !method.serves(&address.country) {
                    return Err(Error::validation(vec![FieldError::new(
                        "shipping_method",
                        format!("{} does not ship to {}", method.code, address.country),
                    )]));
                }
                Some(method)
            }
        };
        let tax_rate_bps = match shipping_address {
            Some(address) => self.shipping.tax_rate_bps(&address.country).await?,
            None => 0,
        };
        Ok((method, tax_rate_bps))
    }
}
