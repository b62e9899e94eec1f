//! outbox-writer: turns a batch of lender messages into stored applications and outbox
//! records.
//!
//! Per message: transform to the approval schema ([`steadfast_domain::application`]); an
//! invalid one is parked with every reason; a valid one is written with its outbox record in
//! one transaction that only succeeds for a new application id (a resubmission writes
//! nothing). A message whose store or parking failed goes back to the queue (batch item
//! failure); the rest of the batch is not affected. The batch's parked messages and
//! resubmissions are counted in the metrics (`Parked`, `DuplicatesDropped`).
//!
//! The message's correlation id goes with the application: into the outbox record (so the
//! relay logs it) and the published event's detail (`correlationId`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use steadfast_aws::metrics::{Document, Metric};
use steadfast_aws::{ConfigError, Env};
use steadfast_domain::outbox::{application_detail, NewRecord, APPLICATION_RECEIVED};
use steadfast_domain::ports::{ApplicationStore, EventBus, Parking, Stored};
use steadfast_runtime::batch::{correlation_id, message_id, Fate, Parker};
use tracing::{info, warn};

pub struct Config {
    /// Recorded on parked messages. `OUTBOX_SOURCE_NAME`, default `applications`.
    pub source: String,
    /// Shards of the due index. `OUTBOX_SHARDS`, default 8.
    pub shards: u32,
    /// Where the outbox's events go, the metrics' target: `EVENT_BUS_NAME`, default `default`.
    pub target: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            source: env
                .optional("OUTBOX_SOURCE_NAME")
                .unwrap_or_else(|| "applications".into()),
            shards: steadfast_aws::outbox::shards_from(env)?,
            target: env
                .optional("EVENT_BUS_NAME")
                .unwrap_or_else(|| "default".into()),
        })
    }
}

pub struct Ports<A, P, E> {
    pub store: A,
    pub parking: P,
    pub events: E,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub stored: u32,
    pub resubmissions: u32,
    pub parked: u32,
    pub handed_back: u32,
}

impl Tally {
    /// The batch's metrics for `target`, the event bus (see `steadfast_aws::metrics`).
    pub fn metrics(&self, target: &str) -> Document {
        Document::new("outbox", target)
            .count(Metric::Parked, self.parked)
            .count(Metric::DuplicatesDropped, self.resubmissions)
    }
}

impl<A: ApplicationStore, P: Parking, E: EventBus> Ports<A, P, E> {
    /// Handles one batch; its messages are independent, so they are handled concurrently.
    /// `now` reads the clock (each record is stamped when it is written).
    pub async fn handle(
        &self,
        cfg: &Config,
        event: SqsEvent,
        now: impl Fn() -> u64,
    ) -> (SqsBatchResponse, Tally) {
        let parker = Parker::of_source(&self.parking, &self.events, &cfg.source);
        let now = &now;
        let (response, counts) = parker
            .run(&event.records, |m| self.one(cfg, m, now()))
            .await;
        let tally = Tally {
            stored: counts.done("stored"),
            resubmissions: counts.done("resubmission"),
            parked: counts.parked,
            handed_back: counts.handed_back,
        };
        info!(pipeline = "outbox", ?tally, "batch done");
        tally.metrics(&cfg.target).emit();
        (response, tally)
    }

    async fn one(&self, cfg: &Config, m: &SqsMessage, now_ms: u64) -> Fate {
        let message_id = message_id(m);
        let correlation_id = correlation_id(m);
        let app = match steadfast_domain::transform(m.body.as_deref().unwrap_or_default()) {
            Ok(app) => app,
            // An invalid message has no trustworthy application id.
            Err(e) => {
                return Fate::Park {
                    reason: e.to_string(),
                    identity: None,
                }
            }
        };
        let id = app.application_id.clone();
        let detail = application_detail(&app, now_ms, correlation_id);
        let record = NewRecord::new(
            &id,
            APPLICATION_RECEIVED,
            detail.to_string(),
            now_ms,
            cfg.shards,
        )
        .correlated(correlation_id);
        let value = serde_json::to_value(&app).unwrap_or_default();
        match self.store.store(&id, &value, &message_id, &record).await {
            Ok(Stored::New) => {
                info!(pipeline = "outbox", message_id, correlation_id, application_id = %id, event_id = %record.event_id, outcome = "stored");
                Fate::Done("stored")
            }
            Ok(Stored::AlreadyExists) => {
                info!(pipeline = "outbox", message_id, correlation_id, application_id = %id, outcome = "resubmission", "application exists; nothing written");
                Fate::Done("resubmission")
            }
            Err(e) => {
                warn!(pipeline = "outbox", message_id, correlation_id, application_id = %id, error = %e, outcome = "handed_back");
                Fate::HandBack
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use steadfast_domain::fakes::{MemApplications, MemBus, MemParking};

    fn app(id: &str) -> String {
        json!({
            "applicationId": id,
            "submittedAt": "2026-11-28T10:15:00+01:00",
            "applicant": {"firstName": "anna", "lastName": "de vries", "dateOfBirth": "1985-03-14", "email": "a@b.nl"},
            "loan": {"amount": "200000", "currency": "EUR", "termMonths": 360, "purpose": "purchase"},
            "property": {"value": "250000", "postcode": "1234AB", "country": "NL"},
            "income": {"annual": "60000"}
        })
        .to_string()
    }

    fn event(bodies: &[String]) -> SqsEvent {
        let records = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("m{i}"));
                m.body = Some(b.clone());
                m
            })
            .collect();
        let mut e = SqsEvent::default();
        e.records = records;
        e
    }

