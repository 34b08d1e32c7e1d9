//! SVG plots of a run: reservations/s against concurrency, and latency percentiles
//! against concurrency, one panel per workload, log-log. The x ticks are the measured
//! concurrencies and the y ticks 1-2-5 steps of each decade, each labelled with the
//! decimals it needs (so no two read alike); the legend has a strip of its own below
//! each chart, so it never covers a point. SVG text needs no font files, so nothing
//! beyond the crate itself is needed to draw them.

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

/// Radius of a data point's dot, in pixels.
const DOT: i32 = 3;
/// The legend's text: its size, and the width a character takes at most (SVG text is
/// measured by the viewer, so the layout assumes the widest).
const LEGEND_FONT: u32 = 13;
const LEGEND_CHAR_WIDTH: i32 = 8;
const LEGEND_ROW: i32 = 18;
/// The sample line before each legend label, and the gap after a label.
const LEGEND_SAMPLE: i32 = 22;
const LEGEND_GAP: i32 = 16;

/// A rectangle in the backend's pixels: (left, top) to (right, bottom), inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rect {
    pub left: i32,
    pub top: i32,
    pub right: i32,
    pub bottom: i32,
}

impl Rect {
    fn of(area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Self {
        let (x, y) = area.get_pixel_range();
        Self {
            left: x.start,
            top: y.start,
            right: x.end - 1,
            bottom: y.end - 1,
        }
    }

    #[cfg(test)]
    pub(crate) fn overlaps(&self, other: &Rect) -> bool {
        self.left <= other.right
            && other.left <= self.right
            && self.top <= other.bottom
            && other.top <= self.bottom
    }
}

/// Where a panel put things: what the tests check (the harness itself only draws).
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct PanelLayout {
    /// The plotting area, where the data is drawn.
    pub plot: Rect,
    /// The legend's box, below the chart.
    pub legend: Rect,
    /// Every data point's dot.
    pub dots: Vec<Rect>,
    pub x_labels: Vec<String>,
    pub y_labels: Vec<String>,
}

/// The x ticks: each concurrency that has data, so every tick is a measured cell.
fn x_ticks(lines: &[Line]) -> Vec<f64> {
    let mut ticks: Vec<f64> = lines
        .iter()
        .flat_map(|line| line.points.iter().map(|point| point.0))
        .collect();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    ticks
}

/// The y ticks of a log axis over `low..high`: 1, 2 and 5 times each power of ten, or
/// only the powers of ten when the range spans more than four decades.
fn y_ticks(low: f64, high: f64) -> Vec<f64> {
    let first = low.log10().floor() as i32;
    let last = high.log10().ceil() as i32;
    let steps: &[f64] = if last - first > 4 {
        &[1.0]
    } else {
        &[1.0, 2.0, 5.0]
    };
    (first..=last)
        .flat_map(|exponent| steps.iter().map(move |step| step * 10f64.powi(exponent)))
        .filter(|tick| (low..=high).contains(tick))
        .collect()
}

/// A tick's label: as many decimals as the tick needs, so no two ticks read alike.
fn tick_label(value: f64) -> String {
    if value >= 1.0 {
        format!("{value:.0}")
    } else {
        let decimals = (-value.log10()).ceil().max(0.0) as usize;
        format!("{value:.decimals$}")
    }
}

/// Rows the legend takes on a panel `width` pixels wide.
fn legend_rows(lines: &[Line], width: i32) -> i32 {
    let columns = (width - LEGEND_GAP) / legend_entry_width(lines);
    let count = lines.len() as i32;
    (count + columns.max(1) - 1) / columns.max(1)
}

fn legend_entry_width(lines: &[Line]) -> i32 {
    let longest = lines
        .iter()
        .map(|line| line.label.chars().count())
        .max()
        .unwrap_or(0) as i32;
    LEGEND_SAMPLE + 6 + longest * LEGEND_CHAR_WIDTH + LEGEND_GAP
}

/// Draws the legend in its own strip below the chart, so it can never cover a point:
/// entries in columns, left to right, then row by row.
fn legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    lines: &[Line],
) -> anyhow::Result<Rect> {
    let (width, _) = area.dim_in_pixel();
    let entry = legend_entry_width(lines);
    let columns = ((width as i32 - LEGEND_GAP) / entry).max(1);
    let rows = legend_rows(lines, width as i32);
    let used_columns = columns.min(lines.len() as i32).max(1);
    let box_width = used_columns * entry + LEGEND_GAP / 2;
    let left = (width as i32 - box_width) / 2;
    let frame = (left, 2);
    let frame_end = (left + box_width, 2 + rows * LEGEND_ROW + 8);
    area.draw(&Rectangle::new([frame, frame_end], BLACK.stroke_width(1)))
        .map_err(failed)?;
    for (index, line) in lines.iter().enumerate() {
        let (row, column) = (index as i32 / columns, index as i32 % columns);
        let x = left + LEGEND_GAP / 2 + column * entry;
        let y = 2 + 4 + row * LEGEND_ROW + LEGEND_ROW / 2;
        area.draw(&PathElement::new(
            vec![(x, y), (x + LEGEND_SAMPLE, y)],
            style(line),
        ))
        .map_err(failed)?;
        area.draw(&Text::new(
            line.label.clone(),
            (x + LEGEND_SAMPLE + 6, y - LEGEND_FONT as i32 / 2),
            ("sans-serif", LEGEND_FONT),
        ))
        .map_err(failed)?;
    }
    let origin = Rect::of(area);
    Ok(Rect {
        left: origin.left + frame.0,
        top: origin.top + frame.1,
        right: origin.left + frame_end.0,
        bottom: origin.top + frame_end.1,
    })
}

