//! `webhook_chaos`: the providers' signed webhooks arrive twice, out of order, before the
//! capture's own answer is committed, and while the reconciler looks at the same capture; forged
//! ones are mixed in. At the end every capture's status must be what the provider's book says,
//! and no forged event may have been taken.
//!
//! - The sandbox delivers each event twice, each copy after a random pause of up to 1.5 s
//!   (`POST /sandbox/webhooks`), so copies of one capture's events cross each other.
//! - Its API answers are held back 300 ms: the event of a capture is sent when the provider takes
//!   it, and so reaches the service before the capture's answer does.
//! - The reconciler runs every second on captures a second old: Checkout.com's captures are
//!   `PENDING` until their event or a look settles them, and PayPal's held ones until a person
//!   completes or denies them (the sandbox's admin endpoints, at random moments).
//! - PayPal captures are refunded in part, or in full, at random moments after they complete.
//! - Forgeries: a genuine PayPal event altered after it was signed (it claims the capture was
//!   denied), an event under made-up transmission headers, and a Checkout.com event with a
//!   signature that is not the webhook key's. Each must be refused (401), and change nothing.

use std::collections::HashMap;
use std::time::Duration;

use capture_service::proto;
use capture_service::sandbox::Charge;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::client::{capture_request, Client};
use crate::fresh_database::Db;
use crate::processes::{PeakRss, Service};
use crate::report::Report;
use crate::rng::Rng;
use crate::truth::{self, Asked};
use crate::world::World;

/// How long the sandbox holds each API answer back.
const LATENCY: Duration = Duration::from_millis(300);
/// Copies of each event, and the longest pause before each.
const COPIES: u32 = 2;
const MAX_DELAY_MS: u64 = 1_500;
/// Iterations running at once.
const AT_ONCE: usize = 6;
/// Capture calls a caller makes at most.
const CALLS: usize = 4;

/// What one iteration did, for the verdict.
#[derive(Default)]
struct Done {
    asked: Vec<Asked>,
    forged_sent: u64,
    /// Forgeries the service answered with a 2xx: taken, or at least not refused.
    forged_taken: Vec<String>,
    admin_actions: u64,
}

