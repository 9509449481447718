//! The statistics page: one stacked column per bucket, drawn as inline SVG
//! on the server (no script, no external library).

use super::{breadcrumb, Page};
use crate::services::statistics::Counts;
use maud::{html, Markup};

const HEIGHT: f64 = 300.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 60.0;
const LEFT: f64 = 36.0;
const PHONE: &str = "salmon";
const EMAIL: &str = "seagreen";

/// Bucket key → label under its column (`HH:00` for hours, `MM-DD` for days).
fn label(key: &str) -> String {
    if key.len() == 13 {
        format!("{}:00", &key[11..13])
    } else if key.len() >= 10 {
        key[5..10].to_string()
    } else {
        key.to_string()
    }
}

pub fn chart(p: &Page, buckets: &[(String, Counts)]) -> Markup {
    let max = buckets.iter().map(|(_, c)| c.all).max().unwrap_or(0).max(1) as f64;
    let n = buckets.len().max(1) as f64;
    let column = 24.0;
    let width = LEFT + n * column + 10.0;
    let scale = |v: i64| v as f64 * HEIGHT / max;
    let total_height = TOP + HEIGHT + BOTTOM;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {width} {total_height}"))
            role="img" aria-label=(p.t("Registrations per period")) preserveAspectRatio="xMinYMin meet" {
            // Axis and the maximum.
            line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(TOP + HEIGHT) stroke="#999" {}
            line x1=(LEFT) y1=(TOP + HEIGHT) x2=(width) y2=(TOP + HEIGHT) stroke="#999" {}
            text x=(LEFT - 4.0) y=(TOP + 10.0) text-anchor="end" font-size="10" { (max as i64) }
            text x=(LEFT - 4.0) y=(TOP + HEIGHT) text-anchor="end" font-size="10" { "0" }
            @for (i, (key, c)) in buckets.iter().enumerate() {
                @let x = LEFT + i as f64 * column + 3.0;
                @let segments = [
                    (c.activated_email, EMAIL, "1", p.t("Activated email")),
                    (c.email - c.activated_email, EMAIL, "0.5", p.t("Unactivated email")),
                    (c.activated_phone, PHONE, "1", p.t("Activated phone")),
                    (c.phone - c.activated_phone, PHONE, "0.5", p.t("Unactivated phone")),
                ];
                g {
                    title { (key) ": " (c.all) }
                    @let mut y = TOP + HEIGHT;
                    @for (value, colour, opacity, name) in segments {
                        @if value > 0 {
                            @let h = scale(value);
                            @let top = { y -= h; y };
                            rect x=(format!("{x:.2}")) y=(format!("{top:.2}")) width=(column - 6.0) height=(format!("{h:.2}"))
                                fill=(colour) fill-opacity=(opacity) {
                                title { (name) ": " (value) }
                            }
                        }
                    }
                    @if c.all > 0 {
                        text x=(format!("{:.2}", x + (column - 6.0) / 2.0)) y=(format!("{:.2}", TOP + HEIGHT - scale(c.all) - 2.0))
                            text-anchor="middle" font-size="9" { (c.all) }
                    }
                    text x=(format!("{:.2}", x + (column - 6.0) / 2.0)) y=(TOP + HEIGHT + 8.0) font-size="9" text-anchor="end"
                        transform=(format!("rotate(-90 {:.2} {})", x + (column - 6.0) / 2.0, TOP + HEIGHT + 8.0)) { (label(key)) }
                }
            }
        }
    }
}

pub fn page(p: &Page, period: &str, buckets: &[(String, Counts)]) -> Markup {
    let total: i64 = buckets.iter().map(|(_, c)| c.all).sum();
    let tab = |name: &str, label: &'static str| {
        html! {
            @if name == period { span.current aria-current="page" { (p.t(label)) } }
            @else { a href=(format!("/admin/statistics/{name}")) { (p.t(label)) } }
        }
    };
    html! {
        (breadcrumb(p, &[(p.t("Statistics"), None)]))
        h1 { (p.t("Statistics")) }
        nav.tabs { (tab("day", "Day")) (tab("week", "Week")) (tab("month", "Month")) }
        p { (total) " " (p.t("registrations in this period.")) }
        ul.legend {
            li { span.swatch.phone.off {} (p.t("Unactivated phones")) }
            li { span.swatch.phone {} (p.t("Activated phones")) }
            li { span.swatch.email.off {} (p.t("Unactivated emails")) }
            li { span.swatch.email {} (p.t("Activated emails")) }
        }
        div.table-wrap { (chart(p, buckets)) }
    }
}
