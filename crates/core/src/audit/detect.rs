//! Detection on the audit stream, in the request path where it must stop
//! harm: bulk personal-data reads.
//!
//! The bulk-read limit: one administrator account (all its sessions and
//! tokens together) and one source network (IPv4 /24, IPv6 /64, as
//! [`crate::audit::anomaly::network_of`] groups addresses) may each have at most
//! `bulk_read_threshold` people's personal data disclosed within the
//! sliding `bulk_read_window`. A read is counted — reserved, under one lock,
//! for the account and the network together — before its data is
//! assembled, so concurrent requests cannot together pass the limit: the
//! request that would make it more than the threshold (the N+1-th person)
//! is refused whole, nobody's data leaves, an alert is recorded (severity
//! high, evidence: the disclosure records in the window) and — by policy,
//! on by default, and only when the account's own window is over, not a
//! network's, which every account on it shares — the account is
//! suspended: every session and token
//! revoked and the suspension kept in the store, so logins, sessions and
//! tokens are refused until another administrator reinstates the account
//! (`POST /api/v1/admins/{name}/reinstate`).

use crate::access::{AdminActor, ClientContext};
use crate::{CoreError, CoreResult, Services};
use mamori_domain::{AdminAccount, AdminId};
use mamori_domain::{AuditAction, Outcome};
use mamori_ports::ReadRequest;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// Bulk-read rule settings.
#[derive(Debug, Clone)]
pub struct DetectionPolicy {
    /// People one account, or one source network, may read within
    /// `window`; the read of one more trips the rule.
    pub bulk_read_threshold: usize,
    /// The sliding window.
    pub bulk_read_window: Duration,
    /// Suspend the account (and refuse the read) when the rule trips;
    /// otherwise only alert.
    pub suspend_on_bulk_read: bool,
}

impl Default for DetectionPolicy {
    fn default() -> Self {
        Self {
            bulk_read_threshold: 300,
            bulk_read_window: Duration::minutes(1),
            suspend_on_bulk_read: true,
        }
    }
}

/// The accounts the rule suspended (the windows themselves are in the
/// store, shared by every server: `ReadLimitStore`).
#[derive(Debug, Default)]
struct ReadLimits {
    /// Accounts suspended by this process, and when: refused at once, also
    /// requests that were admitted before the suspension was stored. For
    /// one window only: by then the suspension in the store refuses them
    /// on every server, and a reinstatement made on another server must
    /// not be overruled here.
    blocked: HashMap<String, OffsetDateTime>,
}

/// The keys a reader's reads count under.
#[derive(Debug, Clone)]
pub(crate) struct ReadKeys {
    account: String,
    network: Option<String>,
}

impl ReadKeys {
    fn of(admin: &AdminId, source: &str) -> Self {
        Self {
            account: format!("account:{admin}"),
            network: (!source.is_empty())
                .then(|| format!("network:{}", crate::audit::anomaly::network_of(source))),
        }
    }

    /// The windows, the account's first (it is judged first).
    fn all(&self) -> Vec<String> {
        std::iter::once(&self.account)
            .chain(self.network.as_ref())
            .cloned()
            .collect()
    }
}

/// What the bulk-read limit says to a request for more people.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Counted; the data may be disclosed.
    Granted(i64),
    /// Over the limit of `key` (`account:...` or `network:...`): `read`
    /// people already in its window. `alert` for the first time in this
    /// burst. `granted`: counted anyway (alert-only policy).
    Exceeded {
        key: String,
        read: usize,
        evidence: Vec<i64>,
        alert: bool,
        granted: Option<i64>,
    },
    /// The account was suspended by this rule.
    Blocked,
}

/// A counted personal-data read, to be disclosed (see
/// [`Services::reserve_personal_reads`]).
#[derive(Debug)]
pub(crate) struct ReadPermit {
    id: i64,
}

/// Entries an in-memory detection map holds before it is pruned.
const PRUNE_AT: usize = 100_000;

/// Once `map` holds more than [`PRUNE_AT`] entries, keeps those `keep`
/// wants; if it is still that full (every entry recent), starts over
/// rather than scan every entry on every request.
fn prune<K, V>(map: &mut HashMap<K, V>, mut keep: impl FnMut(&V) -> bool) {
    if map.len() > PRUNE_AT {
        map.retain(|_, v| keep(v));
        if map.len() > PRUNE_AT {
            map.clear();
        }
    }
}

/// Per-account and per-network windows of personal-data reads, where each
/// device identity was last used from, and how many refused device
/// requests each source made this minute.
#[derive(Debug, Default)]
pub struct Detector {
    reads: Mutex<ReadLimits>,
    device_sources: Mutex<HashMap<String, VecDeque<(IpAddr, OffsetDateTime)>>>,
    rejections: Mutex<HashMap<IpAddr, (OffsetDateTime, u32)>>,
}

