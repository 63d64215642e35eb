/**
 * What the fleet is doing, charted live: request rate, errors and latency per route, agent and
 * chain runs, the memory cache, event lag, CPU and memory per service. Series from
 * `GET /api/dashboard/series`, fetched again every step; each chart has its latest values as
 * text beside it, for those who do not see the canvas.
 */
import { useQuery } from '@tanstack/react-query';
import { useSearchParams } from 'react-router';

import { api, data } from '../api/client';
import { Empty, Loading, PageHeader, ProblemMessage } from '../ui/states';
import { COLORS, Chart } from './Chart';
import { PANELS, align, formatValue } from './panels';

const RANGES = [
  { value: '5m', label: 'Last 5 minutes' },
  { value: '15m', label: 'Last 15 minutes' },
  { value: '1h', label: 'Last hour' },
];
/** Never more often than this, however fine the step. */
const MIN_REFRESH_MS = 2_000;

export function DashboardPage() {
  const [params, setParams] = useSearchParams();
  const range = params.get('range') ?? '15m';
  const series = useQuery({
    queryKey: ['dashboard', range],
    queryFn: () => data(api.GET('/api/dashboard/series', { params: { query: { range } } })),
    refetchInterval: (query) => Math.max(MIN_REFRESH_MS, query.state.data?.step_ms ?? 5_000),
    placeholderData: (previous) => previous,
  });
  return (
    <>
      <PageHeader title="Dashboard">
        <label className="sr-only" htmlFor="range">Time range</label>
        <select id="range" className="input w-auto" value={range} onChange={(event) => setParams({ range: event.target.value })}>
          {RANGES.map((option) => <option key={option.value} value={option.value}>{option.label}</option>)}
        </select>
      </PageHeader>
      {series.isPending && <Loading label="Loading the series" />}
      {series.error && <ProblemMessage error={series.error} />}
      {series.data && series.data.series.length === 0 && (
        <Empty title="No samples yet">The gateway samples the fleet every few seconds; the charts fill as it does.</Empty>
      )}
      {series.data && series.data.series.length > 0 && (
        <div className="grid grid-cols-1 gap-4 xl:grid-cols-2">
          {PANELS.map((panel) => {
            const aligned = align(series.data.series, panel);
            return (
              <section key={panel.id} aria-labelledby={`panel-${panel.id}`} className="card min-w-0">
                <h2 id={`panel-${panel.id}`} className="mb-2 font-semibold">{panel.title}</h2>
                {aligned.lines.length === 0 ? (
                  <p className="muted text-sm">Nothing measured in this range.</p>
                ) : (
                  <>
                    <Chart data={aligned} panel={panel} />
                    <ul aria-label={`${panel.title}, latest values`} className="mt-2 grid grid-cols-1 gap-x-4 text-xs sm:grid-cols-2">
                      {aligned.lines.map((line, index) => (
                        <li key={line.label} className="flex min-w-0 items-center gap-2">
                          <span aria-hidden="true" className="inline-block h-2 w-3 shrink-0 rounded-sm"
                            style={{ backgroundColor: COLORS[index % COLORS.length] }} />
                          <span className="truncate" title={line.label}>{line.label}</span>
                          <span className="ml-auto font-mono">{formatValue(line.last, panel.unit)}</span>
                        </li>
                      ))}
                    </ul>
                  </>
                )}
              </section>
            );
          })}
        </div>
      )}
    </>
  );
}
