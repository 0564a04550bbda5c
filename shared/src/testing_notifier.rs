//! [`FakeNotifier`]: the real pipeline over fakes of the table and the services.

use super::*;

/// The real notification pipeline over an in-memory ledger (DynamoDB's semantics) and the fake
/// services, routed to one fake Slack webhook (`slack:default`). It also keeps the
/// notifications that reached it, for handler tests.
#[derive(Debug, Clone)]
pub struct FakeNotifier {
    pub pipeline: crate::notify::Notifier<
        crate::notify::ledger::MemoryLedger,
        crate::notify::destinations::fake::FakeServices,
    >,
    sent: Arc<Mutex<Vec<Notification>>>,
}

impl Default for FakeNotifier {
    fn default() -> Self {
        Self::over(crate::notify::ledger::MemoryLedger::local_ms(
            test_clock_ms(),
        ))
    }
}

/// The system clock moved on by tokio's time (milliseconds): in a test on paused time
/// (`start_paused`), a wait for a pace's slot passes when its sleep does, as it does for real.
fn test_clock_ms() -> impl Fn() -> i64 + Send + Sync + 'static {
    let base = crate::time::now_epoch() * 1000;
    let start = tokio::time::Instant::now();
    move || base + start.elapsed().as_millis() as i64
}

impl FakeNotifier {
    /// Over this environment's memory (no table).
    pub fn new() -> Self {
        Self::default()
    }

    /// Over a table shared by every environment (`DEDUPE_TABLE`).
    pub fn with_dedupe() -> Self {
        Self::over(crate::notify::ledger::MemoryLedger::table_ms(
            test_clock_ms(),
        ))
    }

    pub fn over(ledger: crate::notify::ledger::MemoryLedger) -> Self {
        Self::with_services(
            ledger,
            crate::notify::destinations::fake::FakeServices::default(),
        )
    }

    /// A table and services on a virtual clock (the simulator's).
    pub fn on_clock(clock: impl Fn() -> i64 + Clone + Send + Sync + 'static) -> Self {
        Self::with_services(
            crate::notify::ledger::MemoryLedger::table(clock.clone()),
            crate::notify::destinations::fake::FakeServices::new(clock),
        )
    }

    fn with_services(
        ledger: crate::notify::ledger::MemoryLedger,
        services: crate::notify::destinations::fake::FakeServices,
    ) -> Self {
        let dest = crate::notify::Destination::SlackSecret {
            secret_id: "default".into(),
        };
        Self {
            pipeline: crate::notify::Notifier::with(
                crate::notify::Rules::default(),
                vec![dest],
                ledger,
                services,
            ),
            sent: Arc::default(),
        }
    }

    /// The fake services behind the pipeline: what landed, faults to inject.
    pub fn services(&self) -> &crate::notify::destinations::fake::FakeServices {
        self.pipeline.services()
    }

    /// Every notification delivered so far (a duplicate the ledger refused is not).
    pub fn sent(&self) -> Vec<Notification> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Make every call fail with a 500 (the destination down), or succeed again with `None`.
    pub fn fail_with(&self, destination: Option<&str>) {
        self.pipeline.services().set_down(destination.is_some());
    }
}

impl crate::ports::Notify for FakeNotifier {
    async fn send(
        &self,
        n: Notification,
        deadline: Deadline,
    ) -> Result<DeliveryReport, DeliveryError> {
        let report = self.pipeline.send(n.clone(), deadline).await?;
        if !report.delivered.is_empty() {
            self.sent.lock().unwrap_or_else(|e| e.into_inner()).push(n);
        }
        Ok(report)
    }

    async fn remember(&self, fact: &str, ttl: Duration) {
        self.pipeline.remember(fact, ttl).await
    }

    async fn remembered(&self, fact: &str) -> bool {
        self.pipeline.remembered(fact).await
    }

    async fn version(&self, key: &str) -> Option<(i64, String)> {
        self.pipeline.version(key).await
    }

    async fn keep_version(&self, key: &str, version: i64, label: &str, ttl: Duration) -> bool {
        self.pipeline.keep_version(key, version, label, ttl).await
    }

    async fn forget(&self, fact: &str) {
        self.pipeline.forget(fact).await
    }

    async fn stash(&self, key: &str, n: &Notification) -> bool {
        self.pipeline.stash(key, n).await
    }

    async fn stashed(&self, key: &str) -> Option<Notification> {
        self.pipeline.stashed(key).await
    }

    async fn unstash(&self, key: &str) {
        self.pipeline.unstash(key).await
    }

    async fn stashed_keys(&self) -> Vec<String> {
        self.pipeline.stashed_keys().await
    }
}

impl crate::kept_marks::MarkLedger for FakeNotifier {
    async fn keep_mark(&self, m: &crate::kept_marks::KeptMark) -> bool {
        self.pipeline.keep_mark(m).await
    }

    async fn kept_mark(&self, instance: &str) -> Option<crate::kept_marks::KeptMark> {
        self.pipeline.kept_mark(instance).await
    }

    async fn drop_mark(&self, place: &crate::kept_marks::MarkPlace) {
        self.pipeline.drop_mark(place).await
    }

    async fn kept_marks(&self) -> Vec<crate::kept_marks::MarkPlace> {
        self.pipeline.kept_marks().await
    }
}
