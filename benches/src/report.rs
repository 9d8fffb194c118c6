//! Report helpers: the machine description, number formatting, target verdicts and the
//! hand-written SVG chart (no plotting dependency).

use std::fmt::Write as _;

/// The machine at the top of the report.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu: String,
    /// Online CPUs.
    pub cores: usize,
    /// `uname -r`.
    pub kernel: String,
}

/// Reads the machine description.
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel,
    }
}

/// The 1/5/15-minute load averages (`/proc/loadavg`).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// A unit of [`scaled`]: from `threshold` up, `x / divisor` with `decimals` decimals and
/// `suffix`.
struct Unit {
    threshold: f64,
    divisor: f64,
    decimals: usize,
    suffix: &'static str,
}

const fn unit(threshold: f64, divisor: f64, decimals: usize, suffix: &'static str) -> Unit {
    Unit {
        threshold,
        divisor,
        decimals,
        suffix,
    }
}

/// `x` in the first of `units` whose threshold it reaches (the last one below them all);
/// `n/a` when not finite.
fn scaled(x: f64, units: &[Unit]) -> String {
    if !x.is_finite() {
        return "n/a".to_owned();
    }
    let u = units
        .iter()
        .find(|u| x >= u.threshold)
        .unwrap_or(&units[units.len() - 1]);
    format!("{:.*}{}", u.decimals, x / u.divisor, u.suffix)
}

/// The units of [`rate`], [`ns`] and [`ratio`], largest first.
const RATE_UNITS: &[Unit] = &[
    unit(1e9, 1e9, 2, " G"),
    unit(1e6, 1e6, 2, " M"),
    unit(1e3, 1e3, 1, " k"),
    unit(0.0, 1.0, 0, ""),
];
const NS_UNITS: &[Unit] = &[
    unit(1e6, 1e6, 2, " ms"),
    unit(1e3, 1e3, 2, " µs"),
    unit(0.0, 1.0, 0, " ns"),
];
const RATIO_UNITS: &[Unit] = &[
    unit(100.0, 1.0, 0, "×"),
    unit(10.0, 1.0, 1, "×"),
    unit(0.0, 1.0, 2, "×"),
];

/// `12.3 M/s`-style rate.
pub fn rate(x: f64) -> String {
    scaled(x, RATE_UNITS)
}

/// Bytes per second as `MB/s` / `GB/s` (decimal).
pub fn bytes_rate(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.2} GB/s", x / 1e9)
    } else {
        format!("{:.1} MB/s", x / 1e6)
    }
}

/// Nanoseconds as `ns` / `µs` / `ms`.
pub fn ns(x: f64) -> String {
    scaled(x, NS_UNITS)
}

/// A ratio as `3.2×`.
pub fn ratio(x: f64) -> String {
    scaled(x, RATIO_UNITS)
}

/// Whether a target is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Met.
    Met,
    /// Missed.
    Missed,
    /// Could not be measured here (a peer is missing, an API does not exist).
    NotMeasured,
}

impl Verdict {
    /// `met` → Met, else Missed; a NaN measurement → NotMeasured.
    pub fn of(measured: f64, met: bool) -> Verdict {
        if !measured.is_finite() {
            Verdict::NotMeasured
        } else if met {
            Verdict::Met
        } else {
            Verdict::Missed
        }
    }

    /// Text for the report.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Met => "**met**",
            Verdict::Missed => "**MISSED**",
            Verdict::NotMeasured => "not measured",
        }
    }
}

/// One bar of the chart.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Label at the left.
    pub label: String,
    /// Value (must be > 0 to be drawn).
    pub value: f64,
    /// mproc's own bars are drawn in a different colour.
    pub mproc: bool,
}

/// One panel of horizontal bars on a log scale.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title above the bars.
    pub title: String,
    /// Formats a value for the label at the end of its bar.
    pub fmt: fn(f64) -> String,
    /// The bars, top to bottom.
    pub bars: Vec<Bar>,
}

