//! gRPC server reflection: each service lists its own service and the
//! health service (no other contract of the fleet), and describes every
//! method its contract declares, over both protocol versions tools use.

use crate::helpers::TestApp;
use messenger_platform::callers::Caller;
use messenger_platform::grpc::lazy_channel;
use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use std::time::Duration;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1alpha;

#[tokio::test]
async fn every_service_describes_its_methods_by_reflection() {
    let app = TestApp::spawn().await;
    let grpc = &app.config.grpc;
    let services = [
        (
            Caller::Users,
            &grpc.users.url,
            "messenger.users.v1.UsersService",
        ),
        (
            Caller::Groups,
            &grpc.groups.url,
            "messenger.groups.v1.GroupsService",
        ),
        (
            Caller::Messages,
            &grpc.messages.url,
            "messenger.messages.v1.MessagesService",
        ),
        (
            Caller::Media,
            &grpc.media.url,
            "messenger.media.v1.MediaService",
        ),
    ];
    // What an operator's grpcurl does, with the operator certificate.
    let transport = messenger_testkit::transport_as(&app.config, Caller::Operator)
        .await
        .expect("an operator certificate");
    for (target, url, service) in services {
        let channel = lazy_channel(&transport, target, url, Duration::from_secs(5)).expect("url");
        let mut client = ServerReflectionClient::new(channel.clone());
        let MessageResponse::ListServicesResponse(listed) =
            ask(&mut client, MessageRequest::ListServices(String::new())).await
        else {
            panic!("{service}: no service list");
        };
        let mut names: Vec<String> = listed.service.into_iter().map(|s| s.name).collect();
        names.sort();
        let mut expected = vec![
            "grpc.health.v1.Health".to_owned(),
            "grpc.reflection.v1.ServerReflection".to_owned(),
            service.to_owned(),
        ];
        expected.sort();
        assert_eq!(names, expected, "{url}");

        let MessageResponse::FileDescriptorResponse(files) = ask(
            &mut client,
            MessageRequest::FileContainingSymbol(service.to_owned()),
        )
        .await
        else {
            panic!("{service}: no descriptor");
        };
        let served = methods(
            files
                .file_descriptor_proto
                .iter()
                .map(|raw| FileDescriptorProto::decode(raw.as_slice()).expect("descriptor")),
            service,
        );
        let declared = methods(
            FileDescriptorSet::decode(messenger_proto::FILE_DESCRIPTOR_SET)
                .expect("our descriptors")
                .file,
            service,
        );
        assert!(!declared.is_empty(), "{service} declares methods");
        assert_eq!(served, declared, "{service}");

        // Older tools (grpcurl before v1) ask the v1alpha service.
        let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
        let request = v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
            ),
        };
        let mut answers = alpha
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .expect("v1alpha reflection")
            .into_inner();
        let answer = answers
            .message()
            .await
            .expect("answer")
            .expect("one answer");
        let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
            answer.message_response
        else {
            panic!("{service}: no v1alpha service list");
        };
        assert!(list.service.iter().any(|s| s.name == service), "{service}");
    }
    app.cleanup().await;
}

async fn ask(
    client: &mut ServerReflectionClient<tonic::transport::Channel>,
    request: MessageRequest,
) -> MessageResponse {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection call")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("answer")
        .expect("one answer");
    answer.message_response.expect("a response")
}

/// The method names of `service` (full name) in `files`, sorted.
fn methods(files: impl IntoIterator<Item = FileDescriptorProto>, service: &str) -> Vec<String> {
    let mut names: Vec<String> = files
        .into_iter()
        .flat_map(|file| {
            let package = file.package().to_owned();
            file.service
                .into_iter()
                .filter(move |s| format!("{package}.{}", s.name()) == service)
        })
        .flat_map(|s| s.method.into_iter().map(|m| m.name().to_owned()))
        .collect();
    names.sort();
    names
}
