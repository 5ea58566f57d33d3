//! The orphaned-partition watchdog of a consumer group member.
//!
//! **Why.** A group coordinator can leave a partition assigned to nobody: Tansu 0.6.0 (the broker
//! the end-to-end suite runs) does it after a member is SIGKILLed. When the dead member's missed
//! session is first noticed by another member's *heartbeat*, the coordinator drops the member but
//! keeps the group `Formed` with the same generation and the old assignments; the survivors'
//! rejoin returns that generation again and their SyncGroup gets their old share, ignoring the
//! leader's new assignment. The dead member's partitions are then consumed by no one until the
//! membership changes again — events on them (a PATIENT_CREATED billing needs) wait forever.
//! Upstream fixed it after 0.6.0 (tansu commits 50e5666 and 98b0c7f, in nisshi ≥ 0.7).
//!
//! **What.** Every member watches the group's progress on the partitions it does *not* own: a
//! partition with events past the group's committed offset whose committed offset has not moved
//! for [`Watchdog::after`] (three session timeouts plus jitter, so replicas do not all act at
//! once) has no working consumer. The member then leaves and rejoins the group (a membership
//! change: the coordinator forms a new generation and assigns every partition again). With a
//! healthy coordinator this never fires: a dead member's partitions move within one session
//! timeout. A member that is alive but stuck on a failing handler costs one extra rebalance per
//! `after`, which does no harm (offsets are committed only after the handler succeeded).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng;
use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

/// Bound on the committed-offsets request of one probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Low and high watermark of each (topic, partition), as the keeper last saw them.
pub(super) type Marks = HashMap<(&'static str, i32), (i64, i64)>;

/// What one probe saw of one partition of a subscribed topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Observed {
    pub topic: String,
    pub partition: i32,
    /// The group's committed offset (the next offset to consume), if it ever committed one.
    pub committed: Option<i64>,
    /// Low and high watermark (first offset kept, next offset to be written).
    pub low: i64,
    pub high: i64,
    /// Assigned to this member right now.
    pub ours: bool,
}

impl Observed {
    /// Where the group resumes (without a commit, `auto.offset.reset=earliest`: the first offset).
    fn position(&self) -> i64 {
        self.committed.unwrap_or(self.low).max(self.low)
    }

    fn behind(&self) -> bool {
        self.position() < self.high
    }
}

/// Remembers since when each lagging partition's committed offset stood still.
#[derive(Debug)]
pub(super) struct Watchdog {
    after: Duration,
    /// (topic, partition) → (position seen, first seen at).
    still: HashMap<(String, i32), (i64, Instant)>,
}

impl Watchdog {
    /// A watchdog for a member whose session times out after `session`: it acts after three
    /// sessions plus a random share of one.
    pub fn for_session(session: Duration) -> Watchdog {
        let jitter = session.mul_f64(rand::thread_rng().gen_range(0.0..1.0));
        Watchdog::new(session * 3 + jitter)
    }

    pub fn new(after: Duration) -> Watchdog {
        Watchdog {
            after,
            still: HashMap::new(),
        }
    }

    /// How long a partition must stand still before the member acts.
    pub fn after(&self) -> Duration {
        self.after
    }

    /// Feeds one probe taken at `now`; returns the partitions (`topic/partition`) that have
    /// events to consume, are not this member's, and whose committed offset has not moved for
    /// [`Watchdog::after`]. Partitions caught up, owned by this member or moving are forgotten.
    pub fn observe(&mut self, now: Instant, partitions: &[Observed]) -> Vec<String> {
        let mut stalled = Vec::new();
        let mut watched = HashMap::new();
        for p in partitions {
            if p.ours || !p.behind() {
                continue;
            }
            let key = (p.topic.clone(), p.partition);
            let since = match self.still.get(&key) {
                Some((position, since)) if *position == p.position() => *since,
                _ => now,
            };
            if now.duration_since(since) >= self.after {
                stalled.push(format!("{}/{}", p.topic, p.partition));
            }
            watched.insert(key, (p.position(), since));
        }
        self.still = watched;
        stalled
    }
}

