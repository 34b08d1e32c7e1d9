//! Access-token verification, which every authenticated request pays.

use criterion::{criterion_group, criterion_main, Criterion};
use souk_actors::identity::JwtKeys;

fn verification(criterion: &mut Criterion) {
    let keys = JwtKeys::new(
        b"bench-secret-0123456789abcdef0123456789abcdef",
        "souk",
        "souk-api",
        900,
    );
    let token = keys
        .issue(
            "01890000-0000-7000-8000-000000000001",
            "customer",
            "session-1",
        )
        .expect("issue a token");
    criterion.bench_function("jwt_verify", |bench| {
        bench.iter(|| keys.verify(&token).expect("valid token"))
    });
    criterion.bench_function("jwt_issue", |bench| {
        bench.iter(|| {
            keys.issue(
                "01890000-0000-7000-8000-000000000001",
                "customer",
                "session-1",
            )
        })
    });
}

criterion_group!(benches, verification);
criterion_main!(benches);
