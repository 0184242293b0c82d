//! The public transparency page: one self-contained HTML page (no scripts, no network) of the
//! aggregates in [`PublicReport`].

use std::fmt::Write;

use super::page::{BLUE, GREY, RED, STYLE};
use super::percent;
use super::svg::{self, Bar, Series, escape};
use crate::report::public::{PublicReport, Share};

/// Renders the page.
pub fn render(r: &PublicReport) -> String {
    let mut s = String::with_capacity(16 * 1024);
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Installations — public statistics</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style></head><body>\
         <header><h1>Installations: public statistics</h1><p>last 12 months · updated {} UTC · \
         <a style=\"color:#74c0fc\" href=\"/public.json\">JSON</a></p></header><main>\
         <p class=\"relay\">What the installer reports, as totals only: no installation IDs, no emails, no error \
         messages. Every group of fewer than {k} installations is counted under “other”, and a week with fewer \
         than {k} shows as 0. CI runs are left out.</p>",
        escape(&r.generated_at.replace('T', " ").replace('Z', "")),
        k = r.k
    );
    if r.products.is_empty() {
        s.push_str("<section class=\"product\"><p class=\"empty\">Not enough installations yet.</p></section>");
    }
    for p in &r.products {
        let _ = write!(
            s,
            "<section class=\"product\"><h2>{}</h2><div class=\"kpis\">\
             <div class=\"kpi\"><b>{}</b><span>installations</span></div>\
             <div class=\"kpi\"><b>{}</b><span>success rate</span></div></div><div class=\"charts\"><div class=\"wide\">",
            escape(&p.product),
            p.installations,
            percent(p.success_rate)
        );
        let weeks: Vec<String> = p.weeks.iter().map(|w| w.week_of.clone()).collect();
        let series = [Series {
            name: "installations per week",
            color: BLUE,
            values: p.weeks.iter().map(|w| w.installations.unwrap_or(0)).collect(),
        }];
        s.push_str(&svg::lines("Installations per week", &weeks, &series, 1080, 230));
        s.push_str("</div>");
        s.push_str(&svg::bars("Operating systems", &bars(&p.os, BLUE), 520));
        s.push_str(&svg::bars("Versions installed", &bars(&p.versions, BLUE), 520));
        s.push_str(&svg::bars("Failures by step", &bars(&p.failure_steps, RED), 520));
        s.push_str("</div></section>");
    }
    if let Some(n) = r.other_products {
        let _ = write!(
            s,
            "<section class=\"product\"><p>Other products together: <b>{n}</b> installations.</p></section>"
        );
    }
    s.push_str("</main></body></html>\n");
    s
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
