//! Invoking the real functions: faults drawn per invocation (throttling, APIs down,
//! notification outages, timeouts part-way, recycled environments), Lambda's async retries.

use super::*;

impl Sim {
    pub(super) async fn invoke(&mut self, payload: &str, attempt: u32) {
        self.stats.invocations += 1;
        self.clock.set(self.now);
        // Now and then Lambda recycles the execution environment: what lived only in memory
        // (the start-time cache) is gone. The dedupe table, like AWS, stays.
        if self.rng.random_bool(0.01) {
            self.recycle();
        }
        // Throttling past the SDK's retries on some call, now and then.
        if self.rng.random_bool(0.08) {
            let op = OPS[self.rng.random_range(0..OPS.len())];
            self.aws.throttle(op, 1);
        }
        // Now and then one API stays down across Lambda's retries (90 to 150 s: shorter than
        // the shortest heartbeat timeout, past which AWS itself gives up): the sweep has to
        // finish what the event's invocations could not.
        if self.api_down.is_none_or(|(_, until)| until < self.now) && self.rng.random_bool(0.005) {
            let op = OPS[self.rng.random_range(0..OPS.len())];
            self.api_down = Some((op, self.now + self.rng.random_range(90..150)));
        }
        if let Some((op, until)) = self.api_down
            && until >= self.now
        {
            self.aws.throttle(op, 1_000);
        }
        let faults: String = self
            .aws
            .world()
            .failures
            .iter()
            .map(|(op, _, _)| format!(", {op} failing"))
            .collect();
        // A notification outage (Slack down) for this invocation, now and then.
        let outage = self.rng.random_bool(0.08);
        self.asg
            .lifecycle
            .notifier
            .fail_with(outage.then_some("slack:default"));
        let (deploy, json) = seams::target(payload);
        let event: Value = serde_json::from_str(json).unwrap();
        // Now and then the invocation times out part-way: Lambda stops it between two calls,
        // whatever it was doing, and retries the event.
        let cut = self
            .rng
            .random_bool(0.03)
            .then(|| self.rng.random_range(1..40));
        let result = match cut {
            None => self.call(&event, deploy).await,
            Some(polls) => CutAfter {
                inner: self.call(&event, deploy),
                polls_left: polls,
            }
            .await
            .unwrap_or_else(|| {
                self.stats.timed_out += 1;
                Err(fleetguard::serve::Error {
                    error_type: "Sandbox.Timedout",
                    message: "Task timed out".into(),
                })
            }),
        };
        if std::env::var_os("SIM_LOG").is_some() {
            eprintln!(
                "t+{} {} (attempt {attempt}{}{}{}): {:?}",
                self.now - T0,
                event["detail-type"].as_str().unwrap_or_default(),
                if outage { ", notifications down" } else { "" },
                faults,
                cut.map(|p| format!(", cut after {p} polls"))
                    .unwrap_or_default(),
                result
                    .as_ref()
                    .map(|s| (&s.outcome, &s.actions))
                    .map_err(|e| &e.message)
            );
        }
        if let Ok(watch) = std::env::var("SIM_WATCH") {
            let w = self.aws.world();
            for c in w
                .container_instances
                .iter()
                .filter(|c| c.ec2_instance_id == watch)
            {
                eprintln!(
                    "    {watch}: {} running={} mark={:?}",
                    c.status, c.running_tasks_count, c.drain_mark
                );
            }
            for d in w.deregistered.iter().filter(|d| d.1 == watch) {
                eprintln!("    {watch}: deregistered {d:?}");
            }
            for p in w.pending.iter().filter(|p| p.2 == watch) {
                eprintln!("    {watch}: pending {p:?}");
            }
        }
        self.asg.lifecycle.notifier.fail_with(None);
        self.aws.world().failures.clear();
        if let Ok(summary) = &result {
            self.spot_handled(&event, summary);
            self.maintenance_handled(&event);
            self.alarm_handled(&event);
        }
        self.after_invoke(payload, attempt, result.err());
        self.observe();
    }

