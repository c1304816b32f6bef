//! Line charts as PNG (plotters, bitmap backend): accuracy against timesteps, spike rate per
//! layer. Text uses DejaVu Sans, compiled in (`trainer/assets`, its licence beside it), so
//! charts look the same on every machine.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points `(x, y)`, in order of x.
    pub points: Vec<(f64, f64)>,
}

/// A chart: title, axis labels, lines.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Caption above the plot.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Logarithmic x axis (base 2 ticks suit timesteps 8..128).
    pub log_x: bool,
    /// The lines.
    pub series: Vec<Series>,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn register_font() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Only fails on a malformed font, which the bytes above are not; then text is
        // simply missing.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws `chart` into a PNG at `path` (800 x 500), written atomically.
pub fn line_chart(chart: &Chart, path: &Path) -> Result<()> {
    register_font();
    let fail = |e: &dyn std::fmt::Display| Error::Mismatch {
        message: format!("drawing {}: {e}", path.display()),
    };
    // A log x axis is drawn as log2(x) on a linear axis with ticks labelled 2^k, so that
    // timesteps 8, 16, ... 128 get one tick each.
    let tx = |x: f64| if chart.log_x { x.max(1e-9).log2() } else { x };
    let series: Vec<Vec<(f64, f64)>> = chart
        .series
        .iter()
        .map(|s| s.points.iter().map(|&(x, y)| (tx(x), y)).collect())
        .collect();
    let pts = series.iter().flatten();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return Err(fail(&"no points to plot"));
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.08).max(1e-3);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let tmp = crate::error::tmp_path(path).with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (800, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(&chart.title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(65);
        let mut c = builder
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| fail(&e))?;
        // Whole-number x values (log2 of timesteps, layer numbers) get one tick each.
        let whole = series.iter().flatten().all(|p| p.0.fract() == 0.0) && x1 - x0 <= 16.0;
        let ticks = if whole {
            (x1 - x0).round() as usize + 1
        } else {
            10
        };
        let fmt = |x: &f64| {
            if chart.log_x {
                format!("{}", 2f64.powf(*x).round())
            } else if whole {
                format!("{}", x.round())
            } else {
                format!("{x}")
            }
        };
        {
            {
                c.configure_mesh()
                    .x_labels(ticks)
                    .x_label_formatter(&fmt)
                    .x_desc(chart.x_label.as_str())
                    .y_desc(chart.y_label.as_str())
                    .label_style(("sans-serif", 15))
                    .draw()
                    .map_err(|e| fail(&e))?;
                for (i, (s, points)) in chart.series.iter().zip(&series).enumerate() {
                    let color = COLORS[i % COLORS.len()];
                    c.draw_series(LineSeries::new(
                        points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| fail(&e))?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                    c.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                        .map_err(|e| fail(&e))?;
                }
                c.configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 15))
                    .position(SeriesLabelPosition::LowerRight)
                    .draw()
                    .map_err(|e| fail(&e))?;
            }
        }
        root.present().map_err(|e| fail(&e))?;
    }
    std::fs::rename(&tmp, path).map_err(crate::error::io(path))
}

/// The training method a `report.json` describes.
fn method(report: &serde_json::Value) -> &'static str {
    match report["diet"]["surrogate"]["kind"].as_str() {
        Some("stdb") => "hybrid STDB",
        Some(_) => "DIET-SNN",
        None => "conversion",
    }
}

/// The two results charts of `ember plot` from `report.json` files of `ember train`,
/// `ember convert` and `ember diet`: integer-runtime accuracy against timesteps, one line
/// per method (a conversion report contributes its `timestep_sweep`, a fine-tuned one its
/// own timesteps), and spike rate per LIF layer, one line per report.
pub fn results_charts(reports: &[(String, serde_json::Value)]) -> (Chart, Chart) {
    let mut by_method: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut rates = Vec::new();
    let mut add = |m: &str, t: f64, acc: f64| match by_method.iter_mut().find(|(n, _)| n == m) {
        Some((_, pts)) => pts.push((t, 100.0 * acc)),
        None => by_method.push((m.to_string(), vec![(t, 100.0 * acc)])),
    };
    for (name, r) in reports {
        let m = method(r);
        let t = r["snn_int"]["timesteps"].as_f64().unwrap_or(0.0);
        let sweep = r["timestep_sweep"].as_array().filter(|s| !s.is_empty());
        match sweep {
            Some(points) => {
                for p in points {
                    if let (Some(t), Some(a)) =
                        (p["timesteps"].as_f64(), p["snn_int_accuracy"].as_f64())
                    {
                        add(m, t, a);
                    }
                }
            }
            None => {
                if let Some(a) = r["snn_int"]["accuracy"].as_f64() {
                    add(m, t, a);
                }
            }
        }
        let layer_rates: Vec<(f64, f64)> = r["snn_int"]["layers"]
            .as_array()
            .map(|ls| {
                ls.iter()
                    .enumerate()
                    .filter_map(|(i, l)| l["spike_rate"].as_f64().map(|s| (i as f64 + 1.0, s)))
                    .collect()
            })
            .unwrap_or_default();
        if !layer_rates.is_empty() {
            rates.push(Series {
                name: format!("{name} ({m}, T={t})"),
                points: layer_rates,
            });
        }
    }
    let series = by_method
        .into_iter()
        .map(|(name, mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series { name, points }
        })
        .collect();
    (
        Chart {
            title: "accuracy against timesteps (integer runtime)".into(),
            x_label: "timesteps T".into(),
            y_label: "test accuracy (%)".into(),
            log_x: true,
            series,
        },
        Chart {
            title: "spike rate per LIF layer (integer runtime)".into(),
            x_label: "LIF layer".into(),
            y_label: "spikes / (neurons x timesteps)".into(),
            log_x: false,
            series: rates,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png_with_two_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let chart = Chart {
            title: "accuracy against timesteps".into(),
            x_label: "timesteps".into(),
            y_label: "accuracy (%)".into(),
            log_x: true,
            series: vec![
                Series {
                    name: "a".into(),
                    points: vec![(8.0, 90.0), (16.0, 95.0), (32.0, 97.0)],
                },
                Series {
                    name: "b".into(),
                    points: vec![(8.0, 80.0), (32.0, 99.0)],
                },
            ],
        };
        line_chart(&chart, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 5000, "a chart with text, not a blank image");
    }

    #[test]
    fn no_points_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let chart = Chart {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            log_x: false,
            series: vec![],
        };
        assert!(line_chart(&chart, &dir.path().join("c.png")).is_err());
    }
}
