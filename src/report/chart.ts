/**
 * Charts as PNG files: a Vega-Lite spec compiled by vega-lite, rendered to SVG by vega's
 * headless View, rasterised by resvg. No canvas or browser needed.
 */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../util/atomic-write.js';

export async function renderPng(spec: TopLevelSpec, path: string, scale = 2): Promise<void> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, { fitTo: { mode: 'zoom', value: scale }, background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
  await writeFileAtomic(path, png);
}

export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

/** One line per series and panel, sharing the x axis. */
export function lineChartSpec(title: string, xTitle: string, panels: { title: string; series: Series[] }[], options: { logX?: boolean } = {}): TopLevelSpec {
  const values = panels.flatMap((p) => p.series.flatMap((s) => s.points.map((pt) => ({ panel: p.title, series: s.name, x: pt.x, y: pt.y }))));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    facet: { column: { field: 'panel', type: 'nominal', title: null, sort: panels.map((p) => p.title) } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 260,
      height: 200,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: xTitle, ...(options.logX ? { scale: { type: 'log' } } : {}) },
        y: { field: 'y', type: 'quantitative', title: null, scale: { zero: false } },
        color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 0 } },
      },
    },
  } as TopLevelSpec;
}
