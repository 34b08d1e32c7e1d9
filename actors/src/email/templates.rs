//! The email templates: askama compiles and type-checks them. Every mail has an HTML
//! part (escaped: a product called `<script>` arrives as text) and a plain-text part,
//! both extending a shared layout.

use askama::Template;

use crate::catalog::service::Money;
use crate::money::Currency;
use crate::orders::placed::OrderPlaced;

/// One rendered mail, ready for a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// `1999, "EUR"` → `EUR 19.99`; minor-unit digits come from ISO 4217.
pub fn format_money(amount: i64, currency: &str) -> String {
    let digits = Currency::parse(currency)
        .map(|currency| currency.minor_digits())
        .unwrap_or(2);
    let sign = if amount < 0 { "-" } else { "" };
    let magnitude = amount.unsigned_abs();
    if digits == 0 {
        return format!("{currency} {sign}{magnitude}");
    }
    let scale = 10u64.pow(u32::from(digits));
    format!(
        "{currency} {sign}{}.{:0width$}",
        magnitude / scale,
        magnitude % scale,
        width = usize::from(digits)
    )
}

/// How a mail names an order's tax: its rate (basis points, `1900` → `19%`, `750` →
/// `7.5%`) and whether prices included it.
pub fn tax_label(rate_bps: i64, included: bool) -> String {
    let whole = rate_bps / 100;
    let rest = rate_bps % 100;
    let rate = match rest {
        0 => format!("{whole}%"),
        rest if rest % 10 == 0 => format!("{whole}.{}%", rest / 10),
        rest => format!("{whole}.{rest:02}%"),
    };
    if included {
        format!("Tax ({rate}, included)")
    } else {
        format!("Tax ({rate})")
    }
}

/// A moment as a mail states it: weekday, date, time and zone, e.g. `Monday
/// 30 November 2026 at 18:47 UTC`. Mails are written in UTC: accounts have no time
/// zone of their own, and naming the zone keeps the time unambiguous.
pub fn mail_time(at: souk_db::clock::Micros) -> String {
    souk_db::clock::to_datetime(at)
        .format("%A %-d %B %Y at %H:%M UTC")
        .to_string()
}

/// Declares a mail's data and its HTML and text templates, which share the data.
macro_rules! mail {
    ($data:ident, $html:ident, $text:ident, $html_path:tt, $text_path:tt, { $($field:ident : $type:ty),* $(,)? }) => {
        #[derive(Debug, Clone)]
        pub struct $data {
            pub base_url: String,
            $(pub $field: $type,)*
        }

        #[derive(Template)]
        #[template(path = $html_path)]
        struct $html<'a> {
            base_url: &'a str,
            $($field: &'a $type,)*
        }

        #[derive(Template)]
        #[template(path = $text_path)]
        struct $text<'a> {
            base_url: &'a str,
            $($field: &'a $type,)*
        }

        impl $data {
            fn parts(&self) -> Result<(String, String), askama::Error> {
                let html = $html { base_url: &self.base_url, $($field: &self.$field,)* }.render()?;
                let text = $text { base_url: &self.base_url, $($field: &self.$field,)* }.render()?;
                Ok((html, text))
            }
        }
    };
}

mail!(Welcome, WelcomeHtml, WelcomeText, "email/welcome.html", "email/welcome.txt", {
    name: String, verify_url: String, valid_hours: u64,
});
mail!(VerifyReminder, VerifyReminderHtml, VerifyReminderText, "email/verify_reminder.html", "email/verify_reminder.txt", {
    name: String, verify_url: String, valid_hours: u64,
});
mail!(PasswordReset, PasswordResetHtml, PasswordResetText, "email/password_reset.html", "email/password_reset.txt", {
    name: String, reset_url: String, expires_at: String,
});
mail!(EmailChangeConfirm, EmailChangeConfirmHtml, EmailChangeConfirmText, "email/email_change_confirm.html", "email/email_change_confirm.txt", {
    name: String, new_email: String, confirm_url: String, expires_at: String,
});
mail!(EmailChangeNotice, EmailChangeNoticeHtml, EmailChangeNoticeText, "email/email_change_notice.html", "email/email_change_notice.txt", {
    name: String, new_email: String, account_url: String, expires_at: String,
});
mail!(OrderConfirmation, OrderConfirmationHtml, OrderConfirmationText, "email/order_confirmation.html", "email/order_confirmation.txt", {
    name: String, order_id: String, order_url: String, pay_before: String, lines: Vec<MailLine>,
    subtotal: String, shipping: String, shipping_method: String, tax: String, tax_label: String, total: String,
});
mail!(PaymentReceived, PaymentReceivedHtml, PaymentReceivedText, "email/payment_received.html", "email/payment_received.txt", {
    name: String, order_id: String, order_url: String, total: String,
});
mail!(OrderShipped, OrderShippedHtml, OrderShippedText, "email/order_shipped.html", "email/order_shipped.txt", {
    name: String, order_id: String, order_url: String,
});
mail!(OrderCancelled, OrderCancelledHtml, OrderCancelledText, "email/order_cancelled.html", "email/order_cancelled.txt", {
    name: String, order_id: String, order_url: String, reason: String, refunded: bool, total: String,
});
mail!(OrderExpired, OrderExpiredHtml, OrderExpiredText, "email/order_expired.html", "email/order_expired.txt", {
    name: String, order_id: String, order_url: String,
});
mail!(ReturnUpdate, ReturnUpdateHtml, ReturnUpdateText, "email/return_update.html", "email/return_update.txt", {
    name: String, order_id: String, order_url: String, return_id: String, status: String, decision: String, refund: String,
});
mail!(LowStock, LowStockHtml, LowStockText, "email/low_stock.html", "email/low_stock.txt", {
    sku: String, available: i64, threshold: i64, inventory_url: String,
});