/// One probe (blocking): the group's committed offsets of the partitions of `topics` in `marks`
/// (the keeper's last watermarks) and which of them are assigned to `consumer`.
pub(super) fn probe<X: ConsumerContext, C: Consumer<X>>(
    consumer: &C,
    marks: &Marks,
    topics: &[String],
) -> KafkaResult<Vec<Observed>> {
    let marks: Vec<_> = marks
        .iter()
        .filter(|((topic, _), _)| topics.iter().any(|t| t == topic))
        .collect();
    if marks.is_empty() {
        return Ok(Vec::new());
    }
    let assigned = consumer.assignment()?;
    let mut wanted = TopicPartitionList::new();
    for ((topic, partition), _) in &marks {
        wanted.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(wanted, Timeout::After(PROBE_TIMEOUT))?;
    Ok(marks
        .into_iter()
        .map(|((topic, partition), (low, high))| Observed {
            topic: (*topic).to_owned(),
            partition: *partition,
            committed: committed
                .find_partition(topic, *partition)
                .and_then(|p| match p.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                }),
            low: *low,
            high: *high,
            ours: assigned.find_partition(topic, *partition).is_some(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(partition: i32, committed: Option<i64>, high: i64, ours: bool) -> Observed {
        Observed {
            topic: "patient".into(),
            partition,
            committed,
            low: 0,
            high,
            ours,
        }
    }

    #[test]
    fn a_lagging_partition_nobody_moves_is_reported_after_the_wait() {
        let start = Instant::now();
        let mut dog = Watchdog::new(Duration::from_secs(18));
        let probe = [seen(0, Some(5), 9, false), seen(1, Some(4), 4, false)];
        assert!(dog.observe(start, &probe).is_empty(), "first sight");
        assert!(
            dog.observe(start + Duration::from_secs(17), &probe)
                .is_empty(),
            "not yet"
        );
        assert_eq!(
            dog.observe(start + Duration::from_secs(18), &probe),
            vec!["patient/0".to_owned()],
            "partition 1 is caught up"
        );
    }

    #[test]
    fn progress_ownership_and_catching_up_reset_the_wait() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut dog = Watchdog::new(Duration::from_secs(10));
        dog.observe(at(0), &[seen(0, Some(5), 9, false)]);
        // The owner committed further: the wait starts again.
        assert!(dog.observe(at(8), &[seen(0, Some(6), 9, false)]).is_empty());
        assert!(
            dog.observe(at(17), &[seen(0, Some(6), 9, false)])
                .is_empty()
        );
        assert_eq!(dog.observe(at(18), &[seen(0, Some(6), 9, false)]).len(), 1);
        // Ours now (we consume it ourselves): forgotten, and the wait restarts when it leaves us.
        assert!(dog.observe(at(19), &[seen(0, Some(6), 9, true)]).is_empty());
        assert!(
            dog.observe(at(20), &[seen(0, Some(6), 9, false)])
                .is_empty()
        );
        assert!(
            dog.observe(at(29), &[seen(0, Some(6), 9, false)])
                .is_empty()
        );
        // Caught up: nothing to wait for.
        assert!(
            dog.observe(at(31), &[seen(0, Some(9), 9, false)])
                .is_empty()
        );
        assert!(
            dog.observe(at(45), &[seen(0, Some(9), 9, false)])
                .is_empty()
        );
    }

    #[test]
    fn without_a_commit_the_group_starts_at_the_first_offset_kept() {
        let start = Instant::now();
        let mut dog = Watchdog::new(Duration::from_secs(1));
        let emptied = Observed {
            low: 7,
            ..seen(0, None, 7, false)
        };
        let never_read = seen(1, None, 3, false);
        let committed_before_retention = Observed {
            low: 7,
            ..seen(2, Some(2), 7, false)
        };
        let probe = [emptied, never_read, committed_before_retention];
        dog.observe(start, &probe);
        assert_eq!(
            dog.observe(start + Duration::from_secs(1), &probe),
            vec!["patient/1".to_owned()],
            "retention removed everything before the other two"
        );
    }

    #[test]
    fn the_wait_is_three_sessions_plus_at_most_one() {
        for _ in 0..20 {
            let after = Watchdog::for_session(Duration::from_secs(6)).after();
            assert!(
                after >= Duration::from_secs(18) && after < Duration::from_secs(24),
                "{after:?}"
            );
        }
    }
}
