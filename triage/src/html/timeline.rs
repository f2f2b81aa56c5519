//! The session on a time axis (CLOCK_BOOTTIME, from its first record): a lane per finding with
//! its evidence, then refusals, connects and DNS lookups. Records are counted in a fixed number
//! of buckets, so the picture has the same size for ten records or a million.
use std::fmt::Write as _;

use warden_records::events::{Event, Record, Verdict};

use super::{Page, escape::text, titled};
use crate::detections::denied_target;

const BUCKETS: usize = 300;
const LABEL_W: usize = 210;
const PLOT_W: usize = 900;
const LANE_H: usize = 26;
const AXIS_H: usize = 26;
/// Most findings given a lane of their own.
const MAX_FINDING_LANES: usize = 20;

/// Records of one bucket of one lane.
#[derive(Clone, Copy, Default)]
struct Bucket {
    count: u64,
    first_seq: u64,
    first_boot_ns: u64,
    denied: bool,
}

struct Lane {
    /// HTML.
    label: String,
    /// The class that colours its marks (a severity, or a kind of activity).
    class: &'static str,
    buckets: Vec<Bucket>,
}

impl Lane {
    fn new(label: String, class: &'static str) -> Self {
        Lane {
            label,
            class,
            buckets: vec![Bucket::default(); BUCKETS],
        }
    }

    fn add(&mut self, b: usize, r: &Record, denied: bool) {
        let bucket = &mut self.buckets[b];
        if bucket.count == 0 {
            bucket.first_seq = r.seq;
            bucket.first_boot_ns = r.boot_ns;
        }
        bucket.count += 1;
        bucket.denied |= denied;
    }
}

pub fn section(page: &Page) -> String {
    let (Some(t0), Some(t1)) = (
        page.records.iter().map(|r| r.boot_ns).min(),
        page.records.iter().map(|r| r.boot_ns).max(),
    ) else {
        return titled("timeline", "Timeline", "The log has no records.", "");
    };
    let span = (t1 - t0).max(1);
    let lanes = lanes(page, t0, span);
    let svg = draw(page, &lanes, t0, span);
    titled(
        "timeline",
        "Timeline",
        "Time since the first record. Darker marks stand for more records; hover for how many, \
         click a finding's mark to see its record.",
        &format!("<div class=\"picture\">{svg}</div>{LEGEND}"),
    )
}

fn lanes(page: &Page, t0: u64, span: u64) -> Vec<Lane> {
    let findings = &page.report.findings;
    let mut lanes: Vec<Lane> = findings
        .iter()
        .take(MAX_FINDING_LANES)
        .map(|f| Lane::new(text(&f.detection, 30), f.severity.as_str()))
        .collect();
    let refusals = lanes.len();
    let (connects, dns) = (refusals + 1, refusals + 2);
    lanes.push(Lane::new("refusals (any layer)".into(), "refusals"));
    lanes.push(Lane::new("network connects".into(), "net"));
    lanes.push(Lane::new("DNS lookups".into(), "dns"));
    for r in page.records {
        let b = ((r.boot_ns - t0) as u128 * (BUCKETS as u128 - 1) / span as u128) as usize;
        for f in page.evidence.of(r.seq).filter(|&f| f < MAX_FINDING_LANES) {
            lanes[f].add(b, r, false);
        }
        let denied = denied_target(&r.event).is_some();
        if denied {
            lanes[refusals].add(b, r, true);
        }
        match &r.event {
            Event::NetConnect(n) => lanes[connects].add(b, r, n.verdict == Verdict::Deny),
            Event::DnsQuery(q) => lanes[dns].add(b, r, q.verdict == Verdict::Deny),
            _ => {}
        }
    }
    lanes
}

