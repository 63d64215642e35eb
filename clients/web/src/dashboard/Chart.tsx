/** One panel's lines as a uPlot chart (canvas), sized to its container, in the page's colours. */
import 'uplot/dist/uPlot.min.css';

import { useEffect, useRef } from 'react';
import uPlot from 'uplot';

import { type Aligned, type Panel, formatValue } from './panels';

// Okabe-Ito: told apart with the common colour blindnesses, on light and dark alike.
const COLORS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#999999'];
const HEIGHT = 220;

export function Chart({ data, panel }: { data: Aligned; panel: Panel }) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = data.lines.map((line) => line.label).join('\n');

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const ink = getComputedStyle(element).color;
    const grid = 'rgba(128, 128, 128, 0.25)';
    const axis = {
      stroke: ink,
      grid: { stroke: grid },
      ticks: { stroke: grid },
    };
    const options: uPlot.Options = {
      width: Math.max(200, element.clientWidth),
      height: HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { y: { range: (_plot, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
      series: [
        {},
        ...data.lines.map((line, index) => ({
          label: line.label,
          stroke: COLORS[index % COLORS.length] ?? '#999999',
          width: 1.5,
          value: (_plot: uPlot, value: number | null) => formatValue(value, panel.unit),
        })),
      ],
      axes: [axis, { ...axis, size: 80, values: (_plot, ticks) => ticks.map((tick) => formatValue(tick, panel.unit)) }],
    };
    const created = new uPlot(options, [data.times, ...data.lines.map((line) => line.values)], element);
    plot.current = created;
    const resize = new ResizeObserver(() => created.setSize({ width: Math.max(200, element.clientWidth), height: HEIGHT }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      created.destroy();
      plot.current = null;
    };
    // A new chart only when its lines change; new points go through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape, panel]);

  useEffect(() => {
    plot.current?.setData([data.times, ...data.lines.map((line) => line.values)]);
  }, [data]);

  return <div ref={container} aria-hidden="true" className="text-slate-700 dark:text-slate-300" />;
}

export { COLORS };