/// A device identity used alternately from two addresses within this
/// window (A, B, A) is in two places at once: a copied identity.
pub const TWO_PLACES_WINDOW: Duration = Duration::minutes(2);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Detector {
    /// Notes that `device` was used from `ip`; returns the two addresses
    /// when it alternated between them within [`TWO_PLACES_WINDOW`] (once
    /// per burst).
    fn device_seen(
        &self,
        device: &str,
        ip: IpAddr,
        now: OffsetDateTime,
    ) -> Option<(IpAddr, IpAddr)> {
        let mut map = lock(&self.device_sources);
        prune(&mut map, |q| {
            q.back().is_some_and(|(_, t)| now - *t < TWO_PLACES_WINDOW)
        });
        let q = map.entry(device.to_owned()).or_default();
        if q.back().is_some_and(|(last, _)| *last == ip) {
            if let Some(b) = q.back_mut() {
                b.1 = now;
            }
            return None;
        }
        q.push_back((ip, now));
        while q.len() > 3
            || q.front()
                .is_some_and(|(_, t)| now - *t >= TWO_PLACES_WINDOW)
        {
            q.pop_front();
        }
        if q.len() == 3 && q[0].0 == q[2].0 && q[0].0 != q[1].0 {
            let pair = (q[0].0, q[1].0);
            q.clear();
            return Some(pair);
        }
        None
    }

    /// Whether a refused device request from `ip` should be recorded: the
    /// first in each minute is, with the count of the ones not recorded in
    /// the minute before (a flood cannot flood the log).
    fn rejection(&self, ip: IpAddr, now: OffsetDateTime) -> Option<u32> {
        let mut map = lock(&self.rejections);
        prune(&mut map, |(t, _)| now - *t < Duration::minutes(1));
        match map.get_mut(&ip) {
            Some((start, n)) if now - *start < Duration::minutes(1) => {
                *n += 1;
                None
            }
            Some(entry) => {
                let suppressed = entry.1;
                *entry = (now, 0);
                Some(suppressed)
            }
            None => {
                map.insert(ip, (now, 0));
                Some(0)
            }
        }
    }

    /// Whether this process suspended the account these keys belong to.
    fn blocked(&self, keys: &ReadKeys, now: OffsetDateTime, window: Duration) -> bool {
        let mut g = lock(&self.reads);
        g.blocked.retain(|_, at| now - *at < window);
        g.blocked.contains_key(&keys.account)
    }

    /// Forgets that this process suspended `admin` (it was reinstated).
    pub(crate) fn unblock(&self, admin: &AdminId) {
        lock(&self.reads)
            .blocked
            .remove(&format!("account:{admin}"));
    }

    /// Remembers that `admin` is suspended.
    fn block(&self, admin: &AdminId, now: OffsetDateTime) {
        self.block_key(&format!("account:{admin}"), now);
    }

    /// Remembers that the account of this window key is suspended.
    fn block_key(&self, account: &str, now: OffsetDateTime) {
        lock(&self.reads).blocked.insert(account.to_owned(), now);
    }
}

impl Services {
    /// An audit record of a device's own request.
    pub(crate) fn device_event(
        &self,
        device: &mamori_domain::DeviceKey,
        source: Option<IpAddr>,
        action: AuditAction,
        detail: Option<String>,
    ) -> mamori_domain::AuditEvent {
        mamori_domain::AuditEvent {
            at: self.clock.now(),
            actor: format!("device:{device}"),
            source: source.map(|s| s.to_string()),
            action: action.as_str().to_owned(),
            target: Some(device.to_string()),
            outcome: Outcome::Success.as_str().into(),
            request_id: None,
            detail,
        }
    }

    /// Records a refused device request (rate-limited per source). The
    /// request is refused whether or not the record could be written.
    pub(crate) async fn device_rejected(&self, source: Option<IpAddr>, what: &str, e: &CoreError) {
        let now = self.clock.now();
        let suppressed = match source {
            Some(ip) => match self.detector.rejection(ip, now) {
                Some(n) => n,
                None => return,
            },
            None => 0,
        };
        let reason = match e {
            CoreError::Unauthorized => "no valid device identity".to_owned(),
            other => other.to_string(),
        };
        let mut detail = format!("{what}: {reason}");
        if suppressed > 0 {
            detail.push_str(&format!(
                " ({suppressed} more from this source in the minute before)"
            ));
        }
        let event = mamori_domain::AuditEvent {
            at: now,
            actor: "anonymous".into(),
            source: source.map(|s| s.to_string()),
            action: AuditAction::DeviceRejected.as_str().into(),
            target: None,
            outcome: Outcome::Denied.as_str().into(),
            request_id: None,
            detail: Some(detail),
        };
        if let Err(e) = self.audit_seq(event).await {
            tracing::error!(error = %e, "cannot record a refused device request");
        }
    }