fn style(line: &Line) -> ShapeStyle {
    if line.thin {
        line.colour.mix(0.5).stroke_width(1)
    } else {
        line.colour.stroke_width(2)
    }
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    lines: &[Line],
) -> anyhow::Result<PanelLayout> {
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
    let (width, height) = area.dim_in_pixel();
    let strip = legend_rows(lines, width as i32) * LEGEND_ROW + 20;
    let (chart_area, legend_area) = area.split_vertically(height as i32 - strip);
    let x_ticks: Vec<f64> = x_ticks(lines)
        .into_iter()
        .filter(|tick| (0.7..=x_max).contains(tick))
        .collect();
    let y_ticks = y_ticks(y_min, y_max);
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0.7_f64..x_max)
                .log_scale()
                .with_key_points(x_ticks.clone()),
            (y_min..y_max).log_scale().with_key_points(y_ticks.clone()),
        )
        .map_err(failed)?;
    chart
        .configure_mesh()
        .x_desc("concurrent clients")
        .y_desc(y_label)
        .x_label_formatter(&|x| tick_label(*x))
        .y_label_formatter(&|y| tick_label(*y))
        .draw()
        .map_err(failed)?;
    let mut dots = Vec::new();
    for line in lines {
        let colour = line.colour;
        chart
            .draw_series(LineSeries::new(line.points.clone(), style(line)))
            .map_err(failed)?;
        chart
            .draw_series(
                line.points
                    .iter()
                    .map(|point| Circle::new(*point, DOT, colour.filled())),
            )
            .map_err(failed)?;
        dots.extend(line.points.iter().map(|point| {
            let (x, y) = chart.backend_coord(point);
            Rect {
                left: x - DOT,
                top: y - DOT,
                right: x + DOT,
                bottom: y + DOT,
            }
        }));
    }
    let legend = legend(&legend_area, lines)?;
    Ok(PanelLayout {
        plot: Rect::of(&chart.plotting_area().strip_coord_spec()),
        legend,
        dots,
        x_labels: x_ticks.into_iter().map(tick_label).collect(),
        y_labels: y_ticks.into_iter().map(tick_label).collect(),
    })
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
        // One point per concurrency: the first round's (the report tables every round).
        .filter(|cell| cell.workload == workload && cell.strategy == strategy && cell.round == 1)
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
        .map(|_| ())
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
        .map(|_| ())
    })?;
    Ok(vec![
        ("throughput vs concurrency", throughput),
        ("latency percentiles vs concurrency", latency),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's hot panel as the harness draws it: seven strategies over the default
    /// concurrencies, throughputs from ~300/s to ~150 000/s (the README's run).
    fn throughput_lines() -> Vec<Line> {
        let concurrency: [f64; 5] = [1.0, 16.0, 64.0, 256.0, 1024.0];
        let rates: [(&str, [f64; 5]); 7] = [
            ("mysql-tx", [3484.0, 5063.0, 4476.0, 5505.0, 4381.0]),
            ("mysql-for-update", [2896.0, 3817.0, 3798.0, 4171.0, 3397.0]),
            (
                "mysql-autocommit",
                [4614.0, 8878.0, 9503.0, 10465.0, 9112.0],
            ),
            (
                "redis-lua",
                [26997.0, 112067.0, 189884.0, 160263.0, 136238.0],
            ),
            ("souk-actor", [1847.0, 10152.0, 28651.0, 24661.0, 26202.0]),
            ("souk-http", [449.0, 1388.0, 2047.0, 1876.0, 1307.0]),
            ("souk-grpc", [326.0, 1030.0, 1384.0, 1766.0, 1726.0]),
        ];
        rates
            .iter()
            .enumerate()
            .map(|(index, (name, values))| Line {
                label: (*name).to_owned(),
                colour: COLOURS[index],
                thin: false,
                points: concurrency.into_iter().zip(*values).collect(),
            })
            .collect()
    }

    /// Latency lines: p99 and p50 per strategy, from under a millisecond up.
    fn latency_lines() -> Vec<Line> {
        let concurrency: [f64; 5] = [1.0, 16.0, 64.0, 256.0, 1024.0];
        let mut lines = Vec::new();
        for (index, (name, p50)) in [
            ("mysql-tx", 0.28),
            ("redis-lua", 0.03),
            ("souk-actor", 0.55),
            ("souk-http", 2.2),
        ]
        .into_iter()
        .enumerate()
        {
            let at = |factor: f64| -> Vec<(f64, f64)> {
                concurrency
                    .iter()
                    .map(|clients| (*clients, p50 * factor * clients.sqrt()))
                    .collect()
            };
            lines.push(Line {
                label: format!("{name} p99"),
                colour: COLOURS[index],
                thin: false,
                points: at(4.0),
            });
            lines.push(Line {
                label: format!("{name} p50"),
                colour: COLOURS[index],
                thin: true,
                points: at(1.0),
            });
        }
        lines
    }

    fn drawn(lines: &[Line], y_label: &str) -> (PanelLayout, String) {
        let mut svg = String::new();
        let layout = {
            let root = SVGBackend::with_string(&mut svg, (560, 480)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            let layout = panel(&root, "hot", y_label, lines).unwrap();
            root.present().unwrap();
            layout
        };
        (layout, svg)
    }

    fn distinct(labels: &[String]) -> bool {
        let mut sorted = labels.to_vec();
        sorted.sort();
        sorted.dedup();
        sorted.len() == labels.len()
    }

    #[test]
    fn tick_labels_are_distinct_and_drawn() {
        for (lines, y_label) in [
            (throughput_lines(), "reservations/s"),
            (latency_lines(), "milliseconds"),
        ] {
            let (layout, svg) = drawn(&lines, y_label);
            // To look at the panels: SOUK_PLOT_DUMP=<folder> writes them there.
            if let Ok(folder) = std::env::var("SOUK_PLOT_DUMP") {
                let name = y_label.replace('/', "-");
                std::fs::write(format!("{folder}/{name}.svg"), &svg).unwrap();
            }
            assert_eq!(layout.x_labels, ["1", "16", "64", "256", "1024"]);
            assert!(layout.y_labels.len() >= 3, "{:?}", layout.y_labels);
            assert!(distinct(&layout.y_labels), "{:?}", layout.y_labels);
            for label in layout.x_labels.iter().chain(&layout.y_labels) {
                assert!(
                    svg.contains(&format!(">\n{label}\n</text>")),
                    "{label} not drawn"
                );
            }
        }
        // Small and wide ranges alike: every tick reads differently.
        for (low, high) in [(0.004, 0.9), (0.05, 40.0), (3.0, 800_000.0), (0.5, 2.0)] {
            let labels: Vec<String> = y_ticks(low, high).into_iter().map(tick_label).collect();
            assert!(!labels.is_empty(), "{low}..{high}");
            assert!(distinct(&labels), "{low}..{high}: {labels:?}");
        }
    }

    #[test]
    fn the_legend_covers_no_point() {
        for (lines, y_label) in [
            (throughput_lines(), "reservations/s"),
            (latency_lines(), "milliseconds"),
        ] {
            let (layout, _) = drawn(&lines, y_label);
            let count: usize = lines.iter().map(|line| line.points.len()).sum();
            assert_eq!(layout.dots.len(), count);
            for dot in &layout.dots {
                assert!(
                    !layout.legend.overlaps(dot),
                    "{:?} covers {dot:?}",
                    layout.legend
                );
                assert!(
                    layout.plot.overlaps(dot),
                    "{dot:?} outside {:?}",
                    layout.plot
                );
            }
            assert!(!layout.legend.overlaps(&layout.plot));
            // The legend fits the panel.
            assert!(layout.legend.left >= 0 && layout.legend.right < 560);
            assert!(layout.legend.bottom < 480, "{:?}", layout.legend);
        }
    }
}
