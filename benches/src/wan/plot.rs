//! The completion-time CDF of each client's flash crowd against the
//! bound, as an SVG (plotters' SVG backend writes `<text>` elements: no
//! font files are read).

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

/// One client's leechers' finish times, seconds, ascending.
pub struct Series<'a> {
    /// Legend label.
    pub label: &'a str,
    /// Finish times, seconds, ascending.
    pub finish_s: &'a [f64],
}

/// Draws the fraction of leechers done against time for every series,
/// with vertical lines at the `fluid_s` and `wire_s` bounds (seconds), to
/// the SVG file `path`, under `title`.
///
/// # Errors
/// When the file cannot be written.
pub fn cdf_svg(
    path: &Path,
    title: &str,
    series: &[Series<'_>],
    fluid_s: f64,
    wire_s: f64,
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("plot {}: {e}", path.display());
    let x_max = series
        .iter()
        .filter_map(|s| s.finish_s.last().copied())
        .fold(wire_s, f64::max)
        * 1.05;
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..x_max, 0.0..1.0)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds since the leechers started")
        .y_desc("fraction of leechers done")
        .draw()
        .map_err(|e| err(&e))?;
    for (x, label, color) in [
        (fluid_s, "fluid bound", BLACK),
        (wire_s, "wire-adjusted bound", RGBColor(120, 120, 120)),
    ] {
        chart
            .draw_series(LineSeries::new([(x, 0.0), (x, 1.0)], color.stroke_width(1)))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
    }
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let n = s.finish_s.len() as f64;
        let mut points = vec![(0.0, 0.0)];
        for (k, &t) in s.finish_s.iter().enumerate() {
            points.push((t, k as f64 / n));
            points.push((t, (k + 1) as f64 / n));
        }
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(s.label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_svg_with_each_label() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cdf.svg");
        let series = [
            Series {
                label: "minibit",
                finish_s: &[10.0, 11.0, 12.5],
            },
            Series {
                label: "aria2",
                finish_s: &[14.0, 15.0, 19.0],
            },
        ];
        cdf_svg(&path, "test swarm", &series, 9.0, 9.5).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        for label in ["minibit", "aria2", "fluid bound", "test swarm"] {
            assert!(svg.contains(label), "{label} missing");
        }
    }
}
