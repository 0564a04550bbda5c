//! Where a drain's mark lives when ECS cannot hold it: the dedupe table, beside the attribute.
//!
//! The container-instance attribute ([`crate::reasons::DRAIN_MARK_ATTRIBUTE`]) is the mark the
//! undo reads first, but ECS may refuse it (its 10 custom attributes), or an outage may outlast
//! both tries, and an invocation can die between the drain and the mark's second chance. A
//! drain without a mark is never undone. So every mark written is also kept in the ledger,
//! written alongside the drain (never before it: the drain waits on no bookkeeping), and
//! [`Marked`] reads it back into every DRAINING container instance it returns. The stronger of
//! the two marks wins ([`DrainMark::supersedes`]); the undo removes both.
//!
//! Without a table the ledger is this execution environment's memory: no worse than the
//! attribute alone.

use crate::ids::InstanceId;
use crate::ports::{
    AwsError, ContainerInstance, ContainerInstances, DrainMark, DrainResult, Registration, Task,
    drain_needs,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Where a kept mark's container instance is: the ledger's index lists these, so that no item
/// needs reading to find the marks of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MarkPlace {
    /// The EC2 instance id (the ledger's key).
    pub instance: String,
    pub cluster_arn: String,
    pub container_instance_arn: String,
}

impl MarkPlace {
    pub fn of(ci: &ContainerInstance) -> Self {
        Self {
            instance: ci.ec2_instance_id.clone(),
            cluster_arn: ci.cluster_arn.clone(),
            container_instance_arn: ci.arn.clone(),
        }
    }

    /// A plain EC2 instance's: no cluster, no container instance.
    pub fn plain(instance: &str) -> Self {
        Self {
            instance: instance.to_owned(),
            cluster_arn: "-".to_owned(),
            container_instance_arn: "-".to_owned(),
        }
    }

    /// Its entry in the ledger's index (ids and ARNs hold no spaces).
    pub fn entry(&self) -> String {
        format!(
            "{} {} {}",
            self.instance, self.cluster_arn, self.container_instance_arn
        )
    }

    pub fn parse(entry: &str) -> Option<Self> {
        let mut it = entry.split(' ');
        let p = Self {
            instance: it.next()?.to_owned(),
            cluster_arn: it.next()?.to_owned(),
            container_instance_arn: it.next()?.to_owned(),
        };
        it.next().is_none().then_some(p)
    }
}

/// A mark kept in the ledger, with where its container instance is. A plain EC2 instance's
/// (no container instance: its place names no cluster) carries the target group
/// registrations its drain removed, to be put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptMark {
    pub place: MarkPlace,
    pub mark: DrainMark,
    pub registrations: Vec<Registration>,
}

/// The ledger's marks (the port; the notification pipeline's table implements it).
pub trait MarkLedger: Clone + Send + Sync + 'static {
    /// Keep `m` unless a stronger mark is kept for its instance; true when `m` or a stronger
    /// mark is kept now, false when it could not be written.
    fn keep_mark(&self, m: &KeptMark) -> impl Future<Output = bool> + Send;

    /// The mark kept for `instance`, if any (`None` as well when it cannot be read).
    fn kept_mark(&self, instance: &str) -> impl Future<Output = Option<KeptMark>> + Send;

    /// Forget the mark kept for this place (its drain was undone, or its instance is gone).
    fn drop_mark(&self, place: &MarkPlace) -> impl Future<Output = ()> + Send;

    /// Where every kept mark is.
    fn kept_marks(&self) -> impl Future<Output = Vec<MarkPlace>> + Send;
}

fn same_cluster(a: &str, b: &str) -> bool {
    a.rsplit('/').next() == b.rsplit('/').next()
}

/// The ECS adapter with its marks also kept in the ledger. Every container instance it returns
/// carries the stronger of its attribute mark and its kept mark while it is DRAINING, or when
/// [`ContainerInstances::marked`] listed it from the ledger alone (so that the sweep sees a
/// stale kept mark on an ACTIVE instance, and removes it as it removes a stale attribute).
#[derive(Debug, Clone)]
pub struct Marked<E, K> {
    pub ecs: E,
    pub marks: K,
    /// Container instances the last `marked` found in the ledger alone: ARN → kept entry.
    ledger_only: Arc<Mutex<BTreeMap<String, MarkPlace>>>,
}

