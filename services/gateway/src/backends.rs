//! The gRPC clients of the services the gateway calls, and the one wrapper
//! that records every call's latency and outcome.

use messenger_platform::grpc::TracePropagation;
use messenger_proto::groups::v1::groups_service_client::GroupsServiceClient;
use messenger_proto::media::v1::media_service_client::MediaServiceClient;
use messenger_proto::messages::v1::messages_service_client::MessagesServiceClient;
use messenger_proto::notifier::v1::notifier_service_client::NotifierServiceClient;
use messenger_proto::users::v1::users_service_client::UsersServiceClient;
use std::future::Future;
use std::time::Instant;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type UsersClient = UsersServiceClient<InterceptedService<Channel, TracePropagation>>;
pub type GroupsClient = GroupsServiceClient<InterceptedService<Channel, TracePropagation>>;
pub type MessagesClient = MessagesServiceClient<InterceptedService<Channel, TracePropagation>>;
pub type MediaClient = MediaServiceClient<InterceptedService<Channel, TracePropagation>>;
pub type NotifierClient = NotifierServiceClient<InterceptedService<Channel, TracePropagation>>;

/// Runs one gRPC call, recording `grpc_client_requests_total` and
/// `grpc_client_duration_seconds` by method and status code.
pub async fn call<T>(
    method: &'static str,
    future: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, tonic::Status> {
    let started = Instant::now();
    let result = future.await;
    let code = match &result {
        Ok(_) => "Ok".to_owned(),
        Err(status) => format!("{:?}", status.code()),
    };
    metrics::histogram!("grpc_client_duration_seconds", "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("grpc_client_requests_total", "method" => method, "code" => code)
        .increment(1);
    result.map(tonic::Response::into_inner)
}