pub async fn run(
    db: Db,
    iterations: u32,
    rng: &mut Rng,
    report: &mut Report,
) -> anyhow::Result<()> {
    let world = World::new(db, "webhook_chaos", LATENCY).await?;
    let service = world.start_service().await?;
    let rss = PeakRss::watch(service.process.pid());
    let http = reqwest::Client::new();
    http.post(format!("{}/sandbox/webhooks", world.sandbox.origin))
        .json(&json!({
            "url": format!("http://{}", service.http),
            "copies": COPIES,
            "max_delay_ms": MAX_DELAY_MS,
        }))
        .send()
        .await?
        .error_for_status()?;
    let client = Client::of(service.grpc)?;

    // Everything random is drawn here, from the seed, before anything runs.
    let plans: Vec<Plan> = (0..iterations)
        .map(|i| Plan::draw(i, report.seed, rng))
        .collect();
    let (world_ref, service_ref) = (&world, &service);
    let done: Vec<anyhow::Result<Done>> = futures_util::stream::iter(plans)
        .map(|plan| {
            let (client, http) = (client.clone(), http.clone());
            async move { plan.run(world_ref, service_ref, &client, &http).await }
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let mut all = Done::default();
    for one in done {
        let one = one?;
        all.asked.extend(one.asked);
        all.forged_sent += one.forged_sent;
        all.forged_taken.extend(one.forged_taken);
        all.admin_actions += one.admin_actions;
    }
    report.attempted = all.asked.len() as u64;

    // The last copies and the sandbox's own re-deliveries (up to 1.2 s more) land first.
    tokio::time::sleep(Duration::from_millis(MAX_DELAY_MS + 2_000)).await;
    let settle = world.settle(&service).await?;
    report.max_rss_mb = rss.mb();
    let records = client.list_all().await?;
    let book = truth::book(&world.sandbox.origin).await?;
    // What the service answered the deliveries, from its own metrics.
    let metrics = http
        .get(format!("http://{}/metrics", service.http))
        .send()
        .await?
        .text()
        .await?;
    for (result, count) in webhook_results(&metrics) {
        report.extra(&format!("webhooks_{result}"), count);
    }
    let mut service = service;
    world.kill(&mut service, report);
    truth::judge(report, &book, &records, &all.asked);
    judge_statuses(report, &book, &records);
    report.wrong_answers += all.forged_taken.len() as u64;
    for taken in &all.forged_taken {
        report.finding(format!("a forged webhook was not refused: {taken}"));
    }
    truth::judge_rows(report, truth::half_written(&world.db.url).await?);
    world.scan_database_and_traces(report).await?;
    report.extra("forged_sent", all.forged_sent);
    report.extra("admin_actions", all.admin_actions);
    report.extra("copies_per_event", u64::from(COPIES));
    report.extra("settle_seconds", settle.as_secs_f64());
    Ok(())
}

/// `capture_webhooks_total` summed by `result` (`applied`, `kept`, `duplicate`,
/// `bad_signature`, ...).
fn webhook_results(metrics: &str) -> std::collections::BTreeMap<String, u64> {
    let mut results = std::collections::BTreeMap::new();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("capture_webhooks_total{"))
    {
        let Some((labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let result = labels
            .split("result=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next());
        if let (Some(result), Ok(value)) = (result, value.parse::<f64>()) {
            *results.entry(result.to_owned()).or_insert(0) += value as u64;
        }
    }
    results
}

/// Every charge's capture must stand in the service as it stands at the provider.
fn judge_statuses(report: &mut Report, book: &[Charge], records: &[proto::Capture]) {
    let by_provider_id: HashMap<&str, &proto::Capture> = records
        .iter()
        .filter_map(|r| Some((r.provider_capture_id.as_str(), r)).filter(|(id, _)| !id.is_empty()))
        .collect();
    let mut agreed = 0u64;
    for charge in book {
        let Some(record) = by_provider_id.get(charge.capture_id.as_str()) else {
            continue; // judged by truth::judge (lost or stuck)
        };
        let recorded = record
            .status()
            .as_str_name()
            .trim_start_matches("CAPTURE_STATUS_");
        if recorded == charge.status {
            agreed += 1;
        } else {
            report.wrong_answers += 1;
            report.finding(format!(
                "{} capture {} is {} at the provider, {recorded} in the service",
                charge.provider, record.id, charge.status
            ));
        }
    }
    report.extra("statuses_agreeing_with_book", agreed);
}

/// One iteration's choices: a PayPal capture and what happens to it later, and a Checkout.com
/// capture approved or declined.
struct Plan {
    iteration: u32,
    seed: u64,
    paypal_pending: bool,
    /// For a held capture: completed (else denied). For a completed one: refunded in part, in
    /// full, in part then the rest, or left alone.
    complete_held: bool,
    refunds: &'static [Option<&'static str>],
    checkout_declined: bool,
    /// Pause before the admin action, ms.
    pause_ms: u64,
}

impl Plan {
    fn draw(iteration: u32, seed: u64, rng: &mut Rng) -> Plan {
        const REFUNDS: [&[Option<&str>]; 4] =
            [&[], &[Some("4.00")], &[None], &[Some("4.00"), None]];
        Plan {
            iteration,
            seed,
            paypal_pending: rng.coin(),
            complete_held: rng.coin(),
            refunds: REFUNDS[rng.below(REFUNDS.len() as u64) as usize],
            checkout_declined: rng.coin(),
            pause_ms: rng.below(800),
        }
    }

    async fn run(
        self,
        world: &World,
        service: &Service,
        client: &Client,
        http: &reqwest::Client,
    ) -> anyhow::Result<Done> {
        let mut done = Done::default();
        let hook = |provider: &str| format!("http://{}/webhooks/{provider}", service.http);
        let admin = |path: &str| format!("{}/sandbox/paypal/captures/{path}", world.sandbox.origin);

        // PayPal: captured, then completed, denied or refunded by a person at the provider.
        let scenario = if self.paypal_pending {
            "PENDING"
        } else {
            "APPROVE"
        };
        let paypal = world
            .authorize_as(proto::Provider::Paypal, "10.00", scenario)
            .await?;
        done.asked.push(
            self.capture(client, proto::Provider::Paypal, paypal.clone())
                .await,
        );
        let charge = truth::book(&world.sandbox.origin)
            .await?
            .into_iter()
            .find(|c| c.authorization_id == paypal);
        if let Some(charge) = charge {
            tokio::time::sleep(Duration::from_millis(self.pause_ms)).await;
            let mut genuine: Option<Value> = None;
            let actions: Vec<(&str, Option<&str>)> = if self.paypal_pending {
                vec![(
                    if self.complete_held {
                        "complete"
                    } else {
                        "deny"
                    },
                    None,
                )]
            } else {
                self.refunds
                    .iter()
                    .map(|amount| ("refund", *amount))
                    .collect()
            };
            for (action, amount) in actions {
                let mut request = http.post(admin(&format!("{}/{action}", charge.capture_id)));
                if let Some(value) = amount {
                    request =
                        request.json(&json!({"amount": {"currency_code": "USD", "value": value}}));
                }
                let answer: Value = request.send().await?.error_for_status()?.json().await?;
                done.admin_actions += 1;
                genuine = Some(answer);
            }
            // A genuine event, altered after signing to say the opposite: a denied capture
            // completed, anything else denied.
            if let Some(genuine) = genuine {
                let mut event = genuine["event"].clone();
                let (event_type, status) = if event["event_type"] == "PAYMENT.CAPTURE.DENIED" {
                    ("PAYMENT.CAPTURE.COMPLETED", "COMPLETED")
                } else {
                    ("PAYMENT.CAPTURE.DENIED", "DECLINED")
                };
                event["event_type"] = json!(event_type);
                event["resource"]["status"] = json!(status);
                let headers = genuine["headers"].as_object().cloned().unwrap_or_default();
                self.forge(http, &hook("paypal"), &event, &headers, &mut done)
                    .await;
            }
            // Made-up transmission headers on a plausible event.
            let event = json!({
                "id": format!("WH-FORGED-{}-{}", self.seed, self.iteration),
                "event_type": "PAYMENT.CAPTURE.REFUNDED",
                "resource_type": "refund",
                "event_version": "1.0",
                "resource_version": "2.0",
                "resource": {
                    "id": format!("FORGEDREFUND{}", self.iteration),
                    "status": "COMPLETED",
                    "amount": {"currency_code": "USD", "value": "10.00"},
                    "links": [{"rel": "up", "method": "GET",
                        "href": format!("https://api-m.paypal.com/v2/payments/captures/{}", charge.capture_id)}],
                },
            });
            let headers = serde_json::Map::from_iter(
                [
                    (
                        "PAYPAL-TRANSMISSION-ID",
                        json!("11111111-2222-4333-a444-555555555555"),
                    ),
                    ("PAYPAL-TRANSMISSION-TIME", json!("2026-01-01T00:00:00Z")),
                    ("PAYPAL-TRANSMISSION-SIG", json!("Zm9yZ2VkIHNpZ25hdHVyZQ==")),
                    (
                        "PAYPAL-CERT-URL",
                        json!("https://api-m.paypal.com/v1/notifications/certs/CERT-forged"),
                    ),
                    ("PAYPAL-AUTH-ALGO", json!("SHA256withRSA")),
                ]
                .map(|(k, v)| (k.to_owned(), v)),
            );
            self.forge(http, &hook("paypal"), &event, &headers, &mut done)
                .await;
        }

        // Checkout.com: 202, then its event or the reconciler's look settles it.
        let scenario = if self.checkout_declined {
            "DECLINED"
        } else {
            "APPROVE"
        };
        let checkout = world
            .authorize_as(proto::Provider::Checkout, "10.00", scenario)
            .await?;
        let asked = self
            .capture(client, proto::Provider::Checkout, checkout.clone())
            .await;
        let action_id = asked.answers.iter().find_map(|a| match a {
            crate::client::Answer::Recorded(capture) => Some(capture.provider_capture_id.clone()),
            _ => None,
        });
        done.asked.push(asked);
        // The opposite of what happened, under a signature that is not the webhook key's.
        let event_type = if self.checkout_declined {
            "payment_captured"
        } else {
            "payment_capture_declined"
        };
        let event = json!({
            "id": format!("evt_forged{}x{}", self.seed, self.iteration),
            "type": event_type,
            "created_on": "2026-01-01T00:00:00Z",
            "data": {
                "id": checkout,
                "action_id": action_id.unwrap_or_default(),
                "amount": 1000,
                "currency": "USD",
                "response_code": if self.checkout_declined { "10000" } else { "20051" },
            },
        });
        let headers = serde_json::Map::from_iter([(
            "Cko-Signature".to_owned(),
            json!(format!("{:064x}", u128::from(self.iteration) * 7919)),
        )]);
        self.forge(http, &hook("checkout"), &event, &headers, &mut done)
            .await;
        Ok(done)
    }

    async fn capture(
        &self,
        client: &Client,
        provider: proto::Provider,
        authorization: String,
    ) -> Asked {
        let name = truth::provider_name(provider);
        let request_id = format!("chaos-{}-{}-{name}", self.seed, self.iteration);
        let request = capture_request(provider, &authorization, "10.00", &request_id);
        Asked {
            provider,
            request_id,
            authorization_id: authorization,
            answers: client.capture_as_told(request, CALLS).await,
            retry: true,
        }
    }

    /// Posts a forged delivery; notes it if the service did not refuse it.
    async fn forge(
        &self,
        http: &reqwest::Client,
        url: &str,
        event: &Value,
        headers: &serde_json::Map<String, Value>,
        done: &mut Done,
    ) {
        let mut request = http
            .post(url)
            .header("Content-Type", "application/json")
            .body(event.to_string());
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str().unwrap_or_default());
        }
        done.forged_sent += 1;
        match request.send().await {
            Ok(answer) if answer.status().is_success() => {
                let status = answer.status();
                let body = answer.text().await.unwrap_or_default();
                done.forged_taken.push(format!("{url}: {status} {body}"));
            }
            // Refused, or no answer: either way not taken.
            _ => {}
        }
    }
}
