//! Small server-side SVG charts: horizontal bars and a per-day line chart. No scripts, no fonts.

use std::fmt::Write;

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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
pub fn bars(title: &str, bars: &[Bar], width: u32) -> String {
    let height = 34.0 + ROW_H * bars.len().max(1) as f64;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1) as f64;
    let plot_w = f64::from(width) - LABEL_W - 110.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" preserveAspectRatio="xMinYMin meet"><title>{t}</title><text x="0" y="18" class="ct">{t}</text>"#,
        t = escape(title)
    );
    if bars.is_empty() {
        let _ = write!(s, r#"<text x="0" y="50" class="muted">nothing to show</text>"#);
    }
    for (i, b) in bars.iter().enumerate() {
        let y = 32.0 + ROW_H * i as f64;
        let w = (b.value as f64 / max * plot_w).max(if b.value > 0 { 2.0 } else { 0.0 });
        let _ = write!(
            s,
            r#"<text x="{lx}" y="{ty}" text-anchor="end" class="lbl">{label}</text><rect x="{LABEL_W}" y="{y}" width="{w:.1}" height="20" rx="3" fill="{c}"/><text x="{nx:.1}" y="{ty}" class="val">{note}</text>"#,
            lx = LABEL_W - 8.0,
            ty = y + 15.0,
            label = escape(&truncate(&b.label, 28)),
            c = b.color,
            nx = LABEL_W + w + 6.0,
            note = escape(&b.note),
        );
    }
    s.push_str("</svg>");
    s
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
pub fn lines(title: &str, x_labels: &[String], series: &[Series<'_>], width: u32, height: u32) -> String {
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
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" preserveAspectRatio="xMinYMin meet"><title>{t}</title><text x="0" y="18" class="ct">{t}</text>"#,
        t = escape(title)
    );
    let mut lx = f64::from(width) - right;
    for ser in series.iter().rev() {
        lx -= 8.0 + 7.5 * ser.name.len() as f64 + 16.0;
        let _ = write!(
            s,
            r#"<rect x="{lx:.1}" y="8" width="12" height="12" rx="2" fill="{c}"/><text x="{tx:.1}" y="18" class="lbl">{name}</text>"#,
            c = ser.color,
            tx = lx + 16.0,
            name = escape(ser.name)
        );
    }
    for step in 0..=ticks {
        let v = tick * step;
        let y = y_at(v);
        let _ = write!(
            s,
            r#"<line x1="{left}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" text-anchor="end" class="axis">{v}</text>"#,
            x2 = left + plot_w,
            tx = left - 6.0,
            ty = y + 4.0
        );
    }
    if n == 0 {
        let _ = write!(
            s,
            r#"<text x="{left}" y="{}" class="muted">no installations yet</text>"#,
            top + 20.0
        );
    }
    // Label every few days, always the last one, never two closer than 60 px.
    let label_every = n.div_ceil(8).max(1);
    let last_x = if n == 0 { 0.0 } else { x_at(n - 1) };
    for (i, label) in x_labels.iter().enumerate() {
        let crowds_last = i + 1 < n && last_x - x_at(i) < 60.0;
        if (i % label_every == 0 && !crowds_last) || i + 1 == n {
            let _ = write!(
                s,
                r#"<text x="{x:.1}" y="{y}" text-anchor="{anchor}" class="axis">{l}</text>"#,
                anchor = if i + 1 == n && n > 1 { "end" } else { "middle" },
                x = x_at(i),
                y = f64::from(height) - 8.0,
                l = escape(label.get(5..).unwrap_or(label))
            );
        }
    }
    for ser in series {
        let points: Vec<String> = ser
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x_at(i), y_at(*v)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2.5" stroke-linejoin="round" points="{p}"/>"#,
            c = ser.color,
            p = points.join(" ")
        );
        if n <= 40 {
            for (i, v) in ser.values.iter().enumerate() {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}"/>"#,
                    x_at(i),
                    y_at(*v),
                    ser.color
                );
            }
        }
    }
    s.push_str("</svg>");
    s
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
        assert_eq!(escape("<a&'\">"), "&lt;a&amp;&#39;&quot;&gt;");
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
        assert!(svg.contains("<polyline"));
    }
}
