//! Rendering a mail (HTML and text parts from the askama templates), which every email
//! worker pays per send: a welcome mail and an order confirmation of 1 and 20 lines.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use souk_actors::email::templates::{
    format_money, tax_label, Mail, MailLine, OrderConfirmation, Welcome,
};

fn confirmation(lines: usize) -> Mail {
    Mail::OrderConfirmation(OrderConfirmation {
        base_url: "https://shop.example".to_owned(),
        name: "Ada <Lovelace> & Co".to_owned(),
        order_id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_owned(),
        order_url: "https://shop.example/orders/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_owned(),
        pay_before: "2026-11-24 08:15 UTC".to_owned(),
        lines: (0..lines)
            .map(|index| MailLine {
                name: format!("Item <{index}> & friends"),
                sku: format!("SKU-{index}"),
                quantity: 2,
                unit_price: format_money(1999, "EUR"),
                amount: format_money(3998, "EUR"),
            })
            .collect(),
        subtotal: format_money(3998 * lines as i64, "EUR"),
        shipping: format_money(490, "EUR"),
        shipping_method: "Standard post".to_owned(),
        tax: format_money(0, "EUR"),
        tax_label: tax_label(0, true),
        total: format_money(3998 * lines as i64 + 490, "EUR"),
    })
}

fn rendering(criterion: &mut Criterion) {
    let welcome = Mail::Welcome(Welcome {
        base_url: "https://shop.example".to_owned(),
        name: "Ada Lovelace".to_owned(),
        verify_url: "https://shop.example/api/v1/auth/verify-email?token=abc".to_owned(),
        valid_hours: 48,
    });
    criterion.bench_function("render_welcome", |bench| {
        bench.iter(|| welcome.render().expect("renders"))
    });
    let mut group = criterion.benchmark_group("render_order_confirmation");
    for lines in [1, 20] {
        let mail = confirmation(lines);
        group.bench_with_input(BenchmarkId::from_parameter(lines), &mail, |bench, mail| {
            bench.iter(|| mail.render().expect("renders"))
        });
    }
    group.finish();
}

criterion_group!(benches, rendering);
criterion_main!(benches);
