//! The fleet page: what every branch's boxes reported, on one self-contained HTML page
//! (inline SVG, no scripts, nothing fetched), and the same data as JSON.
//!
//! Calls are positive, negative or neutral (wire version 2: the box's model judged none
//! of the deciding speaker's utterances polar), and some have no sentiment at all; every
//! share is over all calls. Batches of version-1 boxes count no neutral calls.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use sangdam_wire::Day;
use serde::{Deserialize, Serialize};

use crate::storage::Record;
use crate::Registry;

/// Days of trend shown (the newest ones).
pub const TREND_DAYS: u32 = 90;
/// Complaint terms shown.
pub const TOP_COMPLAINTS: usize = 15;
/// Branch name shown for batches from devices no longer in the registry.
pub const UNREGISTERED: &str = "미등록 장치";

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub generated_unix: u64,
    pub batches: usize,
    pub branches: Vec<BranchSummary>,
    /// Complaint terms by calls summed over every batch of every branch.
    pub top_complaints: Vec<TermCount>,
    pub devices: Vec<DeviceSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BranchSummary {
    pub branch: String,
    pub devices: Vec<String>,
    pub calls: u64,
    pub positive_calls: u64,
    pub negative_calls: u64,
    pub neutral_calls: u64,
    /// One point per day with calls, oldest first. A batch spanning several days (merged
    /// at the box) counts evenly on each of its days.
    pub trend: Vec<DayPoint>,
    /// The newest period any of the branch's boxes reported, e.g. "2026-11-03".
    pub newest_period: Option<String>,
    /// Recommendations of that newest period, most urgent first.
    pub recommendations: Vec<BranchRecommendation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayPoint {
    /// Days since 1970-01-01.
    pub day: u32,
    pub date: String,
    pub calls: f64,
    pub positive_calls: f64,
    pub negative_calls: f64,
    pub neutral_calls: f64,
    /// positive_calls / calls.
    pub positive_share: f64,
    /// neutral_calls / calls.
    pub neutral_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TermCount {
    pub term: String,
    pub calls: u64,
    /// Branches whose boxes reported it.
    pub branches: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BranchRecommendation {
    pub priority: u8,
    pub text: String,
    /// Devices that made it.
    pub devices: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceSummary {
    pub device: String,
    pub branch: String,
    pub registered: bool,
    pub batches: u64,
    pub last_seq: u64,
    /// Sequence numbers below `last_seq` that never arrived (lost, or still in the box's
    /// outbox).
    pub missing_seqs: u64,
    /// The hub's clock when the newest batch arrived, where the store keeps it.
    pub last_seen_unix: Option<u64>,
    pub newest_period: String,
    pub calls: u64,
    /// Periods merged at the box because its outbox was full.
    pub merged: u64,
    /// Batches the box reported lost.
    pub lost: u64,
}

/// The date of a day number as the boxes cut it (each in its own `store.time_zone`).
pub fn date(day: u32) -> String {
    Day(day).to_string()
}

fn period_text(p: &sangdam_wire::Period) -> String {
    if p.days <= 1 {
        p.first_day.to_string()
    } else {
        format!("{} ~ {}", p.first_day, Day(p.end_day().0 - 1))
    }
}

/// "2026-11-03 14:05 UTC".
pub fn datetime(unix: u64) -> String {
    sangdam_wire::day::format_unix_as(unix, &sangdam_wire::TimeZone::UTC, "%Y-%m-%d %H:%M UTC")
}

/// Complaint terms kept per device (the most-called ones): bounds an aggregate's size.
pub const TERMS_PER_DEVICE: usize = 200;

/// The newest period a device reported and what it recommended then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewestPeriod {
    pub period: sangdam_wire::Period,
    pub seq: u64,
    pub recommendations: Vec<sangdam_wire::Recommendation>,
}

/// Everything the fleet page needs of one device, kept up to date batch by batch (in the
/// same transaction as the batch's insert), so that a page reads one bounded record per
/// device instead of decoding every batch: at most [`TREND_DAYS`] days of trend and
/// [`TERMS_PER_DEVICE`] complaint terms, whatever the store holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceAggregate {
    pub batches: u64,
    pub last_seq: u64,
    pub last_seen: Option<u64>,
    pub newest: Option<NewestPeriod>,
    pub calls: u64,
    pub positive: u64,
    pub negative: u64,
    pub neutral: u64,
    pub merged: u64,
    pub lost: u64,
    /// Complaint term → calls.
    pub complaints: BTreeMap<String, u64>,
    /// Day → [calls, positive, negative, neutral]; a batch spanning several days counts
    /// evenly on each. Only the last [`TREND_DAYS`] days up to the device's newest.
    pub days: BTreeMap<u32, [f64; 4]>,
}

impl DeviceAggregate {
    /// Adds one stored batch (its arrival time where the store keeps it).
    pub fn add(&mut self, batch: &sangdam_wire::Batch, received_unix: Option<u64>) {
        let (h, r) = (&batch.header, &batch.report);
        self.batches += 1;
        self.last_seq = self.last_seq.max(h.seq);
        if let Some(t) = received_unix {
            self.last_seen = Some(self.last_seen.map_or(t, |s| s.max(t)));
        }
        let newer = self
            .newest
            .as_ref()
            .is_none_or(|n| (n.period.end_day(), n.seq) < (h.period.end_day(), h.seq));
        if newer {
            self.newest = Some(NewestPeriod {
                period: h.period,
                seq: h.seq,
                recommendations: r.recommendations.clone(),
            });
        }
        self.calls += r.counters.calls;
        self.positive += r.counters.positive_calls;
        self.negative += r.counters.negative_calls;
        self.neutral += r.counters.neutral_calls;
        self.merged += u64::from(r.merged);
        self.lost += u64::from(r.lost);
        for k in &r.complaints {
            *self.complaints.entry(k.term.clone()).or_default() += u64::from(k.calls);
        }
        if self.complaints.len() > TERMS_PER_DEVICE {
            let mut terms: Vec<(String, u64)> =
                std::mem::take(&mut self.complaints).into_iter().collect();
            terms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            terms.truncate(TERMS_PER_DEVICE);
            self.complaints = terms.into_iter().collect();
        }
        let span = f64::from(h.period.days.max(1));
        for day in h.period.first_day.0..h.period.end_day().0 {
            let d = self.days.entry(day).or_default();
            d[0] += r.counters.calls as f64 / span;
            d[1] += r.counters.positive_calls as f64 / span;
            d[2] += r.counters.negative_calls as f64 / span;
            d[3] += r.counters.neutral_calls as f64 / span;
        }
        if let Some(&last) = self.days.keys().next_back() {
            let keep_from = last.saturating_sub(TREND_DAYS - 1);
            self.days = self.days.split_off(&keep_from);
        }
    }
}

/// Folds stored records into one aggregate per device (what the stores keep
/// incrementally; also the reference the incremental ones are tested against).
pub fn aggregate(records: &[Record]) -> BTreeMap<String, DeviceAggregate> {
    let mut out: BTreeMap<String, DeviceAggregate> = BTreeMap::new();
    for r in records {
        out.entry(r.batch.header.device.clone())
            .or_default()
            .add(&r.batch, r.received_unix);
    }
    out
}

#[derive(Default)]
struct BranchAcc {
    devices: BTreeSet<String>,
    /// day → (calls, positive, negative, neutral)
    days: BTreeMap<u32, (f64, f64, f64, f64)>,
    calls: u64,
    positive: u64,
    negative: u64,
    neutral: u64,
}

/// Aggregates the stored batches by branch (from the registry) and device.
pub fn summarize(registry: &Registry, records: &[Record], now_unix: u64) -> Summary {
    summarize_devices(registry, &aggregate(records), now_unix)
}

/// The summary from per-device aggregates: reads nothing but them, so its cost is
/// bounded by the number of devices, not of batches.
pub fn summarize_devices(
    registry: &Registry,
    devices: &BTreeMap<String, DeviceAggregate>,
    now_unix: u64,
) -> Summary {
    let mut branches: BTreeMap<String, BranchAcc> = BTreeMap::new();
    let mut complaints: BTreeMap<&str, (u64, BTreeSet<String>)> = BTreeMap::new();
    let branch_of = |device: &str| {
        registry
            .get(device)
            .map_or(UNREGISTERED.to_owned(), |d| d.branch.clone())
    };
    for (id, dev) in devices {
        let branch = branch_of(id);
        for (term, calls) in &dev.complaints {
            let entry = complaints.entry(term.as_str()).or_default();
            entry.0 += calls;
            entry.1.insert(branch.clone());
        }
        let acc = branches.entry(branch).or_default();
        acc.devices.insert(id.clone());
        acc.calls += dev.calls;
        acc.positive += dev.positive;
        acc.negative += dev.negative;
        acc.neutral += dev.neutral;
        for (&day, v) in &dev.days {
            let d = acc.days.entry(day).or_default();
            d.0 += v[0];
            d.1 += v[1];
            d.2 += v[2];
            d.3 += v[3];
        }
    }

    let newest_day = branches
        .values()
        .filter_map(|b| b.days.keys().next_back().copied())
        .max()
        .unwrap_or(0);
    let first_shown = newest_day.saturating_sub(TREND_DAYS - 1);

    let branch_list = branches
        .into_iter()
        .map(|(name, acc)| {
            // The newest period among the branch's devices, and what it recommends.
            let newest: Vec<(&str, &NewestPeriod)> = acc
                .devices
                .iter()
                .filter_map(|d| {
                    devices
                        .get(d)
                        .and_then(|a| a.newest.as_ref())
                        .map(|n| (d.as_str(), n))
                })
                .collect();
            let newest_end = newest.iter().map(|(_, n)| n.period.end_day()).max();
            let mut recs: BTreeMap<&str, (u8, BTreeSet<String>)> = BTreeMap::new();
            let mut newest_period = None;
            for (device, n) in &newest {
                if Some(n.period.end_day()) != newest_end {
                    continue;
                }
                newest_period.get_or_insert_with(|| period_text(&n.period));
                for rec in &n.recommendations {
                    let e = recs
                        .entry(rec.text.as_str())
                        .or_insert((rec.priority, BTreeSet::new()));
                    e.0 = e.0.min(rec.priority);
                    e.1.insert((*device).to_owned());
                }
            }
            let mut recommendations: Vec<BranchRecommendation> = recs
                .into_iter()
                .map(|(text, (priority, devs))| BranchRecommendation {
                    priority,
                    text: text.to_owned(),
                    devices: devs.into_iter().collect(),
                })
                .collect();
            recommendations.sort_by(|a, b| a.priority.cmp(&b.priority).then(a.text.cmp(&b.text)));
            let trend = acc
                .days
                .range(first_shown..)
                .filter(|(_, v)| v.0 > 0.0)
                .map(|(&day, &(calls, pos, neg, neu))| DayPoint {
                    day,
                    date: date(day),
                    calls,
                    positive_calls: pos,
                    negative_calls: neg,
                    neutral_calls: neu,
                    positive_share: pos / calls,
                    neutral_share: neu / calls,
                })
                .collect();
            BranchSummary {
                branch: name,
                devices: acc.devices.into_iter().collect(),
                calls: acc.calls,
                positive_calls: acc.positive,
                negative_calls: acc.negative,
                neutral_calls: acc.neutral,
                trend,
                newest_period,
                recommendations,
            }
        })
        .collect();

    let mut top_complaints: Vec<TermCount> = complaints
        .into_iter()
        .map(|(term, (calls, branches))| TermCount {
            term: term.to_owned(),
            calls,
            branches: branches.len(),
        })
        .collect();
    top_complaints.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.term.cmp(&b.term)));
    top_complaints.truncate(TOP_COMPLAINTS);

    let device_list = devices
        .iter()
        .map(|(id, acc)| DeviceSummary {
            device: id.clone(),
            branch: branch_of(id),
            registered: registry.get(id).is_some(),
            batches: acc.batches,
            last_seq: acc.last_seq,
            missing_seqs: acc.last_seq.saturating_sub(acc.batches),
            last_seen_unix: acc.last_seen,
            newest_period: acc
                .newest
                .as_ref()
                .map(|n| period_text(&n.period))
                .unwrap_or_default(),
            calls: acc.calls,
            merged: acc.merged,
            lost: acc.lost,
        })
        .collect();

    Summary {
        generated_unix: now_unix,
        batches: devices.values().map(|d| d.batches as usize).sum(),
        branches: branch_list,
        top_complaints,
        devices: device_list,
    }
}

