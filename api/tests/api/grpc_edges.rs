//! The gRPC port at the edges of the protocol: bytes that are not a protobuf message,
//! access tokens whose session has ended, an email change that a token alone cannot
//! make, and a message larger than a REST body.

use prost::bytes::{Buf, BufMut};
use souk_proto::v1 as pb;
use souk_proto::v1::auth_service_client::AuthServiceClient;
use souk_proto::v1::user_service_client::UserServiceClient;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::helpers::*;

/// Sends and receives message bytes as they are, so a test can put on the wire what no
/// generated client would.
#[derive(Debug, Default, Clone, Copy)]
struct RawBytes;

impl Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }

    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

impl Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

pub(crate) async fn channel(app: &TestApp) -> Channel {
    Channel::from_shared(app.grpc_address.clone())
        .unwrap()
        .connect()
        .await
        .expect("connect to the gRPC port")
}

/// One unary call to `path` whose message is `body`, byte for byte.
pub(crate) async fn call_raw(
    channel: &Channel,
    path: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    grpc.unary(
        Request::new(body),
        tonic::codegen::http::uri::PathAndQuery::try_from(path).expect("a valid path"),
        RawBytes,
    )
    .await
    .map(tonic::Response::into_inner)
}

#[actix_web::test]
async fn malformed_protobuf_requests_are_invalid_arguments_on_every_service() {
    let app = spawn_app().await;
    let channel = channel(&app).await;
    // A field tag whose varint never ends, then a length-delimited field longer than
    // the message: neither decodes as any message.
    let garbage = [vec![0xff; 11], vec![0x0a, 0x7f, b'x']];
    for path in [
        "/souk.v1.UserService/GetMe",
        "/souk.v1.AuthService/Login",
        "/souk.v1.ProductService/GetProduct",
        "/souk.v1.InventoryService/GetStock",
        "/souk.v1.OrderService/GetOrder",
        "/souk.v1.EmailService/ListSends",
        "/souk.v1.ShippingService/PutTaxRate",
    ] {
        for body in &garbage {
            let status = call_raw(&channel, path, body.clone())
                .await
                .expect_err("garbage must be refused");
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{path} with {body:?}: {status:?}"
            );
            assert!(
                status.message().contains("not a valid protobuf message"),
                "{path}: {}",
                status.message()
            );
        }
    }
    // The same path with a well-formed (empty) message reaches the handler, which asks
    // for a token: the decoding, not the path, made the difference.
    let status = call_raw(&channel, "/souk.v1.UserService/GetMe", Vec::new())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[actix_web::test]
async fn logout_revokes_the_access_token_over_grpc() {
    let app = spawn_app().await;
    let user = app.customer("grpc-logout").await;
    let mut users = UserServiceClient::new(channel(&app).await);
    let me = |token: &str| {
        let mut request = Request::new(pb::GetMeRequest {});
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    };
    let before = users.get_me(me(&user.access_token)).await.unwrap();
    assert_eq!(before.get_ref().id, user.id);
    let logout = app
        .post_json(
            "/api/v1/auth/logout",
            &serde_json::json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_eq!(logout.status(), 204);
    let status = users.get_me(me(&user.access_token)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[actix_web::test]
async fn an_email_change_over_grpc_needs_the_password_and_the_new_address() {
    let app = spawn_app().await;
    let user = app.customer("grpc-move").await;
    let mut users = UserServiceClient::new(channel(&app).await);
    let update = |email: &str, password: Option<&str>| {
        let mut request = Request::new(pb::UpdateMeRequest {
            name: None,
            email: Some(email.to_owned()),
            current_password: password.map(str::to_owned),
        });
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", user.access_token).parse().unwrap(),
        );
        request
    };
    let new_email = unique_email("grpc-moved");
    let status = users.update_me(update(&new_email, None)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = users
        .update_me(update(&new_email, Some("not the password")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let pending = users
        .update_me(update(&new_email, Some(PASSWORD)))
        .await
        .unwrap();
    assert_eq!(pending.get_ref().email, user.email, "not applied yet");

    let requested = app.events("user.email_change_requested", &user.id).await;
    let token = requested[0]["token"].as_str().unwrap().to_owned();
    let mut auth = AuthServiceClient::new(channel(&app).await);
    let confirmed = auth
        .confirm_email_change(pb::ConfirmEmailChangeRequest {
            token: token.clone(),
        })
        .await
        .unwrap();
    assert_eq!(confirmed.get_ref().user_id, user.id);
    let status = auth
        .confirm_email_change(pb::ConfirmEmailChangeRequest { token })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(app.login(&new_email, PASSWORD).await.status(), 200);
}

/// A message larger than `http.max_body_bytes` is refused before it is decoded, as a
/// REST body of that size is (tonic alone would take 4 MiB).
#[actix_web::test]
async fn a_message_larger_than_a_rest_body_is_refused() {
    let app = spawn_app().await;
    let mut auth = AuthServiceClient::new(channel(&app).await);
    let status = auth
        .login(pb::LoginRequest {
            email: "big@example.com".to_owned(),
            password: "x".repeat(100 * 1024),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    // One within the limit is read and answered.
    let status = auth
        .login(pb::LoginRequest {
            email: "big@example.com".to_owned(),
            password: "x".repeat(1024),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}
