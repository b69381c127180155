//! The caller's side: Capture and ReleaseAuthorization calls as a client makes them, what each
//! answer was, and the service's records read back through ListCaptures and GetAuthorization.

use std::net::SocketAddr;
use std::time::Duration;

use capture_service::proto::capture_service_client::CaptureServiceClient;
use capture_service::proto::{self, CaptureRequest, CaptureStatus, ListCapturesRequest, Money};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::Code;
use tonic_types::StatusExt;

use crate::processes::API_KEY;

/// What one Capture call came back with.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The service answered with its capture (any status).
    Recorded(Box<proto::Capture>),
    /// The service answered with an error, and when to ask again (its `RetryInfo`).
    Refused {
        code: Code,
        message: String,
        retry_after: Option<Duration>,
    },
    /// No answer: the connection ended (the process was killed) or never opened.
    Silence(String),
}

impl Answer {
    /// A few words for a finding: the status, or the code and its wait.
    pub fn summary(&self) -> String {
        match self {
            Answer::Recorded(capture) => format!("{:?}", capture.status()),
            Answer::Refused {
                code, retry_after, ..
            } => format!("{code:?} (retry after {retry_after:?})"),
            Answer::Silence(why) => format!("no answer ({why})"),
        }
    }

    /// When the service said to ask again, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Answer::Refused { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A definite answer: the capture settled one way or the other, or was refused for good.
    pub fn is_definite(&self) -> bool {
        match self {
            Answer::Recorded(capture) => !matches!(
                capture.status(),
                CaptureStatus::Processing | CaptureStatus::Unspecified
            ),
            Answer::Refused { code, .. } => *code != Code::Unavailable,
            Answer::Silence(_) => false,
        }
    }
}

/// The answer of a call that was in flight when its service was killed: what came back is the
/// service's answer only if it had come before the kill (`answered_before`).
pub async fn cut_by_kill(call: tokio::task::JoinHandle<Answer>, answered_before: bool) -> Answer {
    match call.await {
        Ok(Answer::Refused { code, message, .. }) if !answered_before => {
            Answer::Silence(format!("{code:?}: {message}"))
        }
        Ok(answer) => answer,
        Err(e) => Answer::Silence(e.to_string()),
    }
}

/// An error's answer: silence for a transport failure (it carries its cause; an answer of the
/// service does not), else the service's refusal and when to ask again.
fn refusal(status: tonic::Status) -> Answer {
    if std::error::Error::source(&status).is_some() {
        return Answer::Silence(status.to_string());
    }
    Answer::Refused {
        code: status.code(),
        message: status.message().to_owned(),
        retry_after: status
            .get_details_retry_info()
            .and_then(|info| info.retry_delay),
    }
}

#[derive(Clone)]
pub struct Client {
    inner: CaptureServiceClient<Channel>,
}

impl Client {
    /// A client of the service at `addr`; connects on its first call, so a dead service
    /// answers each call with [`Answer::Silence`].
    pub fn of(addr: SocketAddr) -> anyhow::Result<Client> {
        let channel = Channel::from_shared(format!("http://{addr}"))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .connect_lazy();
        Ok(Client {
            inner: CaptureServiceClient::new(channel),
        })
    }

    fn authorized<T>(message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(value) = MetadataValue::try_from(format!("Bearer {API_KEY}")) {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    pub async fn capture(&self, request: CaptureRequest) -> Answer {
        match self.inner.clone().capture(Self::authorized(request)).await {
            Ok(answer) => match answer.into_inner().capture {
                Some(capture) => Answer::Recorded(Box::new(capture)),
                None => Answer::Refused {
                    code: Code::Internal,
                    message: "an answer without its capture".to_owned(),
                    retry_after: None,
                },
            },
            Err(status) => refusal(status),
        }
    }

    /// A ReleaseAuthorization call: the release the service answered with, or what else came.
    pub async fn release(
        &self,
        request: proto::ReleaseAuthorizationRequest,
    ) -> Result<proto::Release, Answer> {
        match self
            .inner
            .clone()
            .release_authorization(Self::authorized(request))
            .await
        {
            Ok(answer) => answer.into_inner().release.ok_or(Answer::Refused {
                code: Code::Internal,
                message: "an answer without its release".to_owned(),
                retry_after: None,
            }),
            Err(status) => Err(refusal(status)),
        }
    }

    /// The authorization as the service sees it (GetAuthorization at the default account).
    pub async fn authorization(
        &self,
        provider: proto::Provider,
        authorization_id: &str,
    ) -> anyhow::Result<proto::Authorization> {
        let request = proto::GetAuthorizationRequest {
            provider: provider as i32,
            authorization_id: authorization_id.to_owned(),
            ..Default::default()
        };
        self.inner
            .clone()
            .get_authorization(Self::authorized(request))
            .await?
            .into_inner()
            .authorization
            .ok_or_else(|| anyhow::anyhow!("an answer without its authorization"))
    }

    /// `request`, then the same again while the answer is not definite, as README tells
    /// callers: not sooner than the `RetryInfo` says (2 s after a capture still `PROCESSING`),
    /// at most `calls` calls in all; every answer.
    pub async fn capture_as_told(&self, request: CaptureRequest, calls: usize) -> Vec<Answer> {
        let mut answers = vec![self.capture(request.clone()).await];
        while answers.len() < calls {
            let Some(last) = answers.last().filter(|a| !a.is_definite()) else {
                break;
            };
            let wait = last.retry_after().unwrap_or(Duration::from_secs(2));
            tokio::time::sleep(wait.max(Duration::from_millis(500))).await;
            answers.push(self.capture(request.clone()).await);
        }
        answers
    }

    /// Every capture of the tenant, all pages.
    pub async fn list_all(&self) -> anyhow::Result<Vec<proto::Capture>> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .inner
                .clone()
                .list_captures(Self::authorized(ListCapturesRequest {
                    page_size: 1000,
                    page_token: page_token.clone(),
                    ..Default::default()
                }))
                .await?
                .into_inner();
            all.extend(page.captures);
            if page.next_page_token.is_empty() {
                return Ok(all);
            }
            page_token = page.next_page_token;
        }
    }
}

/// A Capture request of `value` USD.
pub fn capture_request(
    provider: proto::Provider,
    authorization_id: &str,
    value: &str,
    request_id: &str,
) -> CaptureRequest {
    CaptureRequest {
        provider: provider as i32,
        authorization_id: authorization_id.to_owned(),
        amount: Some(Money {
            currency_code: "USD".to_owned(),
            value: value.to_owned(),
        }),
        request_id: request_id.to_owned(),
        ..Default::default()
    }
}