    /// New execution environments for both functions.
    pub(super) fn recycle(&mut self) {
        self.stats.recycled += 1;
        let lc = &self.asg.lifecycle;
        self.asg = asg_lifecycle::Handler {
            common: self.asg.common.clone(),
            lifecycle: asg_lifecycle::Lifecycle {
                fleet: lc.fleet.clone(),
                notifier: lc.notifier.clone(),
                config: lc.config.clone(),
                dry_run: lc.dry_run,
                clock: lc.clock.clone(),
                starts: Default::default(),
            },
        };
        self.maint = instance_maintenance::Handler {
            common: self.maint.common.clone(),
            config: self.maint.config.clone(),
            fleet: self.maint.fleet.clone(),
            schedules: self.maint.schedules.clone(),
            notifier: self.maint.notifier.clone(),
            clock: self.maint.clock.clone(),
        };
        self.spot = spot_interruption::Handler {
            common: self.spot.common.clone(),
            config: self.spot.config.clone(),
            fleet: self.spot.fleet.clone(),
            notifier: self.spot.notifier.clone(),
            clock: self.spot.clock.clone(),
        };
    }

    /// The function the event is for, invoked: Spot events to `spot-interruption`, the rest to
    /// `asg-lifecycle`.
    pub(super) fn call<'a>(
        &'a self,
        event: &'a Value,
        deploy: bool,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<fleetguard::serve::Summary, fleetguard::serve::Error>,
                > + 'a,
        >,
    > {
        if deploy {
            return Box::pin(fleetguard::testing::invoke(&self.deploy, event));
        }
        match event["detail-type"].as_str() {
            Some(
                "EC2 Spot Instance Interruption Warning" | "EC2 Instance Rebalance Recommendation",
            ) => Box::pin(fleetguard::testing::invoke(&self.spot, event)),
            Some("CloudWatch Alarm State Change") => {
                Box::pin(fleetguard::testing::invoke(&self.fanout, event))
            }
            Some(
                "AWS Health Event"
                | "Scheduled Maintenance"
                | "EC2 Instance State-change Notification",
            ) => Box::pin(fleetguard::testing::invoke(&self.maint, event)),
            _ => Box::pin(fleetguard::testing::invoke(&self.asg, event)),
        }
    }

    /// Lambda's async retries: twice, after one and two minutes, then the on-failure
    /// destination.
    pub(super) fn after_invoke(
        &mut self,
        payload: &str,
        attempt: u32,
        error: Option<fleetguard::serve::Error>,
    ) {
        if let Some(e) = error {
            self.stats.failed_invocations += 1;
            if attempt < 2 {
                let t = self.now + 60 * (attempt as i64 + 1);
                self.at(t, Ev::Invoke(payload.to_owned(), attempt + 1));
            } else {
                self.stats.dropped_to_dlq += 1;
                tracing::debug!(error = %e.message, "dropped to the on-failure destination");
                self.dead_letters.push((payload.to_owned(), e.message));
            }
        }
    }

    /// The same event delivered twice at once: both invocations run concurrently, their AWS
    /// calls interleaving (each fake call yields, as a network call does).
    pub(super) async fn invoke_together(&mut self, payload: &str) {
        self.stats.invocations += 2;
        self.stats.concurrent_duplicates += 1;
        self.clock.set(self.now);
        let (deploy, json) = seams::target(payload);
        let event: Value = serde_json::from_str(json).unwrap();
        let (a, b) = tokio::join!(self.call(&event, deploy), self.call(&event, deploy));
        for summary in [&a, &b].into_iter().flatten() {
            self.spot_handled(&event, summary);
            self.maintenance_handled(&event);
            self.alarm_handled(&event);
        }
        if std::env::var_os("SIM_LOG").is_some() {
            eprintln!(
                "t+{} {} (twice at once): {:?} / {:?}",
                self.now - T0,
                event["detail-type"].as_str().unwrap_or_default(),
                a.as_ref().map(|s| &s.outcome).map_err(|e| &e.message),
                b.as_ref().map(|s| &s.outcome).map_err(|e| &e.message),
            );
        }
        self.after_invoke(payload, 0, a.err());
        self.after_invoke(payload, 0, b.err());
        self.observe();
    }
}

/// A future stopped after `polls_left` polls (`None`), as Lambda stops an invocation at its
/// timeout: between two calls, whatever it was doing.
struct CutAfter<F: std::future::Future + ?Sized> {
    inner: std::pin::Pin<Box<F>>,
    polls_left: u32,
}

impl<F: std::future::Future + ?Sized> std::future::Future for CutAfter<F> {
    type Output = Option<F::Output>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if self.polls_left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.polls_left -= 1;
        self.inner.as_mut().poll(cx).map(Some)
    }
}