impl<E: ContainerInstances, K: MarkLedger> Marked<E, K> {
    pub fn new(ecs: E, marks: K) -> Self {
        Self {
            ecs,
            marks,
            ledger_only: Arc::default(),
        }
    }

    fn listed_from_ledger(&self, arn: &str) -> Option<MarkPlace> {
        self.ledger_only
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(arn)
            .cloned()
    }

    /// The kept mark read into a DRAINING container instance (one ledger read each; an ACTIVE
    /// one needs none, unless listed from the ledger: nothing of ours is left to undo on it).
    async fn fill(&self, mut ci: ContainerInstance) -> ContainerInstance {
        if ci.status != "DRAINING" && self.listed_from_ledger(&ci.arn).is_none() {
            return ci;
        }
        if let Some(k) = self.marks.kept_mark(&ci.ec2_instance_id).await
            && k.place.container_instance_arn == ci.arn
        {
            ci.drain_mark = Some(match ci.drain_mark {
                Some(a) if !k.mark.supersedes(&a) => a,
                _ => k.mark,
            });
        }
        ci
    }

    /// [`Marked::fill`] for many: the index is read once, and only the container instances it
    /// lists are read (a sweep over a large scale-in reads no item for the unmarked drains).
    async fn fill_all(&self, cis: Vec<ContainerInstance>) -> Vec<ContainerInstance> {
        let wanted = |ci: &ContainerInstance| {
            ci.status == "DRAINING" || self.listed_from_ledger(&ci.arn).is_some()
        };
        if !cis.iter().any(wanted) {
            return cis;
        }
        let indexed: BTreeSet<String> = self
            .marks
            .kept_marks()
            .await
            .into_iter()
            .map(|p| p.container_instance_arn)
            .collect();
        let mut out = Vec::with_capacity(cis.len());
        for ci in cis {
            out.push(if wanted(&ci) && indexed.contains(&ci.arn) {
                self.fill(ci).await
            } else {
                ci
            });
        }
        out
    }
}

impl<E: ContainerInstances, K: MarkLedger> ContainerInstances for Marked<E, K> {
    async fn clusters(
        &self,
        configured: &[String],
        refresh: bool,
    ) -> Result<Vec<String>, AwsError> {
        self.ecs.clusters(configured, refresh).await
    }

    async fn find_container_instance(
        &self,
        cluster: &str,
        instance: &InstanceId,
    ) -> Result<Option<ContainerInstance>, AwsError> {
        match self.ecs.find_container_instance(cluster, instance).await? {
            Some(ci) => Ok(Some(self.fill(ci).await)),
            None => Ok(None),
        }
    }

    async fn describe(
        &self,
        cluster: &str,
        arns: Vec<String>,
    ) -> Result<Vec<ContainerInstance>, AwsError> {
        let cis = self.ecs.describe(cluster, arns.clone()).await?;
        // A mark kept for a container instance that is gone (its instance terminated) is
        // forgotten here rather than left to its TTL.
        for arn in &arns {
            if let Some(place) = self.listed_from_ledger(arn)
                && !cis.iter().any(|c| c.arn == *arn && c.status != "INACTIVE")
            {
                self.marks.drop_mark(&place).await;
            }
        }
        Ok(self.fill_all(cis).await)
    }

    async fn container_instances(
        &self,
        cluster: &str,
        status: Option<&str>,
    ) -> Result<Vec<ContainerInstance>, AwsError> {
        let cis = self.ecs.container_instances(cluster, status).await?;
        Ok(self.fill_all(cis).await)
    }

