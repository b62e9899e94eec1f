//! The merge rules: what one incoming copy does to the record the table holds (see the table
//! in the module header).

use crate::lease::Status;

/// What the table holds for a record id, as far as the merge rules care.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Current {
    pub version: u64,
    pub hash: String,
    pub changed_at_ms: u64,
    pub status: Status,
}

/// The decision for one incoming copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// No record yet: store it, `ToBeProcessed`, version 1.
    Insert,
    /// The stored record has this content already (as new or newer).
    Duplicate,
    /// The stored content again, with a later change time (a revert to it, or a later copy):
    /// nothing to deliver, but the stored change time advances to `changed_at_ms`, so an older
    /// version arriving late cannot overwrite the content.
    Touch { changed_at_ms: u64 },
    /// Older than the stored version: never overwrites it.
    Stale,
    /// A real change: store it as `version` with `status`. `fresh`: the record had settled
    /// (`Processed`/`Failed`), so it enters the due index now with its attempts reset.
    Replace {
        version: u64,
        status: Status,
        fresh: bool,
    },
}

/// The merge rules (see the module header).
pub fn merge(current: Option<&Current>, hash: &str, changed_at_ms: u64) -> Merge {
    let Some(c) = current else {
        return Merge::Insert;
    };
    if c.hash == hash {
        return if changed_at_ms > c.changed_at_ms {
            Merge::Touch { changed_at_ms }
        } else {
            Merge::Duplicate
        };
    }
    if (changed_at_ms, hash) < (c.changed_at_ms, c.hash.as_str()) {
        return Merge::Stale;
    }
    let (status, fresh) = match c.status {
        Status::InProgress => (Status::InProgress, false),
        Status::ToBeProcessed => (Status::ToBeProcessed, false),
        Status::Processed | Status::Failed => (Status::ToBeProcessed, true),
    };
    Merge::Replace {
        version: c.version + 1,
        status,
        fresh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    fn cur(version: u64, hash: &str, ts: u64, status: Status) -> Current {
        Current {
            version,
            hash: hash.into(),
            changed_at_ms: ts,
            status,
        }
    }

    #[test]
    fn a_revert_advances_the_change_time_so_a_late_older_version_is_stale() {
        // stored A@20; A again @30 (a revert); then B@25 arrives late
        let a = cur(1, "a", 20, Status::Processed);
        let Merge::Touch { changed_at_ms } = merge(Some(&a), "a", 30) else {
            panic!("a later copy of the stored content moves its time");
        };
        let touched = cur(1, "a", changed_at_ms, Status::Processed);
        assert_eq!(merge(Some(&touched), "b", 25), Merge::Stale);
    }

    #[test]
    fn the_four_merge_cases() {
        use Status::*;
        assert_eq!(merge(None, "a", 1), Merge::Insert);
        assert_eq!(
            merge(Some(&cur(3, "a", 5, Processed)), "a", 5),
            Merge::Duplicate
        );
        assert_eq!(
            merge(Some(&cur(3, "a", 5, Processed)), "a", 4),
            Merge::Duplicate
        );
        assert_eq!(
            merge(Some(&cur(3, "a", 5, Processed)), "a", 9),
            Merge::Touch { changed_at_ms: 9 }
        );
        assert_eq!(
            merge(Some(&cur(3, "b", 5, Processed)), "a", 4),
            Merge::Stale
        );
        assert_eq!(
            merge(Some(&cur(3, "b", 5, Processed)), "a", 6),
            Merge::Replace {
                version: 4,
                status: ToBeProcessed,
                fresh: true
            }
        );
        assert_eq!(
            merge(Some(&cur(3, "b", 5, InProgress)), "a", 6),
            Merge::Replace {
                version: 4,
                status: InProgress,
                fresh: false
            }
        );
        assert_eq!(
            merge(Some(&cur(1, "b", 5, ToBeProcessed)), "c", 6),
            Merge::Replace {
                version: 2,
                status: ToBeProcessed,
                fresh: false
            }
        );
        assert_eq!(
            merge(Some(&cur(1, "b", 5, Failed)), "c", 6),
            Merge::Replace {
                version: 2,
                status: ToBeProcessed,
                fresh: true
            }
        );
        // equal timestamps: the higher hash wins, whatever the arrival order
        assert_eq!(
            merge(Some(&cur(1, "b", 5, Processed)), "a", 5),
            Merge::Stale
        );
        assert!(matches!(
            merge(Some(&cur(1, "a", 5, Processed)), "b", 5),
            Merge::Replace { .. }
        ));
    }

    // ---- properties: a model of the table and the processor, driven by the merge rules ----

    /// One version of a record at the source, and the copies the source sends of it.
    #[derive(Debug, Clone)]
    struct Version {
        content: u8,
        ts: u64,
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// A copy of version `i % versions` arrives.
        Arrive(usize),
        /// The processor claims the record if it is due.
        Claim,
        /// The portal answers the claimed delivery (then the settle rules apply).
        Answer,
    }

    #[derive(Default)]
    struct Model {
        current: Option<(Current, u8)>,
        claimed: Option<(u64, u8, u64)>,
        /// (version, content, ts) as delivered, in order.
        delivered: Vec<(u64, u8, u64)>,
        /// Versions the table held at some claim.
        claimed_versions: Vec<u64>,
    }

    fn hash_of(content: u8) -> String {
        hex::encode(Sha256::digest([content]))
    }

    impl Model {
        fn arrive(&mut self, v: &Version) {
            let h = hash_of(v.content);
            match merge(self.current.as_ref().map(|c| &c.0), &h, v.ts) {
                Merge::Insert => {
                    self.current = Some((cur(1, &h, v.ts, Status::ToBeProcessed), v.content))
                }
                Merge::Duplicate | Merge::Stale => {}
                Merge::Touch { changed_at_ms } => {
                    if let Some((c, _)) = &mut self.current {
                        c.changed_at_ms = changed_at_ms;
                    }
                }
                Merge::Replace {
                    version, status, ..
                } => self.current = Some((cur(version, &h, v.ts, status), v.content)),
            }
        }
        fn claim(&mut self) {
            if let Some((c, content)) = &mut self.current {
                if c.status == Status::ToBeProcessed {
                    c.status = Status::InProgress;
                    self.claimed = Some((c.version, *content, c.changed_at_ms));
                    self.claimed_versions.push(c.version);
                }
            }
        }
        fn answer(&mut self) {
            if let (Some((version, content, ts)), Some((c, _))) =
                (self.claimed.take(), self.current.as_mut())
            {
                self.delivered.push((version, content, ts));
                // the settle: Processed only if the version is unchanged
                c.status = if c.version == version {
                    Status::Processed
                } else {
                    Status::ToBeProcessed
                };
            }
        }
        fn drain(&mut self) {
            for _ in 0..4 {
                self.claim();
                self.answer();
            }
        }
    }

    fn versions() -> impl Strategy<Value = Vec<Version>> {
        // distinct contents; timestamps may repeat (ties are ordered by hash)
        (1usize..6).prop_flat_map(|n| {
            (
                Just(n),
                proptest::collection::vec(0u64..8, n),
                proptest::sample::subsequence((0u8..40).collect::<Vec<_>>(), n),
            )
                .prop_map(|(_, ts, contents)| {
                    contents
                        .into_iter()
                        .zip(ts)
                        .map(|(content, ts)| Version { content, ts })
                        .collect()
                })
        })
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        proptest::collection::vec(
            prop_oneof![
                4 => (0usize..100).prop_map(Step::Arrive),
                1 => Just(Step::Claim),
                1 => Just(Step::Answer),
            ],
            1..80,
        )
    }

    fn newest(vs: &[Version], sent: &[usize]) -> (u64, String) {
        sent.iter()
            .map(|i| (vs[*i].ts, hash_of(vs[*i].content)))
            .max()
            .expect("something sent")
    }

    proptest! {
        /// Copies of a few contents, reverts included, in any order: what is stored is always
        /// the newest arrival by (change time, hash), never an older one that came late.
        #[test]
        fn the_stored_content_is_the_newest_arrival_even_with_reverts(
            arrivals in proptest::collection::vec((0u8..3, 0u64..10), 1..30)
        ) {
            let mut stored: Option<Current> = None;
            for (content, ts) in &arrivals {
                let h = hash_of(*content);
                match merge(stored.as_ref(), &h, *ts) {
                    Merge::Insert => stored = Some(cur(1, &h, *ts, Status::ToBeProcessed)),
                    Merge::Duplicate | Merge::Stale => {}
                    Merge::Touch { changed_at_ms } => {
                        stored.as_mut().expect("stored").changed_at_ms = changed_at_ms
                    }
                    Merge::Replace { version, status, .. } => {
                        stored = Some(cur(version, &h, *ts, status))
                    }
                }
            }
            let newest = arrivals.iter().map(|(c, t)| (*t, hash_of(*c))).max().expect("one arrival");
            let s = stored.expect("stored");
            prop_assert_eq!((s.changed_at_ms, s.hash), newest);
        }
    }

    proptest! {
        /// Any interleaving of copies, versions, claims and answers: the delivered payload in the
        /// end is the newest sent, no version is delivered twice, no delivery goes back in time,
        /// and deliveries equal the versions that were newest when claimed.
        #[test]
        fn the_newest_wins_and_nothing_is_delivered_twice(vs in versions(), steps in steps()) {
            let mut m = Model::default();
            let mut sent = vec![];
            for s in &steps {
                match s {
                    Step::Arrive(i) => {
                        let i = i % vs.len();
                        sent.push(i);
                        m.arrive(&vs[i]);
                    }
                    Step::Claim => m.claim(),
                    Step::Answer => m.answer(),
                }
            }
            // every version goes in at least once, then the processor drains
            for (i, v) in vs.iter().enumerate() { sent.push(i); m.arrive(v); }
            m.drain();
            let (ts, hash) = newest(&vs, &sent);
            let last = *m.delivered.last().expect("delivered");
            prop_assert_eq!((last.2, hash_of(last.1)), (ts, hash));
            let (c, _) = m.current.as_ref().unwrap();
            prop_assert_eq!(c.status, Status::Processed);
            let mut versions: Vec<u64> = m.delivered.iter().map(|d| d.0).collect();
            prop_assert!(versions.windows(2).all(|w| w[0] < w[1]), "versions {:?}", versions);
            let order: Vec<(u64, String)> = m.delivered.iter().map(|d| (d.2, hash_of(d.1))).collect();
            prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "went back in time: {:?}", order);
            versions.dedup();
            prop_assert_eq!(versions.len(), m.delivered.len());
            prop_assert_eq!(&m.claimed_versions, &m.delivered.iter().map(|d| d.0).collect::<Vec<_>>());
        }

        /// When the processor drains after every arrival, deliveries equal the distinct changes:
        /// the copies that were newer than everything before them.
        #[test]
        fn deliveries_equal_distinct_changes_when_drained(vs in versions(), order in proptest::collection::vec(0usize..100, 1..60)) {
            let mut m = Model::default();
            let mut best: Option<(u64, String)> = None;
            let mut changes = 0;
            for i in order {
                let v = &vs[i % vs.len()];
                let key = (v.ts, hash_of(v.content));
                if best.as_ref().is_none_or(|b| key > *b) {
                    changes += 1;
                    best = Some(key);
                }
                m.arrive(v);
                m.drain();
            }
            prop_assert_eq!(m.delivered.len(), changes);
        }

        /// Every arrival order of the same copies ends with the same stored version content.
        #[test]
        fn arrival_order_does_not_matter(vs in versions(), seed in any::<u64>()) {
            let mut forward = Model::default();
            for v in &vs { forward.arrive(v); }
            let mut shuffled: Vec<&Version> = vs.iter().collect();
            let n = shuffled.len();
            for i in 0..n { shuffled.swap(i, (seed as usize).wrapping_mul(i + 7) % n); }
            let mut other = Model::default();
            for v in shuffled { other.arrive(v); }
            prop_assert_eq!(forward.current.unwrap().1, other.current.unwrap().1);
        }
    }
}