    /// Watches where a device identity is used from: alternating between
    /// two addresses within minutes means two holders of one identity.
    pub(crate) async fn observe_device_source(
        &self,
        device: &mamori_domain::DeviceKey,
        source: Option<IpAddr>,
    ) -> CoreResult<()> {
        let Some(ip) = source else { return Ok(()) };
        let now = self.clock.now();
        if let Some((a, b)) = self.detector.device_seen(device.as_str(), ip, now) {
            self.record_alert(&crate::audit::anomaly::Alert {
                rule: "device_two_places",
                severity: "high",
                actor: format!("device:{device}"),
                evidence: Vec::new(),
                detail: format!(
                    "the device identity was used from {a}, then {b}, then {a} again within {} minutes: \
                     it may have been copied",
                    TWO_PLACES_WINDOW.whole_minutes()
                ),
            })
            .await?;
        }
        Ok(())
    }

    /// Suspends an account: the suspension is kept in the store until
    /// another administrator reinstates it, every session and token is
    /// revoked in the same transaction, and this process refuses the
    /// account's reads at once. Recorded as `actor.suspend` (target: the
    /// actor label that tripped the rule).
    pub(crate) async fn suspend_account(
        &self,
        admin: &AdminAccount,
        label: &str,
        reason: &str,
        ctx: &ClientContext,
    ) -> CoreResult<String> {
        let now = self.clock.now();
        self.detector.block(&admin.id, now);
        let what = match self
            .ports
            .audit
            .suspend_admin(&admin.id, now, reason)
            .await?
        {
            Some((sessions, tokens)) => format!(
                "account {} suspended until another administrator reinstates it; \
                 sessions revoked={sessions} tokens revoked={tokens}",
                admin.name
            ),
            None => format!("account {} already suspended", admin.name),
        };
        self.audit(
            self.audit_record("system", ctx, AuditAction::ActorSuspend, Outcome::Success)
                .target(label)
                .detail(format!("reason={reason}; {what}")),
        )
        .await?;
        Ok(what)
    }

    /// Counts `people` personal-data reads of `actor` against the bulk-read
    /// limit — its account's and its source network's — before any of
    /// their data is assembled. Past the limit: the alert (once per burst),
    /// the account suspended (by policy) and the request refused, nobody's
    /// data disclosed.
    // Length: one decision (granted, blocked or over the limit) and what
    // crossing the limit does, in the order it must happen: alert, suspension,
    // incident.
    pub(crate) async fn reserve_personal_reads(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        people: usize,
    ) -> CoreResult<ReadPermit> {
        let policy = &self.config.detection;
        let keys = ReadKeys::of(&actor.admin.id, &ctx.source);
        let refused = || {
            CoreError::Forbidden(
                "suspended: bulk reads of personal data; a security officer has been alerted"
                    .into(),
            )
        };
        let (key, read, evidence, alert, granted) = match self.reserve_reads(&keys, people).await? {
            Verdict::Granted(id) => return Ok(ReadPermit { id }),
            Verdict::Blocked => return Err(refused()),
            Verdict::Exceeded {
                key,
                read,
                evidence,
                alert,
                granted,
            } => (key, read, evidence, alert, granted),
        };
        let label = actor.label();
        let network = key.strip_prefix("network:");
        let by = match network {
            Some(net) => format!("network {net}"),
            None => format!("account {}", actor.admin.name),
        };
        let mut alert_seq = None;
        if alert {
            let (first, last) = (
                evidence.first().copied().unwrap_or(0),
                evidence.last().copied().unwrap_or(0),
            );
            tracing::warn!(actor = %label, %by, reads = read + people, "ALERT: bulk personal-data reads");
            alert_seq = Some(
                self.audit_seq(
                    self.audit_record(
                        "system",
                        ctx,
                        AuditAction::AlertBulkPersonalDataRead,
                        Outcome::Alert,
                    )
                    .target(&label)
                    .detail(format!(
                        "severity=high reads={} limit={} by={by} window={}s \
                             evidence=records {first}-{last}",
                        read + people,
                        policy.bulk_read_threshold,
                        policy.bulk_read_window.whole_seconds()
                    )),
                )
                .await?,
            );
        }
        let result = match granted {
            // Alert only (policy): the read goes ahead, counted.
            Some(id) => Ok(ReadPermit { id }),
            // The network's window is full: the read is refused and the
            // security officers alerted, but the account is not suspended.
            // The window is shared by everyone on the network, and the
            // account that tips it need not be the one that filled it (the
            // outside attack's finding: one officer kept a /24's window
            // full and every colleague who then read was suspended).
            None if network.is_some() => Err(CoreError::Forbidden(
                "refused: too many people's personal data were read from your network \
                 within the last minutes; a security officer has been alerted; \
                 try again later"
                    .into(),
            )),
            None => {
                self.suspend_account(
                    &actor.admin,
                    &label,
                    &format!("bulk personal-data reads ({by})"),
                    ctx,
                )
                .await?;
                Err(refused())
            }
        };
        if let Some(seq) = alert_seq {
            self.incident_for_alert(seq, "bulk_personal_data_read", &label)
                .await?;
        }
        result
    }

