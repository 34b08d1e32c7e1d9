//! Health checking and reflection on the gRPC port: every service reports serving and
//! an unknown one is not found; reflection (v1 and the older v1alpha) lists the
//! services.

use tonic::Code;

use crate::grpc_edges::channel;
use crate::helpers::*;

#[actix_web::test]
async fn health_and_reflection_describe_the_services() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let app = spawn_app().await;
    let channel = channel(&app).await;
    let mut health = HealthClient::new(channel.clone());
    for service in [
        "souk.v1.UserService",
        "souk.v1.AuthService",
        "souk.v1.ProductService",
        "souk.v1.OrderService",
        "souk.v1.CartService",
        "souk.v1.InventoryService",
        "souk.v1.EmailService",
        "souk.v1.ShippingService",
    ] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status, ServingStatus::Serving as i32, "{service}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "souk.v1.NoSuchService".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    for expected in [
        "souk.v1.OrderService",
        "souk.v1.CartService",
        "souk.v1.InventoryService",
        "souk.v1.ShippingService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.contains(&expected.to_owned()), "{names:?}");
    }

    // The older v1alpha reflection answers the same.
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    };
    let mut answers = AlphaClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    let Some(AlphaResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("expected a service list from v1alpha");
    };
    assert!(
        list.service
            .iter()
            .any(|service| service.name == "souk.v1.OrderService"),
        "{list:?}"
    );
}
