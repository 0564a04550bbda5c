//! An organization's hub: one deployment per Region acts in member accounts.
//!
//! [`Hub`] wraps a function. An event of the hub's own account (or any event, standalone) goes
//! to the function as it is. An event of a member account goes to a copy of the function whose
//! fleet clients (ECS, Auto Scaling, ELBv2) act with that account's credentials, obtained by
//! assuming the member's role with the SDK's assume-role provider, and whose notifier keeps its
//! records under the account. The ledger, secrets, topics and schedules stay the hub's.
//!
//! Each account has its own credentials and its own lock: an account whose role cannot be
//! assumed fails only its own events (with an error and a message naming the account and the
//! role), and throttling in one account never holds another back.

use crate::accounts::{Acting, Hub as HubConfig, acting};
use crate::config::ConfigError;
use crate::notify::{Deadline, Notification, NotificationKind, Notifier, Phase, Severity};
use crate::observe::Metrics;
use crate::ports::Notify;
use crate::serve::{Error, Function, Summary};
use crate::{Event, EventKind};
use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    ProvideCredentials, SharedCredentialsProvider, error::CredentialsError, future,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A function that can act in another account: the same function, built on that account's
/// SDK configuration.
pub trait InAccount: Function + Sized {
    /// Whether acting in a member calls AWS there (and so needs its role). A function that
    /// only tells people (`alarm-fanout`) serves a member with no role at all.
    const ASSUMES_ROLE: bool = true;

    /// This function acting in `account` through `sdk` (the account's credentials): the same
    /// configuration; fleet clients built on `sdk`; its notifier [`Notifier::in_account`].
    fn in_account(&self, sdk: &SdkConfig, account: &str) -> Self;

    /// Where the hub says it cannot act in an account.
    fn notifier(&self) -> &Notifier;
}

/// Assumed credentials are refreshed this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// One `AssumeRole` call may take this long (a Spot warning gives two minutes in all).
const ASSUME_TIMEOUT: Duration = Duration::from_secs(10);

/// A member account's credentials: the SDK's assume-role provider, its result kept until
/// [`REFRESH_BEFORE`] its expiry. One lock per account: the first event assumes the role, those
/// that arrive meanwhile wait for it, not for a second call.
#[derive(Debug)]
pub struct MemberCredentials {
    provider: aws_config::sts::AssumeRoleProvider,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl MemberCredentials {
    /// The role `role_arn`, assumed with `base`'s credentials; sessions named after the function.
    pub async fn new(base: &SdkConfig, role_arn: &str, function: &str) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(ASSUME_TIMEOUT)
            .build();
        let conf = base.to_builder().timeout_config(timeouts).build();
        let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name(session_name(function))
            .configure(&conf)
            .build()
            .await;
        Self {
            provider,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Valid credentials: the kept ones, or newly assumed.
    pub async fn get(&self) -> Result<Credentials, CredentialsError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && fresh(c, SystemTime::now())
        {
            return Ok(c.clone());
        }
        let c = self.provider.provide_credentials().await?;
        *cached = Some(c.clone());
        Ok(c)
    }
}

/// Whether credentials are good for a while yet (none without an expiry are).
fn fresh(c: &Credentials, now: SystemTime) -> bool {
    c.expiry().is_none_or(|e| e > now + REFRESH_BEFORE)
}

/// `RoleSessionName`: the function's name, as CloudTrail in the member account shows it
/// (2 to 64 of `[\w+=,.@-]`).
pub fn session_name(function: &str) -> String {
    let name: String = format!("fleetguard-{function}")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c))
        .take(64)
        .collect();
    name
}

impl ProvideCredentials for Shared {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.0.get())
    }
}

/// The credentials as the SDK's clients hold them.
#[derive(Debug, Clone)]
struct Shared(Arc<MemberCredentials>);

/// The function as it acts in one member account.
struct Member<F> {
    role_arn: String,
    /// `None` for a function that calls nothing in the member.
    credentials: Option<Arc<MemberCredentials>>,
    function: F,
    /// This environment has acted here since it last could not (a recovery is told once).
    reachable: AtomicBool,
}

