//! go-plugin's side services: the controller that ends the process, and the stdio and broker
//! streams that go-plugin's client opens but Terraform providers never feed.
//!
//! Every stream handed out here ends when shutdown starts, so graceful shutdown never waits on a
//! stream that would otherwise stay open forever. Nothing here writes to stdout or stderr.

use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use super::proto::grpc_broker_server::GrpcBroker;
use super::proto::grpc_controller_server::GrpcController;
use super::proto::grpc_stdio_server::GrpcStdio;
use super::proto::{ConnInfo, Empty, StdioData};

/// The side services, sharing the token that starts the process's shutdown.
#[derive(Debug, Clone)]
pub struct SideServices {
    shutdown: CancellationToken,
}

impl SideServices {
    /// Services that cancel (and watch) `shutdown`.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self { shutdown }
    }

    /// A stream that yields nothing and ends when shutdown starts.
    fn silent_until_shutdown<T: Send + 'static>(&self) -> BoxStream<T> {
        Box::pin(futures::stream::pending().take_until(self.shutdown.clone().cancelled_owned()))
    }
}

#[tonic::async_trait]
impl GrpcController for SideServices {
    /// Terraform calls this when it is done with the provider; the reply goes out before the
    /// server stops accepting work.
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::debug!("plugin host asked for shutdown");
        self.shutdown.cancel();
        Ok(Response::new(Empty {}))
    }
}

#[tonic::async_trait]
impl GrpcStdio for SideServices {
    /// Our logs already go to stderr, which the host reads directly, so nothing is mirrored.
    async fn stream_stdio(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<BoxStream<StdioData>>, Status> {
        Ok(Response::new(self.silent_until_shutdown()))
    }
}

#[tonic::async_trait]
impl GrpcBroker for SideServices {
    /// Nothing is ever brokered; the host's messages are read and dropped so its sends never
    /// block, and the reply stream stays silent.
    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<BoxStream<ConnInfo>>, Status> {
        let mut inbound = request.into_inner();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    message = inbound.message() => match message {
                        Ok(Some(info)) => tracing::debug!(?info, "ignoring a broker message"),
                        Ok(None) | Err(_) => break,
                    },
                }
            }
        });
        Ok(Response::new(self.silent_until_shutdown()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn shutdown_cancels_token_and_ends_streams() {
        let token = CancellationToken::new();
        let services = SideServices::new(token.clone());
        let mut stdio =
            services.stream_stdio(Request::new(Empty {})).await.expect("stdio").into_inner();

        let still_open = tokio::time::timeout(Duration::from_millis(50), stdio.next()).await;
        assert!(still_open.is_err(), "stdio stream must stay open before shutdown");

        services.shutdown(Request::new(Empty {})).await.expect("shutdown");
        assert!(token.is_cancelled());
        let ended = tokio::time::timeout(Duration::from_secs(1), stdio.next()).await;
        assert!(matches!(ended, Ok(None)), "stdio stream must end at shutdown: {ended:?}");
    }
}