    fn ports() -> Ports<MemApplications, MemParking, MemBus> {
        Ports {
            store: MemApplications::default(),
            parking: MemParking::default(),
            events: MemBus::default(),
        }
    }

    const CFG: Config = Config {
        source: String::new(),
        shards: 8,
        target: String::new(),
    };

    #[tokio::test]
    async fn valid_applications_are_stored_with_their_outbox_record() {
        let p = ports();
        let (r, t) = p
            .handle(&CFG, event(&[app("A-1"), app("A-2")]), || 1_000)
            .await;
        assert!(r.batch_item_failures.is_empty());
        assert_eq!(t.stored, 2);
        let stored = p.store.stored.lock().unwrap();
        let (value, record) = &stored["A-1"];
        assert_eq!(value["applicants"][0]["familyName"], "de Vries");
        assert_eq!(record.event_id, steadfast_domain::outbox::event_id("A-1"));
        let detail: serde_json::Value = serde_json::from_str(&record.detail).unwrap();
        assert_eq!(detail["eventId"], record.event_id.as_str());
        assert_eq!(detail["application"]["loan"]["amountMinor"], 20_000_000);
        // AND the message's correlation id (here its message id) goes with the record and
        // into the event's detail
        assert_eq!(record.correlation_id.as_deref(), Some("m0"));
        assert_eq!(detail["correlationId"], "m0");
    }

    #[tokio::test]
    async fn a_senders_correlation_id_goes_into_the_record_the_event_and_a_parked_copy() {
        let p = ports();
        let mut e = event(&[app("A-1"), "{oops".into()]);
        for (i, m) in e.records.iter_mut().enumerate() {
            let attribute = json!({"stringValue": format!("lender-{i}"), "dataType": "String"});
            m.message_attributes.insert(
                "correlation_id".into(),
                serde_json::from_value(attribute).unwrap(),
            );
        }
        p.handle(&CFG, e, || 1_000).await;
        let stored = p.store.stored.lock().unwrap();
        let record = &stored["A-1"].1;
        assert_eq!(record.correlation_id.as_deref(), Some("lender-0"));
        let detail: serde_json::Value = serde_json::from_str(&record.detail).unwrap();
        assert_eq!(detail["correlationId"], "lender-0");
        assert_eq!(p.parking.all()[0].correlation_id, "lender-1");
    }

    #[tokio::test]
    async fn a_resubmission_writes_nothing_new() {
        let p = ports();
        p.handle(&CFG, event(&[app("A-1")]), || 1_000).await;
        let (r, t) = p.handle(&CFG, event(&[app("A-1")]), || 2_000).await;
        assert!(r.batch_item_failures.is_empty());
        assert_eq!((t.stored, t.resubmissions), (0, 1));
        assert_eq!(t.metrics("bus").total(Metric::DuplicatesDropped), 1);
        assert_eq!(p.store.stored.lock().unwrap()["A-1"].1.created_at_ms, 1_000);
    }

    #[tokio::test]
    async fn invalid_messages_are_parked_with_reasons_and_the_rest_is_stored() {
        let p = ports();
        let mut bad = serde_json::from_str::<serde_json::Value>(&app("A-3")).unwrap();
        bad["loan"]["currency"] = json!("XBT");
        let (r, t) = p
            .handle(
                &CFG,
                event(&["{oops".into(), bad.to_string(), app("A-4")]),
                || 1_000,
            )
            .await;
        assert!(r.batch_item_failures.is_empty());
        assert_eq!((t.stored, t.parked), (1, 2));
        assert_eq!(
            t.metrics("steadfast-bus"),
            Document::new("outbox", "steadfast-bus").count(Metric::Parked, 2u32)
        );
        let parked = p.parking.0.lock().unwrap();
        assert!(parked[0].reason.starts_with("not JSON"));
        assert!(
            parked[1].reason.contains("/loan/currency"),
            "{}",
            parked[1].reason
        );
        assert_eq!(parked[1].body, bad.to_string());
    }

    #[tokio::test]
    async fn a_failed_store_hands_only_that_message_back() {
        let p = ports();
        *p.store.fail_next.lock().unwrap() = 1;
        let (r, t) = p
            .handle(&CFG, event(&[app("A-5"), app("A-6")]), || 1_000)
            .await;
        assert_eq!(r.batch_item_failures.len(), 1);
        assert_eq!(r.batch_item_failures[0].item_identifier, "m0");
        assert_eq!((t.stored, t.handed_back), (1, 1));
    }
}
