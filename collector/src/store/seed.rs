//! Synthetic but realistic install-beacon events, for benchmarks and screenshots (hidden `seed`).

use serde_json::{Map, Value, json};

use crate::event::{Event, Fallbacks, Protocol, names};
use crate::store::{Store, StoreError};

/// A small deterministic PRNG (xorshift64*), so the same seed gives the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

const OSES: [(&str, &str, f64); 8] = [
    ("ubuntu", "22.04", 0.06),
    ("ubuntu", "24.04", 0.05),
    ("ubuntu", "20.04", 0.12),
    ("debian", "12", 0.05),
    ("debian", "11", 0.09),
    ("rhel", "9", 0.10),
    ("alpine", "3.20", 0.22),
    ("macos", "14.6", 0.08),
];
const STEPS: [(&str, i64); 5] = [
    ("download", 6),
    ("verify-checksum", 1),
    ("install-packages", 100),
    ("configure", 2),
    ("start-service", 3),
];

/// Writes about `count` events spread over the last `days` days into `store`.
pub fn seed(store: &dyn Store, count: u64, days: u32, seed: u64) -> Result<u64, StoreError> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let now = crate::clock::now_ms();
    let span = i64::from(days.max(1)) * 86_400_000;
    let mut written = 0u64;
    let mut chunk = Vec::with_capacity(10_000);
    while written + (chunk.len() as u64) < count {
        installation(&mut rng, now, span, &mut chunk);
        if chunk.len() >= 10_000 {
            written += store.insert(&chunk, now)?.stored as u64;
            chunk.clear();
        }
    }
    written += store.insert(&chunk, now)?.stored as u64;
    Ok(written)
}

fn installation(rng: &mut Rng, now: i64, span: i64, out: &mut Vec<Event>) {
    let server = rng.chance(0.7);
    let (product, version) = if server {
        ("acme-server", *rng.pick(&["1.4.2", "1.4.2", "1.4.1", "1.3.9"]))
    } else {
        ("acme-agent", *rng.pick(&["0.9.0", "0.9.0", "0.8.3"]))
    };
    let (os, os_version, fail_rate) = *rng.pick(&OSES);
    // More installs lately: bias the start towards now.
    let age = (span as f64 * (1.0 - ((rng.below(10_000) as f64) / 10_000.0).sqrt())) as i64;
    let start = now - age.clamp(60_000, span);
    let id = rng.uuid();
    if rng.chance(0.01) {
        // The installer could not fetch the beacon: one event, no installation.
        let props = json!({"product": product, "step": "beacon-download", "exit_code": 22});
        out.push(Event::new(
            Protocol::Json,
            Some(rng.uuid()),
            names::BEACON_UNAVAILABLE.into(),
            id,
            Some(crate::clock::iso(start)),
            props.as_object().cloned().unwrap_or_default(),
            Fallbacks::default(),
        ));
        return;
    }
    let agent = rng.chance(0.05).then(|| *rng.pick(&["claude-code", "cursor", "codex"]));
    let install_method = *rng.pick(&["curl-sh", "curl-sh", "curl-sh", "docker", "brew"]);
    let mut base = json!({
        "os": os, "os_version": os_version, "arch": if os == "macos" { "arm64" } else { "x86_64" },
        "cpu_count": 2 + rng.below(15), "memory_mb": 2048 * (1 + rng.below(16)),
        "container": *rng.pick(&["none", "none", "none", "docker", "kubernetes"]), "ci": rng.chance(0.1),
        "product": product, "product_version": version, "beacon_version": "0.1.0",
        "install_method": install_method, "attempt": 1,
    });
    if let (Some(agent), Some(props)) = (agent, base.as_object_mut()) {
        props.insert("agent".into(), agent.into());
    }
    let mut push = |rng: &mut Rng, name: &str, at: i64, extra: Value| {
        let mut props: Map<String, Value> = base.as_object().cloned().unwrap_or_default();
        if let Value::Object(e) = extra {
            props.extend(e);
        }
        out.push(Event::new(
            Protocol::Json,
            Some(rng.uuid()),
            name.into(),
            id.clone(),
            Some(crate::clock::iso(at.min(now))),
            props,
            Fallbacks::default(),
        ));
    };
    push(rng, names::STARTED, start, json!({}));
    let duration = 20_000 + rng.below(60_000) + if rng.chance(0.15) { rng.below(400_000) } else { 0 };
    let roll = rng.below(1000) as f64 / 1000.0;
    if roll < fail_rate {
        let (step, code) = if rng.chance(0.5) { STEPS[2] } else { *rng.pick(&STEPS) };
        let at = start + (duration / 2) as i64;
        let extra =
            json!({"step": step, "exit_code": code, "message": format!("{step} failed"), "duration_ms": duration / 2});
        push(rng, names::ERROR, at, extra);
        if rng.chance(0.3) {
            let email = format!("ops{}@example.com", rng.below(500));
            push(
                rng,
                names::SUPPORT,
                at + 60_000,
                json!({"email": email, "step": step, "message": "install fails"}),
            );
        }
        if rng.chance(0.25) {
            // Re-run after the failure: a second attempt that succeeds.
            push(rng, names::STARTED, at + 540_000, json!({"attempt": 2}));
            push(
                rng,
                names::SUCCESS,
                at + 600_000,
                json!({"attempt": 2, "duration_ms": 60_000, "total_duration_ms": 60_000}),
            );
        }
    } else if roll < fail_rate + 0.07 {
        // abandoned: nothing more
    } else {
        push(
            rng,
            names::SUCCESS,
            start + duration as i64,
            json!({"duration_ms": duration, "total_duration_ms": duration}),
        );
        if rng.chance(0.6) {
            let at = now - rng.below(86_000_000) as i64;
            push(rng, names::INSTANCE_ACTIVE, at, json!({}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ids() {
        assert_eq!(Rng(7).uuid(), Rng(7).uuid());
    }
}