/// Escapes text for HTML and SVG (element content and quoted attributes).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

const FONT: &str = "'NanumGothic', 'Nanum Gothic', 'Noto Sans CJK KR', 'Malgun Gothic', sans-serif";
const POSITIVE: &str = "#2f7d4f";
const NEGATIVE: &str = "#b8442f";
const NEUTRAL: &str = "#7a8795";
const VOLUME: &str = "#c9d3dd";

/// A branch's positive share per day (line, 0–100 %) over its call volume (bars), on
/// the fleet's common day axis so that branches line up. When the branch reported
/// neutral calls, their share is a second, dashed grey line.
pub fn trend_svg(branch: &BranchSummary, first_day: u32, last_day: u32) -> String {
    let (w, h) = (640.0_f64, 200.0_f64);
    let (left, right, top, bottom) = (48.0, 16.0, 26.0, 30.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let span = f64::from(last_day.saturating_sub(first_day).max(1));
    let bar_w = (plot_w / (span + 1.0) * 0.7).clamp(1.5, 24.0);
    // Days sit inside the plot with room for half a bar at either end.
    let pad = bar_w / 2.0 + 4.0;
    let x = |day: u32| {
        if last_day == first_day {
            left + plot_w / 2.0
        } else {
            left + pad + (plot_w - 2.0 * pad) * f64::from(day - first_day) / span
        }
    };
    let y = |share: f64| top + plot_h * (1.0 - share.clamp(0.0, 1.0));
    let max_calls = branch
        .trend
        .iter()
        .map(|p| p.calls)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let label = format!("{} 긍정 통화 비율 추이", branch.branch);
    let mut s = format!(
        "<svg class=\"trend\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\" \
         viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" font-family=\"{FONT}\" font-size=\"11\">",
        escape(&label)
    );
    let _ = write!(s, "<title>{}</title>", escape(&label));
    for share in [0.0, 0.5, 1.0] {
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e3e6ea\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{}%</text>",
            w - right,
            y(share),
            y(share),
            left - 6.0,
            y(share) + 4.0,
            (share * 100.0) as u32
        );
    }
    for p in &branch.trend {
        let bh = plot_h * p.calls / max_calls;
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{bh:.1}\" fill=\"{VOLUME}\"><title>{} 통화 {:.0}건</title></rect>",
            x(p.day) - bar_w / 2.0,
            top + plot_h - bh,
            p.date,
            p.calls
        );
    }
    let points: Vec<String> = branch
        .trend
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.day), y(p.positive_share)))
        .collect();
    if points.len() > 1 {
        let _ = write!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{POSITIVE}\" stroke-width=\"2\"/>",
            points.join(" ")
        );
    }
    let neutral = branch.neutral_calls > 0;
    if neutral {
        let points: Vec<String> = branch
            .trend
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.day), y(p.neutral_share)))
            .collect();
        if points.len() > 1 {
            let _ = write!(
                s,
                "<polyline class=\"neutral\" points=\"{}\" fill=\"none\" stroke=\"{NEUTRAL}\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>",
                points.join(" ")
            );
        }
    }
    for p in &branch.trend {
        let neutral_text = if neutral {
            format!(" · 중립 {:.0}%", p.neutral_share * 100.0)
        } else {
            String::new()
        };
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{POSITIVE}\"><title>{} 긍정 {:.0}%{neutral_text} (통화 {:.0}건)</title></circle>",
            x(p.day),
            y(p.positive_share),
            p.date,
            p.positive_share * 100.0,
            p.calls
        );
    }
    let mut ticks = vec![first_day];
    if last_day > first_day + 1 {
        ticks.push(first_day + (last_day - first_day) / 2);
    }
    if last_day > first_day {
        ticks.push(last_day);
    }
    for (i, &day) in ticks.iter().enumerate() {
        let anchor = match (i, ticks.len()) {
            (_, 1) => "middle",
            (0, _) => "start",
            (i, n) if i + 1 == n => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"#555\">{}</text>",
            x(day),
            h - 10.0,
            date(day)
        );
    }
    if neutral {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{NEUTRAL}\">┅ 중립 비율</text>",
            w - right - 160.0,
            12.0
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{POSITIVE}\">— 긍정 비율</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#7a8795\">▮ 통화 수</text></svg>",
        w - right,
        12.0,
        w - right - 80.0,
        12.0
    );
    s
}