/// A function serving its own account and, as a hub, its members.
pub struct Hub<F> {
    own: F,
    config: Option<HubConfig>,
    base: SdkConfig,
    members: Mutex<HashMap<String, Arc<Member<F>>>>,
}

impl<F: InAccount> Hub<F> {
    /// `function` in the mode `lookup` sets: standalone, or a hub (`MEMBER_ACCOUNTS` or
    /// `ORGANIZATION_ID`, `HUB_ACCOUNT_ID`, `MEMBER_ROLE_NAME`).
    pub fn new(
        function: F,
        lookup: &impl Fn(&str) -> Option<String>,
        sdk: &SdkConfig,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            own: function,
            config: HubConfig::from_lookup(lookup)?,
            base: sdk.clone(),
            members: Mutex::default(),
        })
    }

    /// The function as it acts in its own account.
    pub fn own(&self) -> &F {
        &self.own
    }

    /// The function in `account`, built at its first event and kept for this environment.
    async fn member(&self, config: &HubConfig, account: &str, region: &str) -> Arc<Member<F>> {
        if let Some(m) = self
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(account)
        {
            return m.clone();
        }
        let role_arn = config.role_arn(account, region);
        let (sdk, credentials) = if F::ASSUMES_ROLE {
            let c = Arc::new(MemberCredentials::new(&self.base, &role_arn, F::NAME).await);
            let sdk = self
                .base
                .to_builder()
                .credentials_provider(SharedCredentialsProvider::new(Shared(c.clone())))
                .build();
            (sdk, Some(c))
        } else {
            (self.base.clone(), None)
        };
        let built = Arc::new(Member {
            function: self.own.in_account(&sdk, account),
            role_arn,
            credentials,
            reachable: AtomicBool::new(false),
        });
        // Two first events at once: the first one kept wins, both use it.
        self.members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(account.to_owned())
            .or_insert(built)
            .clone()
    }

    async fn in_member(
        &self,
        config: &HubConfig,
        account: &str,
        event: &Event,
        summary: Summary,
        deadline: Deadline,
        metrics: &mut Metrics,
    ) -> Result<Summary, Error> {
        let m = self.member(config, account, &event.envelope.region).await;
        let fact = format!("member-unreachable|{account}");
        let assumed = match &m.credentials {
            Some(c) => c.get().await.map(|_| ()),
            None => Ok(()),
        };
        if let Err(e) = assumed {
            let why = crate::text::excerpt(&error_chain(&e), 600);
            let message = format!(
                "cannot act in account {}: role {} could not be assumed: {why}",
                self.own.notifier().account_label(account),
                m.role_arn
            );
            tracing::error!(account, role = %m.role_arn, error = %why, "member role not assumed");
            m.reachable.store(false, Ordering::Relaxed);
            let n =
                unreachable(account, &m.role_arn, &why, Phase::Opened).from_event(F::NAME, event);
            let notifier = self.own.notifier();
            notifier
                .remember(&fact, Duration::from_secs(7 * 86_400))
                .await;
            if let Err(d) = notifier.send(n, deadline).await {
                tracing::error!(error = %d, "could not tell that a member is unreachable");
            }
            return Err(Error {
                error_type: "AssumeRoleFailed",
                message,
            });
        }
        let result = m.function.handle(event, summary, deadline, metrics).await;
        // Told after the event's own work, never before it.
        if m.credentials.is_some() && !m.reachable.swap(true, Ordering::Relaxed) {
            let notifier = self.own.notifier();
            if notifier.remembered(&fact).await {
                let n = unreachable(account, &m.role_arn, "", Phase::Resolved)
                    .from_event(F::NAME, event);
                match notifier.send(n, deadline).await {
                    Ok(_) => notifier.forget(&fact).await,
                    Err(d) => {
                        m.reachable.store(false, Ordering::Relaxed);
                        tracing::warn!(error = %d, "could not tell that a member is reachable again");
                    }
                }
            }
        }
        result
    }
}

