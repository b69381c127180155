//! `capture.v1.CaptureService`: each handler converts its request once, calls the
//! orchestrator or the store, and converts the answer back.

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::auth::tenant;
use super::authorization::{release_to_proto, AuthorizationKey};
use super::convert::{micros, optional, provider_filter, status_filter};
use super::error::invalid_argument;
use super::page_token;
use crate::capture::{is_capture_id, Admission, Captures};
use crate::domain::authorization::{summarize, AuthorizationState};
use crate::domain::capture::{AccountName, AuthorizationId, InvoiceId};
use crate::domain::{CaptureCommand, FieldViolation, Violations};
use crate::proto::{
    self, capture_service_server::CaptureService, CaptureRequest, CaptureResponse,
    GetAuthorizationRequest, GetAuthorizationResponse, GetCaptureRequest, GetCaptureResponse,
    ListCapturesRequest, ListCapturesResponse, ReleaseAuthorizationRequest,
    ReleaseAuthorizationResponse, WatchCapturesRequest,
};
use crate::store::ListQuery;

const DEFAULT_PAGE_SIZE: i32 = 50;
const MAX_PAGE_SIZE: i32 = 1000;

/// How many watches may be open, and what each holds for a slow reader.
#[derive(Debug, Clone, Copy)]
pub struct WatchLimits {
    pub max_watchers: usize,
    pub max_watchers_per_tenant: usize,
    pub buffer: usize,
}

/// The gRPC handlers.
pub struct CaptureApi {
    captures: Captures,
    /// Reads have their own share, so GetCapture still answers under a capture storm.
    reads: Admission,
    /// Changes a watcher's stream holds for it.
    watch_buffer: usize,
    /// Open watches, at most so many at once, and so many per tenant.
    watchers: Admission,
    tenant_watchers: super::watch::TenantWatches,
    /// The process's reader of new changes, shared by every watcher.
    hub: super::watch::Hub,
    /// Cancelled at shutdown: open watches end, naming their cursor.
    stop: CancellationToken,
}

impl CaptureApi {
    pub fn new(
        captures: Captures,
        max_reads_in_flight: usize,
        watch: WatchLimits,
        stop: CancellationToken,
    ) -> Self {
        CaptureApi {
            captures,
            reads: Admission::new("reads", max_reads_in_flight),
            watch_buffer: watch.buffer,
            watchers: Admission::new("watches", watch.max_watchers),
            tenant_watchers: super::watch::TenantWatches::new(watch.max_watchers_per_tenant),
            hub: super::watch::Hub::default(),
            stop,
        }
    }
}

#[tonic::async_trait]
impl CaptureService for CaptureApi {
    // No span of its own: the capture's span (`run_capture`) names the tenant with the rest.
    async fn capture(
        &self,
        request: Request<CaptureRequest>,
    ) -> Result<Response<CaptureResponse>, Status> {
        let tenant = tenant(&request)?;
        let command =
            CaptureCommand::try_from(request.into_inner()).map_err(|v| invalid_argument(&v))?;
        let result = self.captures.capture(&tenant.0, command).await?;
        Ok(Response::new(CaptureResponse {
            capture: Some(proto::Capture::from(result.record)),
            replayed: result.replayed,
        }))
    }

    #[tracing::instrument(skip_all, fields(tenant))]
    async fn release_authorization(
        &self,
        request: Request<ReleaseAuthorizationRequest>,
    ) -> Result<Response<ReleaseAuthorizationResponse>, Status> {
        let tenant = tenant(&request)?;
        tracing::Span::current().record("tenant", tenant.0.as_str());
        let command =
            CaptureCommand::try_from(request.into_inner()).map_err(|v| invalid_argument(&v))?;
        let result = self.captures.release(&tenant.0, command).await?;
        let parts = result.record.command.parts();
        let key = AuthorizationKey {
            provider: parts.provider,
            account: AccountName::parse(&result.record.account).ok(),
            authorization_id: parts.authorization_id.clone(),
        };
        // The release is recorded: a failed read of the whole leaves the caller its answer.
        let authorization = match self.authorization(&tenant.0, &key).await {
            Ok(state) => state.map(|s| proto::Authorization::from(&s)),
            Err(status) => {
                tracing::warn!(error = %status.message(), "the authorization could not be read after its release");
                None
            }
        };
        Ok(Response::new(ReleaseAuthorizationResponse {
            release: Some(release_to_proto(&result.record)),
            replayed: result.replayed,
            authorization,
        }))
    }

    #[tracing::instrument(skip_all, fields(tenant, authorization_id = %request.get_ref().authorization_id))]
    async fn get_authorization(
        &self,
        request: Request<GetAuthorizationRequest>,
    ) -> Result<Response<GetAuthorizationResponse>, Status> {
        let _admitted = self.reads.admit()?;
        let tenant = tenant(&request)?;
        tracing::Span::current().record("tenant", tenant.0.as_str());
        let key =
            AuthorizationKey::try_from(request.get_ref()).map_err(|v| invalid_argument(&v))?;
        let state = self.authorization(&tenant.0, &key).await?.ok_or_else(|| {
            Status::not_found(format!(
                "no capture or release of authorization {} by this caller",
                key.authorization_id
            ))
        })?;
        Ok(Response::new(GetAuthorizationResponse {
            authorization: Some(proto::Authorization::from(&state)),
        }))
    }