const LABEL_W: f64 = 230.0;
const BAR_W: f64 = 420.0;
const ROW_H: f64 = 20.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders panels, one under the other, as an SVG document (log-scale bars).
pub fn svg(title: &str, subtitle: &str, panels: &[Panel]) -> String {
    let width = LABEL_W + BAR_W + 110.0;
    let mut y = 48.0;
    let mut body = String::new();
    for p in panels {
        let vals: Vec<f64> = p
            .bars
            .iter()
            .map(|b| b.value)
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let lo = vals.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().cloned().fold(0.0, f64::max);
        let (l0, l1) = if vals.is_empty() {
            (0.0, 1.0)
        } else {
            (
                lo.log10().floor() - 0.0,
                hi.log10().ceil().max(lo.log10().floor() + 1.0),
            )
        };
        let x_of = |v: f64| LABEL_W + BAR_W * ((v.log10() - l0) / (l1 - l0)).clamp(0.0, 1.0);
        y += 22.0;
        let _ = writeln!(
            body,
            r#"<text x="10" y="{y}" font-size="14" font-weight="bold">{}</text>"#,
            esc(&p.title)
        );
        y += 8.0;
        let top = y;
        for b in &p.bars {
            let ok = b.value.is_finite() && b.value > 0.0;
            let w = if ok {
                (x_of(b.value) - LABEL_W).max(1.0)
            } else {
                0.0
            };
            let colour = if b.mproc { "#d9480f" } else { "#4c6ef5" };
            let _ = writeln!(
                body,
                r#"<text x="{}" y="{}" font-size="12" text-anchor="end">{}</text>"#,
                LABEL_W - 6.0,
                y + 14.0,
                esc(&b.label)
            );
            let _ = writeln!(
                body,
                r#"<rect x="{LABEL_W}" y="{}" width="{w:.1}" height="{}" fill="{colour}"/>"#,
                y + 3.0,
                ROW_H - 6.0
            );
            let text = if ok {
                (p.fmt)(b.value)
            } else {
                "n/a".to_owned()
            };
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{}" font-size="11">{}</text>"#,
                LABEL_W + w + 4.0,
                y + 14.0,
                esc(&text)
            );
            y += ROW_H;
        }
        // Decade grid lines.
        let mut d = l0;
        while d <= l1 + 1e-9 {
            let x = x_of(10f64.powf(d));
            let _ = writeln!(
                body,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{y}" stroke="#adb5bd" stroke-width="0.5" stroke-dasharray="2,2"/>"##
            );
            let _ = writeln!(
                body,
                r##"<text x="{x:.1}" y="{}" font-size="9" fill="#868e96" text-anchor="middle">{}</text>"##,
                y + 11.0,
                esc(&(p.fmt)(10f64.powf(d)))
            );
            d += 1.0;
        }
        y += 18.0;
    }
    let height = y + 10.0;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="16" font-weight="bold">{}</text>
<text x="10" y="40" font-size="11" fill="#495057">{}</text>
{body}</svg>
"##,
        esc(title),
        esc(subtitle)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_take_the_unit_of_their_size() {
        type Format = fn(f64) -> String;
        let cases: [(Format, f64, &str); 14] = [
            (rate, 1.5e9, "1.50 G"),
            (rate, 2.5e6, "2.50 M"),
            (rate, 12_345.0, "12.3 k"),
            (rate, 999.4, "999"),
            (rate, -3.0, "-3"),
            (rate, f64::NAN, "n/a"),
            (ns, 1.5e6, "1.50 ms"),
            (ns, 1500.0, "1.50 µs"),
            (ns, 42.0, "42 ns"),
            (ratio, 150.0, "150×"),
            (ratio, 12.34, "12.3×"),
            (ratio, 1.234, "1.23×"),
            (ratio, f64::INFINITY, "n/a"),
            (bytes_rate, 2.5e6, "2.5 MB/s"),
        ];
        for (format, x, want) in cases {
            assert_eq!(format(x), want, "{x}");
        }
    }
}
