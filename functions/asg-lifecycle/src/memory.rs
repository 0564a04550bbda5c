//! What an execution environment of `asg-lifecycle` remembers between invocations: nothing
//! that correctness depends on (a new environment reads it all again), only what saves calls or
//! keeps hooks alive while Auto Scaling cannot be read.

use crate::drain::Lifecycle;
use fleetguard::ports::{AutoScalingGroups, ContainerInstances, Notify, TargetGroups};
use std::collections::BTreeMap;

/// The start times of the scaling activities of waiting instances, kept for this execution
/// environment: a start time never changes, and the minute sweep would otherwise page through
/// `DescribeScalingActivities` (100 a call) for every draining instance every minute. An entry
/// goes when a sweep no longer finds its instance waiting in that transition.
///
/// Also each group's lifecycle hooks as last read, and the heartbeats the last sweep recorded:
/// when Auto Scaling's describe calls are down, the sweep still heartbeats what it knows rather
/// than letting our hooks expire (the simulator found hooks lost to outages of
/// `DescribeLifecycleHooks` and `DescribeAutoScalingGroups` after late sweeps).
#[derive(Debug, Clone, Default)]
pub struct StartTimes(
    std::sync::Arc<std::sync::Mutex<BTreeMap<(String, bool), i64>>>,
    std::sync::Arc<std::sync::Mutex<BTreeMap<String, Vec<fleetguard::ports::LifecycleHook>>>>,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
);

impl StartTimes {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, bool), i64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Note the hooks of `group` as read now.
    pub fn hooks_read(&self, group: &str, hooks: &[fleetguard::ports::LifecycleHook]) {
        self.1
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group.to_owned(), hooks.to_vec());
    }

    /// Note the heartbeats a sweep records: (group, hook, instance).
    pub fn heartbeats_recorded(&self, due: &[(String, String, String)]) {
        *self.2.lock().unwrap_or_else(|e| e.into_inner()) = due.to_vec();
    }

    /// The heartbeats the last sweep of this execution environment recorded.
    pub fn last_heartbeats(&self) -> Vec<(String, String, String)> {
        self.2.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The hooks of `group` as last read in this execution environment.
    pub fn hooks_last_read(&self, group: &str) -> Option<Vec<fleetguard::ports::LifecycleHook>> {
        self.1
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(group)
            .cloned()
    }

    /// Keep only the entries of instances waiting now.
    pub fn retain(&self, waiting: &std::collections::BTreeSet<(String, bool)>) {
        self.lock().retain(|k, _| waiting.contains(k));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<E, T, A, N> Lifecycle<E, T, A, N>
where
    E: ContainerInstances,
    T: TargetGroups,
    A: AutoScalingGroups,
    N: Notify,
{
    /// When each instance's termination (`true`) or launch started: from this environment's
    /// [`StartTimes`], else from the group's scaling activities (then kept).
    pub(crate) async fn start_times(
        &self,
        group: &str,
        wanted: &[(String, bool)],
    ) -> BTreeMap<String, i64> {
        let mut found = BTreeMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.starts.lock();
            for w in wanted {
                match cache.get(w) {
                    Some(s) => {
                        found.insert(w.0.clone(), *s);
                    }
                    None => missing.push(w.clone()),
                }
            }
        }
        if missing.is_empty() {
            return found;
        }
        match self
            .fleet
            .autoscaling
            .activity_start_times(group, &missing, 20)
            .await
        {
            Ok(m) => {
                let mut cache = self.starts.lock();
                for (id, terminating) in &missing {
                    if let Some(s) = m.get(id) {
                        cache.insert((id.clone(), *terminating), *s);
                        found.insert(id.clone(), *s);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read scaling activities"),
        }
        found
    }
}