    #[tracing::instrument(skip_all, fields(tenant, id = %request.get_ref().id))]
    async fn get_capture(
        &self,
        request: Request<GetCaptureRequest>,
    ) -> Result<Response<GetCaptureResponse>, Status> {
        let _admitted = self.reads.admit()?;
        let tenant = tenant(&request)?;
        tracing::Span::current().record("tenant", tenant.0.as_str());
        let id = &request.get_ref().id;
        if !is_capture_id(id) {
            return Err(invalid_argument(&[FieldViolation::new(
                "id",
                "must be a capture id: cap_ and 26 characters of Crockford base32, such as cap_01JDQ3W5X8K2M4N6P8R0S2T4V6",
            )]));
        }
        let record = self
            .captures
            .store()
            .get(&tenant.0, id)
            .await?
            .ok_or_else(|| Status::not_found(format!("capture {id} not found")))?;
        tracing::debug!(status = %record.status, "capture read");
        Ok(Response::new(GetCaptureResponse {
            capture: Some(proto::Capture::from(record)),
        }))
    }

    type WatchCapturesStream = super::watch::ChangeStream;

    #[tracing::instrument(skip_all, fields(tenant, since = request.get_ref().since))]
    async fn watch_captures(
        &self,
        request: Request<WatchCapturesRequest>,
    ) -> Result<Response<Self::WatchCapturesStream>, Status> {
        let tenant = tenant(&request)?;
        tracing::Span::current().record("tenant", tenant.0.as_str());
        let (since, filter) = super::watch::parse_request(request.get_ref())?;
        let tenant_slot = self.tenant_watchers.admit(&tenant.0)?;
        let admitted = self.watchers.admit()?;
        let watch = super::watch::Watch {
            tenant: tenant.0,
            since,
            filter,
            admitted,
            tenant_slot,
        };
        let stream = super::watch::open(
            &self.hub,
            self.captures.store().clone(),
            watch,
            self.watch_buffer,
            self.stop.clone(),
        )
        .await?;
        tracing::info!("watch opened");
        Ok(Response::new(stream))
    }

    #[tracing::instrument(skip_all, fields(tenant))]
    async fn list_captures(
        &self,
        request: Request<ListCapturesRequest>,
    ) -> Result<Response<ListCapturesResponse>, Status> {
        let _admitted = self.reads.admit()?;
        let tenant = tenant(&request)?;
        tracing::Span::current().record("tenant", tenant.0.as_str());
        let (query, filters) = list_query(request.get_ref())?;
        let page = self.captures.store().list(&tenant.0, &query).await?;
        tracing::debug!(rows = page.records.len(), "captures listed");
        Ok(Response::new(ListCapturesResponse {
            captures: page.records.into_iter().map(proto::Capture::from).collect(),
            next_page_token: page
                .next
                .map(|position| page_token::encode(&position, &filters))
                .unwrap_or_default(),
        }))
    }
}

impl CaptureApi {
    /// `tenant`'s view of the authorization `key` names, through the account it resolves to.
    async fn authorization(
        &self,
        tenant: &str,
        key: &AuthorizationKey,
    ) -> Result<Option<AuthorizationState>, Status> {
        let (account, connector) = self
            .captures
            .connectors()
            .resolve(key.provider, key.account.as_ref())
            .map_err(crate::capture::CaptureError::from)?;
        let found = self
            .captures
            .store()
            .authorization(
                tenant,
                key.provider,
                &account,
                key.authorization_id.as_str(),
            )
            .await?;
        Ok(found.map(|(ledger, records)| summarize(ledger, records, &connector.release_rules())))
    }
}

/// The store query of a list request, and the canonical filter string its tokens are bound to.
fn list_query(request: &ListCapturesRequest) -> Result<(ListQuery, String), Status> {
    let mut violations = Violations::default();
    let page_size = match request.page_size {
        n if n < 0 => {
            violations.add("page_size", "must not be negative");
            DEFAULT_PAGE_SIZE
        }
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    };
    let provider = provider_filter(&mut violations, request.provider);
    let status = status_filter(&mut violations, request.status);
    // The filters follow the rules of the fields they match, so a value no capture can hold
    // (a NUL byte, a card number) is refused here instead of reaching the database.
    let authorization_id = optional(
        &mut violations,
        "authorization_id",
        &request.authorization_id,
        AuthorizationId::parse,
    );
    let invoice_id = optional(
        &mut violations,
        "invoice_id",
        &request.invoice_id,
        InvoiceId::parse,
    );
    let start = request.create_time_start.as_ref().map(micros);
    let end = request.create_time_end.as_ref().map(micros);
    if let (Some(start), Some(end)) = (start, end) {
        if start >= end {
            violations.add("create_time_end", "must be after create_time_start");
        }
    }
    let filters = format!(
        "{:?}|{:?}|{}|{}|{:?}|{:?}",
        provider, status, request.authorization_id, request.invoice_id, start, end
    );
    let after = if request.page_token.is_empty() {
        None
    } else {
        match page_token::decode(&request.page_token, &filters) {
            Ok(position) => Some(position),
            Err(problem) => {
                violations.add("page_token", problem);
                None
            }
        }
    };
    if !violations.is_empty() {
        return Err(invalid_argument(&violations.into_vec()));
    }
    let query = ListQuery {
        page_size: page_size as u64,
        after,
        provider,
        status,
        authorization_id: authorization_id.map(|id| id.as_str().to_owned()),
        invoice_id: invoice_id.map(|id| id.as_str().to_owned()),
        create_time_start: start,
        create_time_end: end,
    };
    Ok((query, filters))
}
