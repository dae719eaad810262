//! Decode throughput of `getuserdata` pages: 2,000 users with realistic mixed fields (about a
//! fifth never logged in: `null` counters, `""` last_login, `null` totalscore), string scores,
//! groups, occasional attribs/linked/multifactor. Reported in bytes/s.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const GROUPS: [&str; 8] = [
    "Engineering",
    "Finance",
    "Sales",
    "Support",
    "Domain Admins",
    "Dev Team",
    "Integration Development",
    "Contractors",
];

fn date(rng: &mut StdRng) -> String {
    format!(
        "20{:02}-{:02}-{:02} {:02}:{:02}:{:02}",
        rng.gen_range(14..25),
        rng.gen_range(1..13),
        rng.gen_range(1..29),
        rng.gen_range(0..24),
        rng.gen_range(0..60),
        rng.gen_range(0..60)
    )
}

/// A page of `n` users; `with_groups_map` adds the top-level `Groups` (unpaged shape),
/// `lenient` encodes flags/counters as strings (the variants the client must also accept).
fn page(n: usize, seed: u64, with_groups_map: bool, lenient: bool) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut users = serde_json::Map::new();
    let mut groups: serde_json::Map<String, Value> = serde_json::Map::new();
    for i in 0..n {
        let name = format!("user{i:05}.name@example-company.com");
        let never = rng.gen_bool(0.2);
        let flag = |b: bool| {
            if lenient {
                json!(if b { "1" } else { "0" })
            } else {
                json!(b)
            }
        };
        let count = |rng: &mut StdRng| {
            if never {
                Value::Null
            } else if lenient {
                json!(rng.gen_range(0..500).to_string())
            } else {
                json!(rng.gen_range(0..500))
            }
        };
        let created = date(&mut rng);
        let mut u = json!({
            "username": name,
            "fullname": if rng.gen_bool(0.9) { format!("User {i} Name") } else { String::new() },
            "mpstrength": rng.gen_range(0..101).to_string(),
            "created": created,
            "last_pw_change": created,
            "last_login": if never { String::new() } else { date(&mut rng) },
            "neverloggedin": flag(never),
            "disabled": flag(rng.gen_bool(0.05)),
            "admin": flag(rng.gen_bool(0.03)),
            "totalscore": if never { Value::Null } else { json!(format!("{:.1}", rng.gen_range(0.0..100.0))) },
            "duousername": if rng.gen_bool(0.3) { json!(name) } else { Value::Null },
            "sites": count(&mut rng),
            "notes": count(&mut rng),
            "formfills": count(&mut rng),
            "applications": count(&mut rng),
            "attachments": count(&mut rng),
            "password_reset_required": flag(never),
        });
        if rng.gen_bool(0.3) {
            u["multifactor"] = json!("lastpassauth");
        }
        if rng.gen_bool(0.05) {
            u["linked"] = json!(format!("personal{i}@gmail.com"));
        }
        if rng.gen_bool(0.1) {
            u["attribs"] =
                json!({"Department": "Finance", "EmployeeNumber": format!("{}", 100000 + i)});
        }
        let k = rng.gen_range(0..4);
        if k > 0 {
            let mine: Vec<&str> = (0..k).map(|j| GROUPS[(i + j * 3) % GROUPS.len()]).collect();
            for g in &mine {
                groups
                    .entry(g.to_string())
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .unwrap()
                    .push(json!(name));
            }
            u["groups"] = json!(mine);
        }
        users.insert(format!("{}", 449_000_000 + i * 17), u);
    }
    let mut top = json!({"total": n * 3, "count": n, "Users": users});
    if with_groups_map {
        top["Groups"] = Value::Object(groups);
    }
    top.to_string()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("getuserdata_decode");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (label, groups_map, lenient) in [
        ("page_2000_users", false, false),
        ("page_2000_users_with_groups_map", true, false),
        ("page_2000_users_string_scalars", false, true),
    ] {
        let body = page(2000, 0x1b_b1d6e, groups_map, lenient);
        assert_eq!(
            lastpass::decode::user_page(body.as_bytes())
                .unwrap()
                .users
                .len(),
            2000
        );
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(label, |b| {
            b.iter(|| lastpass::decode::user_page(black_box(body.as_bytes())).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