impl OrderConfirmation {
    /// The confirmation of an order as placed, amounts formatted in its currency.
    pub fn of(placed: OrderPlaced, base_url: String, name: String, order_url: String) -> Self {
        let money = |money: &Money| format_money(money.amount, &money.currency);
        Self {
            pay_before: mail_time(placed.expires_at),
            lines: placed
                .lines
                .iter()
                .map(|line| MailLine {
                    unit_price: money(&line.unit_price),
                    amount: format_money(
                        line.unit_price.amount * line.quantity,
                        &line.unit_price.currency,
                    ),
                    name: line.name.clone(),
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                })
                .collect(),
            subtotal: money(&placed.subtotal),
            shipping: money(&placed.shipping),
            shipping_method: placed.shipping_method.unwrap_or_default(),
            tax: money(&placed.tax),
            tax_label: tax_label(placed.tax_rate_bps, placed.prices_include_tax),
            total: money(&placed.total),
            base_url,
            name,
            order_id: placed.order_id,
            order_url,
        }
    }
}

/// One order line as a mail shows it, amounts already formatted.
#[derive(Debug, Clone)]
pub struct MailLine {
    pub name: String,
    pub sku: String,
    pub quantity: i64,
    pub unit_price: String,
    pub amount: String,
}

/// Every mail Souk sends.
#[derive(Debug, Clone)]
pub enum Mail {
    Welcome(Welcome),
    VerifyReminder(VerifyReminder),
    PasswordReset(PasswordReset),
    EmailChangeConfirm(EmailChangeConfirm),
    EmailChangeNotice(EmailChangeNotice),
    OrderConfirmation(OrderConfirmation),
    PaymentReceived(PaymentReceived),
    OrderShipped(OrderShipped),
    OrderCancelled(OrderCancelled),
    OrderExpired(OrderExpired),
    ReturnUpdate(ReturnUpdate),
    LowStock(LowStock),
}