    /// Counts reads that were recorded before they were counted (`seqs`,
    /// already disclosed) against the bulk-read limit: past it, the same
    /// alert, suspension and refusal as [`Self::reserve_personal_reads`].
    /// New callers reserve before assembling and disclose after instead.
    pub(crate) async fn observe_personal_reads(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        seqs: &[i64],
    ) -> CoreResult<()> {
        let permit = self.reserve_personal_reads(actor, ctx, seqs.len()).await?;
        self.reads_disclosed(&permit, seqs).await;
        Ok(())
    }

    /// Records the disclosure of `people`'s `fields` to `actor` — one
    /// `people.read` record per person, all or none — once their data is
    /// assembled and before it is sent. The breach-scope report counts
    /// these records: exactly the people whose data left the server.
    pub(crate) async fn disclose_personal_reads(
        &self,
        actor: &AdminActor,
        ctx: &ClientContext,
        permit: &ReadPermit,
        people: &[mamori_domain::PersonId],
        fields: &str,
    ) -> CoreResult<()> {
        let label = actor.label();
        let events: Vec<_> = people
            .iter()
            .map(|id| {
                self.audit_record(&label, ctx, AuditAction::PeopleRead, Outcome::Success)
                    .target(id.as_str())
                    .detail(format!("fields={fields}"))
                    .event()
            })
            .collect();
        let seqs = self.append_audit(&events).await?;
        self.reads_disclosed(permit, &seqs).await;
        Ok(())
    }

    /// Counts `people` reads under `keys` in the shared windows if every
    /// window stays within the threshold — all or nothing, decided in the
    /// store for every server at once, so concurrent requests, on one
    /// server or several, cannot together pass it. Past it, by policy, the
    /// account is refused here at once from now on.
    async fn reserve_reads(&self, keys: &ReadKeys, people: usize) -> CoreResult<Verdict> {
        let policy = &self.config.detection;
        if self
            .detector
            .blocked(keys, self.clock.now(), policy.bulk_read_window)
        {
            return Ok(Verdict::Blocked);
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&mamori_crypto::random_bytes(8));
        let id = i64::from_le_bytes(id);
        let windows = keys.all();
        let verdict = self
            .ports
            .audit
            .reserve_reads(&ReadRequest {
                id,
                keys: &windows,
                people: u64::try_from(people).unwrap_or(u64::MAX),
                now: self.clock.now(),
                window: policy.bulk_read_window,
                threshold: u64::try_from(policy.bulk_read_threshold).unwrap_or(u64::MAX),
                count_when_over: !policy.suspend_on_bulk_read,
            })
            .await?;
        Ok(match verdict.over {
            None if verdict.counted => Verdict::Granted(id),
            None => Verdict::Blocked,
            Some(over) => {
                // Only an account's own reads block it: a network's window
                // is shared by every account on it (see
                // `reserve_personal_reads`).
                if policy.suspend_on_bulk_read && over.key == keys.account {
                    self.detector.block_key(&keys.account, self.clock.now());
                }
                Verdict::Exceeded {
                    key: over.key,
                    read: usize::try_from(over.read).unwrap_or(usize::MAX),
                    evidence: over.evidence,
                    alert: over.alert,
                    granted: verdict.counted.then_some(id),
                }
            }
        })
    }

    /// Attaches the disclosure records of a counted request to it: the
    /// evidence of a later alert in its windows. The data has left already;
    /// a failure here costs only evidence, and is logged.
    async fn reads_disclosed(&self, permit: &ReadPermit, seqs: &[i64]) {
        if let Err(e) = self
            .ports
            .audit
            .attach_read_evidence(permit.id, seqs, self.clock.now())
            .await
        {
            tracing::error!(error = %e, "the evidence of a personal-data read could not be kept");
        }
    }
}

#[cfg(test)]
mod tests;