    /// The marks are kept alongside the ECS calls, not before them; a mark ECS refused but the
    /// ledger kept is no longer a failure.
    async fn drain_all(
        &self,
        cis: Vec<(ContainerInstance, Option<DrainMark>)>,
    ) -> Vec<(String, Result<DrainResult, AwsError>)> {
        let keep: Vec<KeptMark> = cis
            .iter()
            .filter_map(|(ci, m)| {
                drain_needs(ci, *m).1.map(|mark| KeptMark {
                    place: MarkPlace::of(ci),
                    mark,
                    registrations: Vec::new(),
                })
            })
            .collect();
        let needs_drain: BTreeSet<String> = cis
            .iter()
            .filter(|(ci, m)| drain_needs(ci, *m).0)
            .map(|(ci, _)| ci.arn.clone())
            .collect();
        let keeping = async {
            let mut kept = BTreeSet::new();
            for k in &keep {
                if self.marks.keep_mark(k).await {
                    kept.insert(k.place.container_instance_arn.clone());
                }
            }
            kept
        };
        let (kept, results) = tokio::join!(keeping, self.ecs.drain_all(cis));
        results
            .into_iter()
            .map(|(arn, r)| {
                let r = match r {
                    Ok(DrainResult::DrainedUnmarked) if kept.contains(&arn) => {
                        Ok(DrainResult::Drained)
                    }
                    Err(e) if kept.contains(&arn) && !needs_drain.contains(&arn) => {
                        tracing::warn!(error = %e, container_instance = %arn, "drain mark kept in the ledger only");
                        Ok(DrainResult::AlreadyDraining)
                    }
                    r => r,
                };
                (arn, r)
            })
            .collect()
    }

    async fn keep_plain_mark(
        &self,
        instance: &str,
        mark: DrainMark,
        registrations: &[Registration],
    ) -> bool {
        self.marks
            .keep_mark(&KeptMark {
                place: MarkPlace::plain(instance),
                mark,
                registrations: registrations.to_vec(),
            })
            .await
    }

    async fn kept_plain_mark(&self, instance: &str) -> Option<(DrainMark, Vec<Registration>)> {
        self.marks
            .kept_mark(instance)
            .await
            .filter(|k| k.place == MarkPlace::plain(instance))
            .map(|k| (k.mark, k.registrations))
    }

    async fn drop_plain_mark(&self, instance: &str) {
        self.marks.drop_mark(&MarkPlace::plain(instance)).await
    }

    async fn plain_marks(&self) -> Vec<(String, DrainMark, Vec<Registration>)> {
        let mut out = Vec::new();
        for p in self.marks.kept_marks().await {
            if p != MarkPlace::plain(&p.instance) {
                continue;
            }
            if let Some((mark, regs)) = self.kept_plain_mark(&p.instance).await {
                out.push((p.instance, mark, regs));
            }
        }
        out
    }

    async fn with_kept_mark(&self, ci: ContainerInstance) -> ContainerInstance {
        self.fill(ci).await
    }

    /// ACTIVE, the attribute removed, then the kept mark forgotten.
    async fn activate(&self, ci: &ContainerInstance) -> Result<(), AwsError> {
        self.ecs.activate(ci).await?;
        self.marks.drop_mark(&MarkPlace::of(ci)).await;
        Ok(())
    }

    /// Marked by attribute, or by a mark kept in the ledger.
    async fn marked(&self, cluster: &str) -> Result<Vec<String>, AwsError> {
        let mut arns = self.ecs.marked(cluster).await?;
        let mut only = self
            .ledger_only
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        only.retain(|_, p| !same_cluster(&p.cluster_arn, cluster));
        for p in self.marks.kept_marks().await {
            if same_cluster(&p.cluster_arn, cluster) && !arns.contains(&p.container_instance_arn) {
                arns.push(p.container_instance_arn.clone());
                only.insert(p.container_instance_arn.clone(), p);
            }
        }
        *self.ledger_only.lock().unwrap_or_else(|e| e.into_inner()) = only;
        Ok(arns)
    }

    async fn tasks_on(
        &self,
        cluster: &str,
        container_instance: &str,
        desired: &str,
    ) -> Result<Vec<Task>, AwsError> {
        self.ecs
            .tasks_on(cluster, container_instance, desired)
            .await
    }

    async fn service_events(
        &self,
        cluster: &str,
        services: &[String],
        limit: usize,
    ) -> Result<Vec<(String, Vec<String>)>, AwsError> {
        self.ecs.service_events(cluster, services, limit).await
    }
}