/// Horizontal bars of the fleet's top complaint terms.
pub fn complaints_svg(terms: &[TermCount]) -> String {
    let row = 24.0_f64;
    let (w, label_w, value_w) = (640.0_f64, 120.0_f64, 70.0_f64);
    let h = row * terms.len() as f64 + 12.0;
    let max = terms.iter().map(|t| t.calls).max().unwrap_or(1).max(1) as f64;
    let mut s = format!(
        "<svg class=\"complaints\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"전체 지점 불만 키워드\" \
         viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" font-family=\"{FONT}\" font-size=\"13\">\
         <title>전체 지점 불만 키워드</title>"
    );
    for (i, t) in terms.iter().enumerate() {
        let y0 = 6.0 + row * i as f64;
        let bw = ((w - label_w - value_w) * t.calls as f64 / max).max(1.0);
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{NEGATIVE}\" rx=\"2\"><title>{}: 통화 {}건, 지점 {}곳</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\">{}</text>",
            label_w - 8.0,
            y0 + 16.0,
            escape(&t.term),
            y0 + 3.0,
            row - 6.0,
            escape(&t.term),
            t.calls,
            t.branches,
            label_w + bw + 6.0,
            y0 + 16.0,
            t.calls
        );
    }
    s.push_str("</svg>");
    s
}