impl Mail {
    /// The template's name: part of the send log's de-duplication key.
    pub fn template(&self) -> &'static str {
        match self {
            Mail::Welcome(_) => "welcome",
            Mail::VerifyReminder(_) => "verify_reminder",
            Mail::PasswordReset(_) => "password_reset",
            Mail::EmailChangeConfirm(_) => "email_change_confirm",
            Mail::EmailChangeNotice(_) => "email_change_notice",
            Mail::OrderConfirmation(_) => "order_confirmation",
            Mail::PaymentReceived(_) => "payment_received",
            Mail::OrderShipped(_) => "order_shipped",
            Mail::OrderCancelled(_) => "order_cancelled",
            Mail::OrderExpired(_) => "order_expired",
            Mail::ReturnUpdate(_) => "return_update",
            Mail::LowStock(_) => "low_stock",
        }
    }

    pub fn subject(&self) -> String {
        match self {
            Mail::Welcome(_) => "Welcome to Souk: please verify your email address".to_owned(),
            Mail::VerifyReminder(_) => "Reminder: please verify your email address".to_owned(),
            Mail::PasswordReset(_) => "Reset your Souk password".to_owned(),
            Mail::EmailChangeConfirm(_) => "Confirm your new email address".to_owned(),
            Mail::EmailChangeNotice(_) => "Your Souk email address is about to change".to_owned(),
            Mail::OrderConfirmation(mail) => {
                format!("Order {} received: awaiting payment", mail.order_id)
            }
            Mail::PaymentReceived(mail) => {
                format!("Payment received for order {}", mail.order_id)
            }
            Mail::OrderShipped(mail) => format!("Order {} shipped", mail.order_id),
            Mail::OrderCancelled(mail) => format!("Order {} cancelled", mail.order_id),
            Mail::OrderExpired(mail) => format!("Order {} expired", mail.order_id),
            Mail::ReturnUpdate(mail) => {
                format!("Your return for order {}: {}", mail.order_id, mail.status)
            }
            Mail::LowStock(mail) => format!("Low stock: {}", mail.sku),
        }
    }

    pub fn render(&self) -> Result<Rendered, askama::Error> {
        let (html, text) = match self {
            Mail::Welcome(mail) => mail.parts(),
            Mail::VerifyReminder(mail) => mail.parts(),
            Mail::PasswordReset(mail) => mail.parts(),
            Mail::EmailChangeConfirm(mail) => mail.parts(),
            Mail::EmailChangeNotice(mail) => mail.parts(),
            Mail::OrderConfirmation(mail) => mail.parts(),
            Mail::PaymentReceived(mail) => mail.parts(),
            Mail::OrderShipped(mail) => mail.parts(),
            Mail::OrderCancelled(mail) => mail.parts(),
            Mail::OrderExpired(mail) => mail.parts(),
            Mail::ReturnUpdate(mail) => mail.parts(),
            Mail::LowStock(mail) => mail.parts(),
        }?;
        Ok(Rendered {
            subject: self.subject(),
            html,
            text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tax_rates_read_as_percentages() {
        assert_eq!(tax_label(1900, true), "Tax (19%, included)");
        assert_eq!(tax_label(750, false), "Tax (7.5%)");
        assert_eq!(tax_label(1, false), "Tax (0.01%)");
        assert_eq!(tax_label(0, true), "Tax (0%, included)");
    }

    const BASE: &str = "https://shop.example";

    fn samples() -> Vec<Mail> {
        let base_url = BASE.to_owned();
        let name = "Ada <Lovelace> & Co".to_owned();
        let order_id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_owned();
        let order_url = format!("{BASE}/account/orders/{order_id}?sig=0a1b");
        let expires_at = mail_time(1_796_064_420_000_000);
        vec![
            Mail::Welcome(Welcome {
                base_url: base_url.clone(),
                name: name.clone(),
                verify_url: format!("{BASE}/account/verify-email?token=abc&x=1"),
                valid_hours: 48,
            }),
            Mail::VerifyReminder(VerifyReminder {
                base_url: base_url.clone(),
                name: name.clone(),
                verify_url: format!("{BASE}/account/verify-email?token=def"),
                valid_hours: 24,
            }),
            Mail::PasswordReset(PasswordReset {
                base_url: base_url.clone(),
                name: name.clone(),
                reset_url: format!("{BASE}/account/reset-password?token=ghi"),
                expires_at: expires_at.clone(),
            }),
            Mail::EmailChangeConfirm(EmailChangeConfirm {
                base_url: base_url.clone(),
                name: name.clone(),
                new_email: "ada@new.example".to_owned(),
                confirm_url: format!("{BASE}/account/confirm-email?token=jkl"),
                expires_at: expires_at.clone(),
            }),
            Mail::EmailChangeNotice(EmailChangeNotice {
                base_url: base_url.clone(),
                name: name.clone(),
                new_email: "ada@new.example".to_owned(),
                account_url: format!("{BASE}/account/forgot-password"),
                expires_at: expires_at.clone(),
            }),
            Mail::OrderConfirmation(OrderConfirmation {
                base_url: base_url.clone(),
                name: name.clone(),
                order_id: order_id.clone(),
                order_url: order_url.clone(),
                pay_before: expires_at.clone(),
                lines: vec![
                    MailLine {
                        name: "<script>alert(1)</script>".to_owned(),
                        sku: "SKU-1".to_owned(),
                        quantity: 2,
                        unit_price: format_money(1999, "EUR"),
                        amount: format_money(3998, "EUR"),
                    },
                    MailLine {
                        name: "Tea & biscuits".to_owned(),
                        sku: "SKU-2".to_owned(),
                        quantity: 1,
                        unit_price: format_money(250, "EUR"),
                        amount: format_money(250, "EUR"),
                    },
                ],
                subtotal: format_money(4248, "EUR"),
                shipping: format_money(490, "EUR"),
                shipping_method: "Standard & tracked".to_owned(),
                tax: format_money(756, "EUR"),
                tax_label: tax_label(1900, true),
                total: format_money(4738, "EUR"),
            }),
            Mail::PaymentReceived(PaymentReceived {
                base_url: base_url.clone(),
                name: name.clone(),
                order_id: order_id.clone(),
                order_url: order_url.clone(),
                total: format_money(4248, "EUR"),
            }),
            Mail::OrderShipped(OrderShipped {
                base_url: base_url.clone(),
                name: name.clone(),
                order_id: order_id.clone(),
                order_url: order_url.clone(),
            }),
            Mail::OrderCancelled(OrderCancelled {
                base_url: base_url.clone(),
                name: name.clone(),
                order_id: order_id.clone(),
                order_url: order_url.clone(),
                reason: "out of stock <sorry>".to_owned(),
                refunded: true,
                total: format_money(4248, "EUR"),
            }),
            Mail::OrderExpired(OrderExpired {
                base_url: base_url.clone(),
                name: name.clone(),
                order_id: order_id.clone(),
                order_url: order_url.clone(),
            }),
            Mail::ReturnUpdate(ReturnUpdate {
                base_url: base_url.clone(),
                name,
                order_id,
                order_url,
                return_id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60".to_owned(),
                status: "rejected".to_owned(),
                decision: "worn <clearly>".to_owned(),
                refund: String::new(),
            }),
            Mail::LowStock(LowStock {
                base_url,
                sku: "SKU-1".to_owned(),
                available: 2,
                threshold: 5,
                inventory_url: format!("{BASE}/admin/stock/SKU-1"),
            }),
        ]
    }

    #[test]
    fn times_in_mails_name_the_day_and_the_zone() {
        assert_eq!(
            mail_time(1_796_064_420_000_000),
            "Monday 30 November 2026 at 18:47 UTC"
        );
    }

    /// Each template's rendering is compared with the file committed in
    /// `src/email/snapshots/`; `SOUK_UPDATE_SNAPSHOTS=1` rewrites them after a change.
    #[test]
    fn templates_match_their_snapshots() {
        let directory =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/email/snapshots");
        let update = std::env::var("SOUK_UPDATE_SNAPSHOTS").is_ok_and(|value| value == "1");
        let mut mismatches = Vec::new();
        for mail in samples() {
            let rendered = mail.render().unwrap();
            for (suffix, body) in [
                ("subject.txt", format!("{}\n", rendered.subject)),
                ("html", rendered.html),
                ("txt", rendered.text),
            ] {
                let path = directory.join(format!("{}.{suffix}", mail.template()));
                if update {
                    std::fs::create_dir_all(&directory).unwrap();
                    std::fs::write(&path, &body).unwrap();
                    continue;
                }
                let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
                    panic!(
                        "no snapshot {}; run with SOUK_UPDATE_SNAPSHOTS=1",
                        path.display()
                    )
                });
                if expected != body {
                    mismatches.push(format!(
                        "{}:\n--- expected\n{expected}\n--- rendered\n{body}",
                        path.display()
                    ));
                }
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn html_parts_escape_text_and_text_parts_do_not() {
        let confirmation = samples()
            .into_iter()
            .find(|mail| mail.template() == "order_confirmation")
            .unwrap()
            .render()
            .unwrap();
        assert!(
            confirmation
                .html
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || confirmation
                    .html
                    .contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{}",
            confirmation.html
        );
        assert!(!confirmation.html.contains("<script>"));
        assert!(confirmation
            .text
            .contains("2 x <script>alert(1)</script> (SKU-1) at EUR 19.99 = EUR 39.98"));
        for total in [
            "Subtotal: EUR 42.48",
            "Shipping (Standard & tracked): EUR 4.90",
            "Tax (19%, included): EUR 7.56",
            "Total: EUR 47.38",
        ] {
            assert!(confirmation.text.contains(total), "{}", confirmation.text);
        }
    }

    #[test]
    fn links_start_with_the_public_base_url() {
        for mail in samples() {
            let rendered = mail.render().unwrap();
            assert!(
                rendered.text.contains(&format!("{BASE}/")),
                "{}",
                mail.template()
            );
            assert!(
                rendered.html.contains(&format!("href=\"{BASE}")),
                "{}",
                mail.template()
            );
        }
    }

    #[test]
    fn money_uses_the_currency_minor_digits() {
        assert_eq!(format_money(1999, "EUR"), "EUR 19.99");
        assert_eq!(format_money(5, "EUR"), "EUR 0.05");
        assert_eq!(format_money(1500, "JPY"), "JPY 1500");
        assert_eq!(format_money(12345, "KWD"), "KWD 12.345");
        assert_eq!(format_money(-250, "USD"), "USD -2.50");
    }
}
