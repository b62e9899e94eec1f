//! A noisy ERP, for the inbox's tests and demo: customer, product and order records in a few
//! versions each, sent as many copies per version, every copy with a fresh message id, a new
//! export time and batch, its members in another order, other whitespace, and numbers written
//! as `1500` or `1500.0`. What the portal must end with is known up front: each record's
//! newest version without its noise fields.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

/// The entity types of the template's default `InboxEntities`: type → key field.
pub const ENTITIES: [(&str, &str); 3] = [
    ("customer", "customerNo"),
    ("product", "sku"),
    ("order", "orderNo"),
];
/// The noise fields of the template's default `InboxEntities`.
pub const NOISE: [&str; 3] = ["messageId", "exportedAt", "exportBatch"];

/// One version of a record: its business content (noise-free), as the portal should get it.
#[derive(Debug, Clone)]
pub struct Version {
    pub clean: Value,
    pub changed_at_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Record {
    /// `type/key`, as the inbox names it.
    pub id: String,
    pub versions: Vec<Version>,
}

impl Record {
    pub fn newest(&self) -> &Version {
        self.versions.last().expect("a record has a version")
    }
}

/// A planned storm: the records, and every message to send (record index, version index, body).
pub struct Storm {
    pub records: Vec<Record>,
    pub messages: Vec<(usize, usize, String)>,
}

impl Storm {
    /// Distinct changes: versions over all records.
    pub fn distinct_changes(&self) -> usize {
        self.records.iter().map(|r| r.versions.len()).sum()
    }
    /// The newest clean record per id, as canonical JSON text.
    pub fn expected(&self) -> BTreeMap<String, String> {
        self.records
            .iter()
            .map(|r| {
                (
                    r.id.clone(),
                    steadfast_domain::inbox::canonical(&r.newest().clean),
                )
            })
            .collect()
    }
}

fn iso(ms: u64) -> String {
    steadfast_domain::outbox::iso_ms(ms)
}

/// The clean content of version `v` (0-based) of record `n` of `entity`.
fn content(entity: &str, key_field: &str, key: &str, v: usize, changed_at_ms: u64) -> Value {
    let mut m = Map::new();
    m.insert("entity".into(), json!(entity));
    m.insert(key_field.into(), json!(key));
    m.insert("changedAt".into(), json!(iso(changed_at_ms)));
    match entity {
        "customer" => {
            m.insert("name".into(), json!(format!("Customer {key} rev {v}")));
            m.insert("creditLimit".into(), json!(1500 + 250 * v as u64));
            m.insert(
                "address".into(),
                json!({"street": format!("Main St {}", 1 + v), "city": "Utrecht"}),
            );
        }
        "product" => {
            m.insert("title".into(), json!(format!("Product {key}")));
            m.insert("priceCents".into(), json!(999 + 100 * v as u64));
            m.insert("tags".into(), json!(["erp", format!("rev{v}")]));
        }
        _ => {
            m.insert(
                "status".into(),
                json!(["open", "confirmed", "shipped", "invoiced"][v % 4]),
            );
            m.insert("lines".into(), json!([{"sku": "P-1", "qty": 1 + v}]));
        }
    }
    Value::Object(m)
}

/// A copy of `clean` as the ERP sends it: noise added, members shuffled, whitespace and
/// number forms varied.
pub fn noisy_copy(clean: &Value, rng: &mut impl Rng) -> String {
    let Value::Object(m) = clean else {
        return clean.to_string();
    };
    let mut members: Vec<(String, Value)> = m.clone().into_iter().collect();
    members.push((
        "messageId".into(),
        json!(format!("{:032x}", rng.random::<u128>())),
    ));
    members.push((
        "exportedAt".into(),
        json!(iso(1_790_000_000_000 + rng.random_range(0..10_000_000u64))),
    ));
    members.push(("exportBatch".into(), json!(rng.random_range(1..100_000u32))));
    members.shuffle(rng);
    let space = [" ", "", "\n  ", "\t"];
    let parts: Vec<String> = members
        .iter()
        .map(|(k, v)| {
            let value = match v {
                // integral numbers sometimes as 1500.0
                Value::Number(n) if n.is_u64() && rng.random_bool(0.5) => format!("{n}.0"),
                other => other.to_string(),
            };
            let s = space[rng.random_range(0..space.len())];
            format!("{s}{}{s}:{s}{value}", Value::String(k.clone()))
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// `records` records (types in turn), 1–3 versions each with later change times, and for each
/// record up to `max_copies` copies spread over its versions (at least one per version), in
/// random order. `seed` makes it repeatable.
pub fn storm(records: usize, max_copies: usize, seed: u64) -> Storm {
    let mut rng = StdRng::seed_from_u64(seed);
    let base_ms = 1_790_000_000_000u64;
    let mut out = Storm {
        records: vec![],
        messages: vec![],
    };
    for n in 0..records {
        let (entity, key_field) = ENTITIES[n % ENTITIES.len()];
        let key = format!("{}-{n:05}", &entity[..1].to_uppercase());
        let versions: Vec<Version> = (0..rng.random_range(1..=3usize))
            .map(|v| {
                let changed_at_ms = base_ms + (v as u64) * 3_600_000 + rng.random_range(0..1000);
                Version {
                    clean: content(entity, key_field, &key, v, changed_at_ms),
                    changed_at_ms,
                }
            })
            .collect();
        let copies = rng.random_range(versions.len()..=max_copies.max(versions.len()));
        let index = out.records.len();
        for c in 0..copies {
            // every version at least once, the rest at random
            let v = if c < versions.len() {
                c
            } else {
                rng.random_range(0..versions.len())
            };
            out.messages
                .push((index, v, noisy_copy(&versions[v].clean, &mut rng)));
        }
        out.records.push(Record {
            id: format!("{entity}/{key}"),
            versions,
        });
    }
    out.messages.shuffle(&mut rng);
    out
}

/// Late copies of every record's older versions (none for single-version records).
pub fn late_copies(storm: &Storm, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    storm
        .records
        .iter()
        .flat_map(|r| r.versions[..r.versions.len() - 1].to_vec())
        .map(|v| noisy_copy(&v.clean, &mut rng))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use steadfast_domain::inbox::{canonical, InboxConfig};

    fn config() -> InboxConfig {
        let t =
            crate::template::Template::load(&crate::workspace_root().join("infra/template.yaml"))
                .expect("template");
        let entities = t.parameter_default("InboxEntities").expect("InboxEntities");
        InboxConfig::parse("/entity", &entities, 350_000).expect("the default entities parse")
    }

    #[test]
    fn every_copy_of_a_version_reads_as_the_same_content_and_versions_differ() {
        let cfg = config();
        let s = storm(30, 20, 7);
        assert!(s.messages.len() >= s.distinct_changes());
        for (r, v, body) in &s.messages {
            let i = cfg.read(body).expect("a storm copy is readable");
            let record = &s.records[*r];
            assert_eq!(i.id, record.id);
            assert_eq!(i.record, canonical(&record.versions[*v].clean), "{body}");
        }
        let hashes: std::collections::HashSet<String> = s
            .records
            .iter()
            .flat_map(|r| &r.versions)
            .map(|v| cfg.read(&v.clean.to_string()).unwrap().hash)
            .collect();
        assert_eq!(hashes.len(), s.distinct_changes());
    }
}
