//! The public transparency page: one self-contained HTML page (no scripts, no network) of the
//! aggregates in [`PublicReport`].

use maud::html;

use super::page::{BLUE, GREY, RED, document, kpis, time};
use super::percent;
use super::svg::{self, Bar, Series};
use crate::report::public::{PublicReport, Share};

/// Renders the page.
pub fn render(r: &PublicReport) -> String {
    let subtitle = html! {
        "last 12 months · updated " (time(&r.generated_at)) " UTC · "
        a style="color:#74c0fc" href="/public.json" { "JSON" }
    };
    let main = html! {
        p.relay {
            "What the installer reports, as totals only: no installation IDs, no emails, no error messages. \
             Every group of fewer than " (r.k) " installations is counted under “other”, and a week with fewer \
             than " (r.k) " shows as 0. CI runs are left out."
        }
        @if r.products.is_empty() {
            section.product { p.empty { "Not enough installations yet." } }
        }
        @for p in &r.products {
            @let weeks: Vec<String> = p.weeks.iter().map(|w| w.week_of.clone()).collect();
            @let series = [Series {
                name: "installations per week",
                color: BLUE,
                values: p.weeks.iter().map(|w| w.installations.unwrap_or(0)).collect(),
            }];
            section.product {
                h2 { (p.product) }
                (kpis(&[
                    (p.installations.to_string(), "installations"),
                    (percent(p.success_rate), "success rate"),
                ]))
                div.charts {
                    div.wide { (svg::lines("Installations per week", &weeks, &series, 1080, 230)) }
                    (svg::bars("Operating systems", &bars(&p.os, BLUE), 520))
                    (svg::bars("Versions installed", &bars(&p.versions, BLUE), 520))
                    (svg::bars("Failures by step", &bars(&p.failure_steps, RED), 520))
                }
            }
        }
        @if let Some(n) = r.other_products {
            section.product { p { "Other products together: " b { (n) } " installations." } }
        }
    };
    document(
        "Installations — public statistics",
        "Installations: public statistics",
        subtitle,
        main,
    )
}

fn bars(shares: &[Share], color: &'static str) -> Vec<Bar> {
    shares
        .iter()
        .map(|sh| Bar {
            label: sh.name.clone(),
            value: sh.installations,
            color: if sh.name == "other" { GREY } else { color },
            note: format!("{} ({})", sh.installations, percent(sh.share)),
        })
        .collect()
}
