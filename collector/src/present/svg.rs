//! Small server-side SVG charts: horizontal bars and a per-day line chart. No scripts, no fonts.

use maud::{Markup, html};

/// One bar: label, value, colour, and the text shown after the bar.
pub struct Bar {
    /// Left-hand label.
    pub label: String,
    /// Length of the bar.
    pub value: u64,
    /// CSS colour.
    pub color: &'static str,
    /// Text after the bar (e.g. `120 (81.7%)`).
    pub note: String,
}

const LABEL_W: f64 = 190.0;
const ROW_H: f64 = 30.0;

/// Horizontal bar chart, one row per bar, scaled to the largest value.
pub fn bars(title: &str, bars: &[Bar], width: u32) -> Markup {
    let height = 34.0 + ROW_H * bars.len().max(1) as f64;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1) as f64;
    let plot_w = f64::from(width) - LABEL_W - 110.0;
    html! {
        svg.chart role="img" xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (width) " " (height)}
            preserveAspectRatio="xMinYMin meet" {
            title { (title) }
            text x="0" y="18" class="ct" { (title) }
            @if bars.is_empty() {
                text x="0" y="50" class="muted" { "nothing to show" }
            }
            @for (i, b) in bars.iter().enumerate() {
                @let y = 32.0 + ROW_H * i as f64;
                @let w = (b.value as f64 / max * plot_w).max(if b.value > 0 { 2.0 } else { 0.0 });
                text x=(LABEL_W - 8.0) y=(y + 15.0) text-anchor="end" class="lbl" { (truncate(&b.label, 28)) }
                rect x=(LABEL_W) y=(y) width=(format!("{w:.1}")) height="20" rx="3" fill=(b.color) {}
                text x=(format!("{:.1}", LABEL_W + w + 6.0)) y=(y + 15.0) class="val" { (b.note) }
            }
        }
    }
}

/// One series of a line chart.
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// CSS colour.
    pub color: &'static str,
    /// One value per x label.
    pub values: Vec<u64>,
}

/// Line chart over labelled x positions (dates), with a y axis and a legend.
pub fn lines(title: &str, x_labels: &[String], series: &[Series<'_>], width: u32, height: u32) -> Markup {
    let (left, right, top, bottom) = (44.0, 12.0, 40.0, 28.0);
    let plot_w = f64::from(width) - left - right;
    let plot_h = f64::from(height) - top - bottom;
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let tick = nice_ceiling(max.div_ceil(4));
    let ticks = max.div_ceil(tick);
    let y_max = tick * ticks;
    let n = x_labels.len();
    let x_at = |i: usize| {
        left + if n <= 1 {
            plot_w / 2.0
        } else {
            plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y_at = |v: u64| top + plot_h - plot_h * v as f64 / y_max as f64;
    let one = |v: f64| format!("{v:.1}");
    // The legend, right-aligned: each entry's x, from the right.
    let mut lx = f64::from(width) - right;
    let legend: Vec<(f64, &Series<'_>)> = series
        .iter()
        .rev()
        .map(|ser| {
            lx -= 8.0 + 7.5 * ser.name.len() as f64 + 16.0;
            (lx, ser)
        })
        .collect();
    // Label every few days, always the last one, never two closer than 60 px.
    let label_every = n.div_ceil(8).max(1);
    let last_x = if n == 0 { 0.0 } else { x_at(n - 1) };
    let labelled = |i: usize| {
        let crowds_last = i + 1 < n && last_x - x_at(i) < 60.0;
        (i.is_multiple_of(label_every) && !crowds_last) || i + 1 == n
    };
    html! {
        svg.chart role="img" xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (width) " " (height)}
            preserveAspectRatio="xMinYMin meet" {
            title { (title) }
            text x="0" y="18" class="ct" { (title) }
            @for (lx, ser) in &legend {
                rect x=(one(*lx)) y="8" width="12" height="12" rx="2" fill=(ser.color) {}
                text x=(one(lx + 16.0)) y="18" class="lbl" { (ser.name) }
            }
            @for step in 0..=ticks {
                @let y = y_at(tick * step);
                line x1=(left) x2=(left + plot_w) y1=(one(y)) y2=(one(y)) class="grid" {}
                text x=(left - 6.0) y=(one(y + 4.0)) text-anchor="end" class="axis" { (tick * step) }
            }
            @if n == 0 {
                text x=(left) y=(top + 20.0) class="muted" { "no installations yet" }
            }
            @for (i, label) in x_labels.iter().enumerate() {
                @if labelled(i) {
                    text x=(one(x_at(i))) y=(f64::from(height) - 8.0)
                        text-anchor=(if i + 1 == n && n > 1 { "end" } else { "middle" }) class="axis" {
                        (label.get(5..).unwrap_or(label))
                    }
                }
            }
            @for ser in series {
                @let points: Vec<String> = ser.values.iter().enumerate()
                    .map(|(i, v)| format!("{:.1},{:.1}", x_at(i), y_at(*v))).collect();
                polyline fill="none" stroke=(ser.color) stroke-width="2.5" stroke-linejoin="round"
                    points=(points.join(" ")) {}
                @if n <= 40 {
                    @for (i, v) in ser.values.iter().enumerate() {
                        circle cx=(one(x_at(i))) cy=(one(y_at(*v))) r="2.5" fill=(ser.color) {}
                    }
                }
            }
        }
    }
}

/// The smallest 1/2/5×10ⁿ at or above `v`.
fn nice_ceiling(v: u64) -> u64 {
    let mut base = 1u64;
    loop {
        for m in [1, 2, 5] {
            if base.saturating_mul(m) >= v {
                return base.saturating_mul(m);
            }
        }
        if base > u64::MAX / 10 {
            return v;
        }
        base *= 10;
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_scales() {
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(120), 200);
        assert_eq!(nice_ceiling(1), 1);
        let svg = bars(
            "T",
            &[Bar {
                label: "<x>".into(),
                value: 3,
                color: "#000",
                note: "3".into(),
            }],
            600,
        );
        let svg = svg.into_string();
        assert!(svg.starts_with("<svg") && svg.contains("&lt;x&gt;"));
        let svg = lines(
            "L",
            &["2026-11-01".into()],
            &[Series {
                name: "a",
                color: "#000",
                values: vec![4],
            }],
            600,
            200,
        );
        assert!(svg.into_string().contains("<polyline"));
    }
}
