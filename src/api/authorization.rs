//! The authorization as a whole at the edge: `ReleaseAuthorization` and `GetAuthorization`
//! requests into domain values, and releases and authorization states into proto messages.

use super::convert::{
    money, money_to_proto, optional, provider_choices, provider_error, provider_from_proto,
    provider_to_proto, status_details, status_to_proto, timestamp,
};
use crate::domain::authorization::{AuthorizationState, AuthorizationStatus};
use crate::domain::capture::{AccountName, AuthorizationId, RequestId};
use crate::domain::{
    CaptureCommand, CaptureRecord, CaptureStatus, FieldViolation, Provider, ReleasedBy, Violations,
};
use crate::proto;

impl TryFrom<proto::ReleaseAuthorizationRequest> for CaptureCommand {
    type Error = Vec<FieldViolation>;

    fn try_from(request: proto::ReleaseAuthorizationRequest) -> Result<Self, Self::Error> {
        let mut v = Violations::default();
        let key = authorization_key(
            &mut v,
            request.provider,
            &request.provider_account,
            &request.authorization_id,
        );
        let authorized_amount = request
            .authorized_amount
            .as_ref()
            .and_then(|m| money(&mut v, "authorized_amount", m));
        let request_id = v.check("request_id", RequestId::parse(&request.request_id));
        match (key, request_id, v.is_empty()) {
            (Some(key), Some(request_id), true) => Ok(CaptureCommand::release(
                key.provider,
                key.account,
                key.authorization_id,
                authorized_amount,
                request_id,
            )),
            _ => Err(v.into_vec()),
        }
    }
}

/// Which authorization a request names.
pub struct AuthorizationKey {
    pub provider: Provider,
    pub account: Option<AccountName>,
    pub authorization_id: AuthorizationId,
}

impl TryFrom<&proto::GetAuthorizationRequest> for AuthorizationKey {
    type Error = Vec<FieldViolation>;

    fn try_from(request: &proto::GetAuthorizationRequest) -> Result<Self, Self::Error> {
        let mut v = Violations::default();
        let key = authorization_key(
            &mut v,
            request.provider,
            &request.provider_account,
            &request.authorization_id,
        );
        match (key, v.is_empty()) {
            (Some(key), true) => Ok(key),
            _ => Err(v.into_vec()),
        }
    }
}

fn authorization_key(
    v: &mut Violations,
    provider: i32,
    account: &str,
    authorization_id: &str,
) -> Option<AuthorizationKey> {
    let provider = provider_from_proto(provider);
    if provider.is_none() {
        v.add("provider", provider_choices());
    }
    let account = optional(v, "provider_account", account, AccountName::parse);
    let authorization_id = v.check("authorization_id", AuthorizationId::parse(authorization_id));
    Some(AuthorizationKey {
        provider: provider?,
        account,
        authorization_id: authorization_id?,
    })
}

fn released_by_to_proto(by: Option<ReleasedBy>) -> proto::ReleasedBy {
    match by {
        None => proto::ReleasedBy::Unspecified,
        Some(ReleasedBy::VoidCall) => proto::ReleasedBy::VoidCall,
        Some(ReleasedBy::ProviderAutomatic) => proto::ReleasedBy::ProviderAutomatic,
        Some(ReleasedBy::FinalCapture) => proto::ReleasedBy::FinalCapture,
    }
}

/// A release record as the API shows it. A release made with no provider call has no provider
/// status: the provider had released the rest by itself.
pub fn release_to_proto(record: &CaptureRecord) -> proto::Release {
    let p = record.command.parts();
    let released_by = match (record.status, &record.provider_status) {
        (CaptureStatus::Completed, None) => Some(ReleasedBy::ProviderAutomatic),
        (CaptureStatus::Completed, Some(_)) => Some(ReleasedBy::VoidCall),
        _ => None,
    };
    proto::Release {
        id: record.id.clone(),
        provider: provider_to_proto(p.provider) as i32,
        provider_account: record.account.clone(),
        authorization_id: p.authorization_id.as_str().to_owned(),
        request_id: p.request_id.as_str().to_owned(),
        status: status_to_proto(record.status) as i32,
        status_details: Some(status_details(record)),
        released_by: released_by_to_proto(released_by) as i32,
        provider_release_id: record.provider_capture_id.clone().unwrap_or_default(),
        provider_status: record.provider_status.clone().unwrap_or_default(),
        error: provider_error(record),
        create_time: Some(timestamp(record.create_time)),
        update_time: Some(timestamp(record.update_time)),
    }
}

impl From<&AuthorizationState> for proto::Authorization {
    fn from(state: &AuthorizationState) -> Self {
        let first = state.captures.first().or(state.releases.first());
        let (provider, account, authorization_id) = first
            .map(|r| {
                let p = r.command.parts();
                (
                    provider_to_proto(p.provider) as i32,
                    r.account.clone(),
                    p.authorization_id.as_str().to_owned(),
                )
            })
            .unwrap_or_default();
        let money = |m: &Option<crate::domain::Money>| m.as_ref().map(money_to_proto);
        proto::Authorization {
            provider,
            provider_account: account,
            authorization_id,
            status: match state.status {
                AuthorizationStatus::Open => proto::AuthorizationStatus::Open,
                AuthorizationStatus::Closed => proto::AuthorizationStatus::Closed,
                AuthorizationStatus::Releasing => proto::AuthorizationStatus::Releasing,
                AuthorizationStatus::Released => proto::AuthorizationStatus::Released,
            } as i32,
            currency_code: state
                .currency
                .map(|c| c.code().to_owned())
                .unwrap_or_default(),
            authorized_amount: money(&state.authorized),
            captured_amount: money(&state.captured),
            pending_amount: money(&state.pending),
            released_amount: money(&state.released),
            remaining_amount: money(&state.remaining),
            released_by: released_by_to_proto(state.released_by) as i32,
            closed_by: state.closed_by.clone().unwrap_or_default(),
            refunded_amount: money(&state.refunded),
            captures: state.captures.iter().map(proto::Capture::from).collect(),
            releases: state.releases.iter().map(release_to_proto).collect(),
        }
    }
}
