//! SVG plots of a run: reservations/s against concurrency, and latency percentiles
//! against concurrency, one panel per workload, log-log. SVG text needs no font files,
//! so nothing beyond the crate itself is needed to draw them.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::report::{CellResult, Report};
use super::workload::Workload;

const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn failed(error: impl std::fmt::Debug) -> anyhow::Error {
    anyhow::anyhow!("cannot draw the plot: {error:?}")
}

struct Line {
    label: String,
    colour: RGBColor,
    thin: bool,
    points: Vec<(f64, f64)>,
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    lines: &[Line],
) -> anyhow::Result<()> {
    let xs = lines
        .iter()
        .flat_map(|line| line.points.iter().map(|p| p.0));
    let ys = lines
        .iter()
        .flat_map(|line| line.points.iter().map(|p| p.1));
    let x_max = xs.fold(1.0_f64, f64::max) * 1.5;
    let (y_min, y_max) = ys.fold((f64::MAX, 0.0_f64), |(low, high), y| {
        (low.min(y), high.max(y))
    });
    let (y_min, y_max) = if y_max <= 0.0 {
        (0.1, 10.0)
    } else {
        (y_min.max(f64::MIN_POSITIVE) / 2.0, y_max * 2.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0.7_f64..x_max).log_scale(), (y_min..y_max).log_scale())
        .map_err(failed)?;
    chart
        .configure_mesh()
        .x_desc("concurrent clients")
        .y_desc(y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if *y >= 1.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.2}")
            }
        })
        .draw()
        .map_err(failed)?;
    for line in lines {
        let colour = line.colour;
        let style = if line.thin {
            colour.mix(0.5).stroke_width(1)
        } else {
            colour.stroke_width(2)
        };
        chart
            .draw_series(LineSeries::new(line.points.clone(), style))
            .map_err(failed)?
            .label(line.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart
            .draw_series(
                line.points
                    .iter()
                    .map(|point| Circle::new(*point, 3, colour.filled())),
            )
            .map_err(failed)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(failed)?;
    Ok(())
}

fn strategies(report: &Report) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for cell in &report.cells {
        if !names.contains(&cell.strategy) {
            names.push(cell.strategy.clone());
        }
    }
    names
}

fn series(
    report: &Report,
    workload: Workload,
    strategy: &str,
    value: impl Fn(&CellResult) -> f64,
) -> Vec<(f64, f64)> {
    report
        .cells
        .iter()
        .filter(|cell| cell.workload == workload && cell.strategy == strategy)
        .map(|cell| (cell.concurrency as f64, value(cell)))
        .filter(|(_, y)| *y > 0.0)
        .collect()
}

fn figure(
    path: &Path,
    report: &Report,
    draw: impl Fn(Workload, &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let workloads: Vec<Workload> = Workload::ALL
        .into_iter()
        .filter(|workload| report.cells.iter().any(|cell| cell.workload == *workload))
        .collect();
    let root =
        SVGBackend::new(path, (560 * workloads.len().max(1) as u32, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let areas = root.split_evenly((1, workloads.len().max(1)));
    for (workload, area) in workloads.iter().zip(areas.iter()) {
        draw(*workload, area)?;
    }
    root.present().map_err(failed)?;
    Ok(())
}

/// Draws both plots; returns (what, path) for each.
pub fn draw(
    report: &Report,
    directory: &Path,
    stamp: &str,
) -> anyhow::Result<Vec<(&'static str, PathBuf)>> {
    let names = strategies(report);
    let throughput = directory.join(format!("contention-{stamp}-throughput.svg"));
    figure(&throughput, report, |workload, area| {
        let lines: Vec<Line> = names
            .iter()
            .enumerate()
            .map(|(index, name)| Line {
                label: name.clone(),
                colour: COLOURS[index % COLOURS.len()],
                thin: false,
                points: series(report, workload, name, |cell| {
                    cell.latency.throughput_per_sec
                }),
            })
            .collect();
        panel(
            area,
            &format!("{}: successful reservations/s", workload.name()),
            "reservations/s",
            &lines,
        )
    })?;
    let latency = directory.join(format!("contention-{stamp}-latency.svg"));
    figure(&latency, report, |workload, area| {
        let mut lines = Vec::new();
        for (index, name) in names.iter().enumerate() {
            let colour = COLOURS[index % COLOURS.len()];
            lines.push(Line {
                label: format!("{name} p99"),
                colour,
                thin: false,
                points: series(report, workload, name, |cell| cell.latency.p99_ms),
            });
            lines.push(Line {
                label: format!("{name} p50"),
                colour,
                thin: true,
                points: series(report, workload, name, |cell| cell.latency.p50_ms),
            });
        }
        panel(
            area,
            &format!("{}: latency p50 (thin) and p99", workload.name()),
            "milliseconds",
            &lines,
        )
    })?;
    Ok(vec![
        ("throughput vs concurrency", throughput),
        ("latency percentiles vs concurrency", latency),
    ])
}
