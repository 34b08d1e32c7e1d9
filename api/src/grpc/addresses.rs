//! The address book methods of `souk.v1.UserService`, as REST's
//! `/users/me/addresses`: thin calls into the same `AddressBook`, and the messages of
//! an address (also the copies an order keeps).

use souk_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::grpc::{caller, given, given_limit};
use crate::state::AppState;
use crate::wire::status::to_status;
use souk_actors::identity::{AddressFields, AddressView, PostalAddress};

pub fn postal_address_message(address: PostalAddress) -> pb::PostalAddress {
    pb::PostalAddress {
        name: address.name,
        line1: address.line1,
        line2: address.line2,
        city: address.city,
        region: address.region,
        postal_code: address.postal_code,
        country: address.country,
        phone: address.phone,
    }
}

fn address_message(view: AddressView) -> pb::Address {
    pb::Address {
        id: view.id,
        address: Some(pb::PostalAddress {
            name: view.name,
            line1: view.line1,
            line2: view.line2,
            city: view.city,
            region: view.region,
            postal_code: view.postal_code,
            country: view.country,
            phone: view.phone,
        }),
        created_at: view.created_at,
        updated_at: view.updated_at,
    }
}

/// proto3's empty string is "not given", as an absent JSON field.
fn field(text: String) -> Option<String> {
    Some(text).filter(|text| !text.is_empty())
}

fn new_address_fields(address: pb::PostalAddress) -> AddressFields {
    AddressFields {
        name: field(address.name),
        line1: field(address.line1),
        line2: address.line2,
        city: field(address.city),
        region: address.region,
        postal_code: address.postal_code,
        country: field(address.country),
        phone: address.phone,
    }
}

pub async fn list(
    state: &AppState,
    request: Request<pb::ListAddressesRequest>,
) -> Result<Response<pb::ListAddressesResponse>, Status> {
    let user = caller::user(state, request.metadata())
        .await
        .map_err(to_status)?;
    let body = request.into_inner();
    let page = state
        .addresses
        .list(&user.id, given(&body.cursor), given_limit(body.limit))
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::ListAddressesResponse {
        items: page.items.into_iter().map(address_message).collect(),
        next_cursor: page.next_cursor.unwrap_or_default(),
    }))
}

pub async fn create(
    state: &AppState,
    request: Request<pb::CreateAddressRequest>,
) -> Result<Response<pb::Address>, Status> {
    let user = caller::user(state, request.metadata())
        .await
        .map_err(to_status)?;
    let fields = new_address_fields(request.into_inner().address.unwrap_or_default());
    let address = state
        .addresses
        .create(&user.id, fields)
        .await
        .map_err(to_status)?;
    Ok(Response::new(address_message(address)))
}

pub async fn get(
    state: &AppState,
    request: Request<pb::GetAddressRequest>,
) -> Result<Response<pb::Address>, Status> {
    let user = caller::user(state, request.metadata())
        .await
        .map_err(to_status)?;
    let address = state
        .addresses
        .get(&user.id, &request.get_ref().id)
        .await
        .map_err(to_status)?;
    Ok(Response::new(address_message(address)))
}

pub async fn update(
    state: &AppState,
    request: Request<pb::UpdateAddressRequest>,
) -> Result<Response<pb::Address>, Status> {
    let user = caller::user(state, request.metadata())
        .await
        .map_err(to_status)?;
    let body = request.into_inner();
    let changes = AddressFields {
        name: body.name,
        line1: body.line1,
        line2: body.line2,
        city: body.city,
        region: body.region,
        postal_code: body.postal_code,
        country: body.country,
        phone: body.phone,
    };
    let address = state
        .addresses
        .update(&user.id, &body.id, changes)
        .await
        .map_err(to_status)?;
    Ok(Response::new(address_message(address)))
}

pub async fn delete(
    state: &AppState,
    request: Request<pb::DeleteAddressRequest>,
) -> Result<Response<pb::DeleteAddressResponse>, Status> {
    let user = caller::user(state, request.metadata())
        .await
        .map_err(to_status)?;
    state
        .addresses
        .delete(&user.id, &request.get_ref().id)
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::DeleteAddressResponse {}))
}
