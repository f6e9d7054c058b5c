//! What the watcher asks of the route service, as a trait: the HTTP client in production, a
//! fake in the unit tests of the watcher's decisions and supervision. Every call the watcher
//! makes goes through it.

use route_wire::client::{Client, ClientError};
use route_wire::{Approval, Digest, Inbox, ReportStatus, StationId, StationKey, TrainId};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The route service as the watcher uses it.
pub trait RouteService: Send + Sync {
    /// Where it is, for messages.
    fn base(&self) -> &str;
    /// The station's inbox, now.
    fn inbox(&self, station: &StationId) -> impl Future<Output = Result<Inbox, ClientError>>;
    /// A report on a train.
    fn report(
        &self,
        train: &TrainId,
        status: ReportStatus,
        reason: Option<String>,
        digest: Option<Digest>,
    ) -> impl Future<Output = Result<(), ClientError>>;
    /// An approval or a rejection.
    fn decide(
        &self,
        train: &TrainId,
        approve: bool,
        reason: Option<String>,
    ) -> impl Future<Output = Result<(), ClientError>>;
    /// How the station takes trains.
    fn set_approval(
        &self,
        station: &StationId,
        approval: Approval,
    ) -> impl Future<Output = Result<(), ClientError>>;
    /// The key the service holds for the station.
    fn station_key(
        &self,
        station: &StationId,
    ) -> impl Future<Output = Result<StationKey, ClientError>>;
    /// Follows the station's event feed until `stop`, waking `wake` at each event.
    fn follow(
        &self,
        station: StationId,
        wake: Arc<Notify>,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static;
}

impl RouteService for Client {
    fn base(&self) -> &str {
        Client::base(self)
    }

    async fn inbox(&self, station: &StationId) -> Result<Inbox, ClientError> {
        Client::inbox(self, station, Duration::ZERO).await
    }

    async fn report(
        &self,
        train: &TrainId,
        status: ReportStatus,
        reason: Option<String>,
        digest: Option<Digest>,
    ) -> Result<(), ClientError> {
        Client::report(self, train, status, reason, digest)
            .await
            .map(drop)
    }

    async fn decide(
        &self,
        train: &TrainId,
        approve: bool,
        reason: Option<String>,
    ) -> Result<(), ClientError> {
        Client::decide(self, train, approve, reason).await.map(drop)
    }

    async fn set_approval(
        &self,
        station: &StationId,
        approval: Approval,
    ) -> Result<(), ClientError> {
        Client::set_approval(self, station, approval)
            .await
            .map(drop)
    }

    async fn station_key(&self, station: &StationId) -> Result<StationKey, ClientError> {
        Client::station_key(self, station).await
    }

    fn follow(
        &self,
        station: StationId,
        wake: Arc<Notify>,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        super::feed::follow(self.clone(), station, wake, stop)
    }
}