/// The message for a member the hub cannot act in (`Opened`), or can again (`Resolved`).
fn unreachable(account: &str, role_arn: &str, why: &str, phase: Phase) -> Notification {
    let key = format!("member-unreachable/{account}");
    let (severity, title) = match phase {
        Phase::Resolved => (
            Severity::Info,
            format!("fleetguard can act in account {account} again"),
        ),
        _ => (
            Severity::High,
            format!("fleetguard cannot act in account {account}"),
        ),
    };
    let mut n = Notification::new(
        NotificationKind::MemberUnreachable,
        severity,
        title,
        format!("{key}|{}", phase.as_str()),
    )
    .incident(key, phase)
    .field("Account", account)
    .field("Role", role_arn);
    n.dedupe_ttl = Duration::from_secs(3600);
    if !why.is_empty() {
        n = n
            .summary(
                "Its events are failing and kept in the failed-events queue. Check the role's \
                 trust policy and that the member module is applied in this account and Region.",
            )
            .field("Error", why);
    }
    n
}

/// An error with its sources: the SDK's top-level message alone is rarely the reason.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl<F: InAccount> Function for Hub<F> {
    const NAME: &'static str = F::NAME;

    fn accepts(kind: EventKind) -> bool {
        F::accepts(kind)
    }

    fn metrics_namespace(&self) -> &str {
        self.own.metrics_namespace()
    }

    fn account_dimension(&self, event: &Event) -> Option<String> {
        self.config.as_ref().map(|_| event.envelope.account.clone())
    }

    async fn handle(
        &self,
        event: &Event,
        mut summary: Summary,
        deadline: Deadline,
        metrics: &mut Metrics,
    ) -> Result<Summary, Error> {
        let Some(config) = &self.config else {
            return self.own.handle(event, summary, deadline, metrics).await;
        };
        match acting(Some(config), &event.envelope.account) {
            Acting::Own => self.own.handle(event, summary, deadline, metrics).await,
            Acting::Member(account) => {
                Box::pin(self.in_member(config, &account, event, summary, deadline, metrics)).await
            }
            Acting::Refused(why) => {
                tracing::warn!(reason = %why, "event of an account this hub does not serve: acknowledged");
                summary.outcome = format!("ignored: {why}");
                Ok(summary)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_named_after_the_function_within_sts_rules() {
        assert_eq!(
            session_name("spot-interruption"),
            "fleetguard-spot-interruption"
        );
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
        assert_eq!(session_name("a b/c"), "fleetguard-abc");
    }

    #[test]
    fn credentials_are_kept_until_five_minutes_before_they_expire() {
        let now = SystemTime::now();
        let at = |secs: u64| {
            Credentials::new(
                "AKID",
                "secret",
                Some("token".into()),
                Some(now + Duration::from_secs(secs)),
                "test",
            )
        };
        assert!(fresh(&at(3600), now));
        assert!(fresh(&at(301), now));
        assert!(!fresh(&at(299), now));
        assert!(!fresh(&at(0), now));
        assert!(fresh(
            &Credentials::new("AKID", "secret", None, None, "static"),
            now
        ));
    }

    #[test]
    fn the_unreachable_message_names_the_account_and_the_role_and_resolves() {
        let role = "arn:aws:iam::111111111111:role/fleetguard-member";
        let open = unreachable(
            "111111111111",
            role,
            "AccessDenied: not authorized",
            Phase::Opened,
        );
        assert_eq!(open.kind, NotificationKind::MemberUnreachable);
        assert!(open.title.contains("111111111111"));
        assert!(
            open.fields
                .iter()
                .any(|f| f.name == "Role" && f.value == role)
        );
        assert!(open.fields.iter().any(|f| f.value.contains("AccessDenied")));
        let back = unreachable("111111111111", role, "", Phase::Resolved);
        assert_eq!(back.incident_key(), open.incident_key());
        assert_ne!(back.dedupe_key, open.dedupe_key);
        assert_eq!(back.phase(), Phase::Resolved);
    }
}