/// The fleet page: one HTML file, inline SVG, Korean text, nothing fetched.
pub fn render_html(summary: &Summary) -> String {
    let mut s = String::with_capacity(16 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>상담 허브 — 전체 지점 현황</title><style>\
         body{{font-family:{FONT};margin:24px auto;max-width:1000px;color:#222;padding:0 16px}}\
         h1{{font-size:24px;margin-bottom:4px}} h2{{font-size:19px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}}\
         h3{{font-size:16px;margin:18px 0 6px}} .meta{{color:#666}} small{{color:#666;font-weight:normal}}\
         table{{border-collapse:collapse;font-size:14px}} th,td{{border-bottom:1px solid #e6e6e6;padding:4px 10px;text-align:left}}\
         td.n,th.n{{text-align:right}} .warn{{color:{NEGATIVE};font-weight:bold}} .branch{{margin-bottom:12px}}\
         ol{{margin:4px 0 12px}} .prio{{display:inline-block;min-width:1.6em;color:#fff;background:#56697d;border-radius:3px;text-align:center;margin-right:6px;font-size:12px}}\
         </style></head><body>\n<h1>전체 지점 현황</h1>\n<p class=\"meta\">배치 {}개 · 지점 {}곳 · 장치 {}대 · {} 기준</p>\n",
        summary.batches,
        summary.branches.len(),
        summary.devices.len(),
        datetime(summary.generated_unix)
    );
    if summary.batches == 0 {
        s.push_str("<p>아직 받은 배치가 없습니다. 상담 상자가 보고를 올리면 여기에 나타납니다.</p>\n</body></html>\n");
        return s;
    }

    // Trend per branch, on one day axis.
    let first = summary
        .branches
        .iter()
        .filter_map(|b| b.trend.first().map(|p| p.day))
        .min()
        .unwrap_or(0);
    let last = summary
        .branches
        .iter()
        .filter_map(|b| b.trend.last().map(|p| p.day))
        .max()
        .unwrap_or(first);
    s.push_str("<section id=\"trend\"><h2>지점별 긍정 통화 비율 추이</h2>\n");
    for b in &summary.branches {
        let share = |n: u64| {
            if b.calls > 0 {
                format!("{:.0}%", 100.0 * n as f64 / b.calls as f64)
            } else {
                "—".into()
            }
        };
        let _ = write!(
            s,
            "<div class=\"branch\"><h3>{} <small>통화 {}건 · 긍정 {} · 중립 {} · 부정 {} · 장치 {}대</small></h3>",
            escape(&b.branch),
            b.calls,
            share(b.positive_calls),
            share(b.neutral_calls),
            share(b.negative_calls),
            b.devices.len()
        );
        if b.trend.is_empty() {
            s.push_str("<p>최근 통화가 없습니다.</p>");
        } else {
            s.push_str(&trend_svg(b, first, last));
        }
        s.push_str("</div>\n");
    }
    s.push_str("</section>\n");

    s.push_str("<section id=\"complaints\"><h2>전체 지점 주요 불만 키워드</h2>\n");
    if summary.top_complaints.is_empty() {
        s.push_str("<p>보고된 불만 키워드가 없습니다.</p>");
    } else {
        s.push_str(&complaints_svg(&summary.top_complaints));
        s.push_str("<table><tr><th>키워드</th><th class=\"n\">부정 통화 수</th><th class=\"n\">지점 수</th></tr>");
        for t in &summary.top_complaints {
            let _ = write!(
                s,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&t.term),
                t.calls,
                t.branches
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</section>\n");

    s.push_str("<section id=\"recommendations\"><h2>지점별 권장 조치</h2>\n");
    for b in &summary.branches {
        let _ = write!(
            s,
            "<h3>{} <small>{}</small></h3>",
            escape(&b.branch),
            escape(b.newest_period.as_deref().unwrap_or(""))
        );
        if b.recommendations.is_empty() {
            s.push_str("<p>권장 조치가 없습니다.</p>\n");
            continue;
        }
        s.push_str("<ol>");
        for r in &b.recommendations {
            let _ = write!(
                s,
                "<li><span class=\"prio\">{}</span>{}</li>",
                r.priority,
                escape(&r.text)
            );
        }
        s.push_str("</ol>\n");
    }
    s.push_str("</section>\n");

    s.push_str(
        "<section id=\"devices\"><h2>장치 상태</h2>\n<table><tr><th>장치</th><th>지점</th>\
         <th>마지막 수신</th><th class=\"n\">마지막 순번</th><th class=\"n\">받은 배치</th>\
         <th class=\"n\">빠진 순번</th><th>최근 기간</th><th class=\"n\">병합</th><th class=\"n\">유실</th></tr>",
    );
    for d in &summary.devices {
        let flag = |n: u64| {
            if n > 0 {
                format!("<td class=\"n warn\">{n}</td>")
            } else {
                "<td class=\"n\">0</td>".to_owned()
            }
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>{}<td>{}</td>{}{}</tr>",
            escape(&d.device),
            escape(&d.branch),
            if d.registered { "" } else { " <span class=\"warn\">(등록 해제됨)</span>" },
            d.last_seen_unix.map(datetime).unwrap_or_else(|| "—".into()),
            d.last_seq,
            d.batches,
            flag(d.missing_seqs),
            escape(&d.newest_period),
            flag(d.merged),
            flag(d.lost),
        );
    }
    s.push_str("</table></section>\n</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(19_723), "2024-01-01");
        assert_eq!(date(20_758), "2026-11-01");
        assert_eq!(date(11_016), "2000-02-29");
        assert_eq!(datetime(86_400 + 3_723), "1970-01-02 01:02 UTC");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