fn draw(page: &Page, lanes: &[Lane], t0: u64, span: u64) -> String {
    let width = LABEL_W + PLOT_W + 20;
    let height = AXIS_H + lanes.len() * LANE_H + 8;
    let mut svg = format!(
        "<svg class=\"timeline\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} \
         {height}\" role=\"img\" aria-label=\"timeline\">"
    );
    svg.push_str(&axis(span, height));
    let bucket_w = PLOT_W as f64 / BUCKETS as f64;
    for (k, lane) in lanes.iter().enumerate() {
        let y = AXIS_H + k * LANE_H;
        let _ = write!(
            svg,
            "<g class=\"lane {}\"><text class=\"label\" x=\"{}\" y=\"{}\" \
             text-anchor=\"end\">{}</text><rect class=\"track\" x=\"{LABEL_W}\" y=\"{}\" \
             width=\"{PLOT_W}\" height=\"{}\"/>",
            lane.class,
            LABEL_W - 10,
            y + LANE_H / 2 + 4,
            lane.label,
            y + 3,
            LANE_H - 6
        );
        let max = lane.buckets.iter().map(|b| b.count).max().unwrap_or(0);
        for (i, b) in lane.buckets.iter().enumerate().filter(|(_, b)| b.count > 0) {
            // Log scale: one record is seen, a thousand is darker, not a thousand times.
            let strength = 0.35 + 0.65 * ((b.count as f64).ln_1p() / (max as f64).ln_1p());
            let mark = format!(
                "<rect class=\"mark{}\" x=\"{:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" \
                 fill-opacity=\"{strength:.2}\"><title>{} from +{} (first seq {})</title></rect>",
                if b.denied { " denied" } else { "" },
                LABEL_W as f64 + i as f64 * bucket_w,
                y + 3,
                bucket_w.max(2.0),
                LANE_H - 6,
                super::plural(b.count, "record", "records"),
                offset(b.first_boot_ns - t0),
                b.first_seq
            );
            if page.anchors.has(b.first_seq) {
                let _ = write!(svg, "<a href=\"#seq-{}\">{mark}</a>", b.first_seq);
            } else {
                svg.push_str(&mark);
            }
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

/// Ticks at a round step, about eight over the span, labelled with the time since the start.
fn axis(span: u64, height: usize) -> String {
    const STEPS_MS: &[u64] = &[
        1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000,
        120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 10_800_000,
        21_600_000, 43_200_000, 86_400_000,
    ];
    let span_ms = span / 1_000_000;
    let step = STEPS_MS
        .iter()
        .copied()
        .find(|s| span_ms / s <= 8)
        .unwrap_or(86_400_000);
    let mut out = String::new();
    let mut t = 0;
    while t <= span_ms {
        let x = LABEL_W as f64 + t as f64 / span_ms.max(1) as f64 * PLOT_W as f64;
        let _ = write!(
            out,
            "<line class=\"tick\" x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\"/>\
             <text class=\"axis\" x=\"{x:.1}\" y=\"14\" text-anchor=\"middle\">+{}</text>",
            AXIS_H - 6,
            height - 4,
            offset(t * 1_000_000)
        );
        t += step;
    }
    out
}

/// A time since the start, as short as it reads: `350ms`, `12.5s`, `2m`, `4m05s`, `2h03m`.
fn offset(ns: u64) -> String {
    let ms = ns / 1_000_000;
    match ms {
        0 => "0s".into(),
        1..1_000 => format!("{ms}ms"),
        1_000..60_000 if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 if (ms / 1000).is_multiple_of(60) => format!("{}m", ms / 60_000),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ if (ms / 60_000).is_multiple_of(60) => format!("{}h", ms / 3_600_000),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

const LEGEND: &str = "<div class=\"legend\"><span><i class=\"critical\"></i><i class=\"high\"></i>\
    <i class=\"medium\"></i>a finding's evidence, by severity</span><span><i class=\"deny\"></i>refused</span>\
    <span><i class=\"net\"></i>connect allowed</span><span><i class=\"dns\"></i>lookup \
    allowed</span></div>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_read_short() {
        let cases = [
            (0, "0s"),
            (350_000_000, "350ms"),
            (12_000_000_000, "12s"),
            (12_500_000_000, "12.5s"),
            (245_000_000_000, "4m05s"),
            (7_380_000_000_000, "2h03m"),
            (120_000_000_000, "2m"),
            (7_200_000_000_000, "2h"),
        ];
        for (ns, want) in cases {
            assert_eq!(offset(ns), want);
        }
    }
}
