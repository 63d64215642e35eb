/** What the platform is doing now: services' health, recent runs by status, quick actions. */
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';

import { api, data } from '../api/client';
import { can, useSession } from '../auth/session';
import { listRuns, runKeys } from '../runs/queries';
import { Empty, Loading, PageHeader, ProblemMessage, StatusBadge } from '../ui/states';
import { ago } from '../ui/time';

function Health() {
  const status = useQuery({
    queryKey: ['status'],
    queryFn: () => data(api.GET('/api/status')),
    refetchInterval: 10_000,
  });
  return (
    <section aria-labelledby="health" className="card">
      <h2 id="health" className="mb-3 flex items-center gap-2 font-semibold">
        Services {status.data && <StatusBadge status={status.data.status} />}
      </h2>
      {status.isPending && <Loading />}
      {status.error && <ProblemMessage error={status.error} />}
      {status.data && (
        <ul className="grid grid-cols-1 gap-2 sm:grid-cols-2">
          {status.data.services.map((service) => (
            <li key={service.name} className="flex items-center justify-between rounded-md bg-slate-50 px-3 py-2 dark:bg-slate-800">
              <span className="text-sm">{service.name}</span>
              <StatusBadge status={service.status} />
            </li>
          ))}
          <li className="muted px-3 py-2 text-sm">
            Gateway {status.data.version}, up {Math.round(status.data.uptime_seconds / 60)} min
          </li>
        </ul>
      )}
    </section>
  );
}

function RecentRuns() {
  const runs = useQuery({ queryKey: runKeys.list(''), queryFn: () => listRuns('', 50), refetchInterval: 5_000 });
  // Counted at the time of the answer, so a render in between counts the same.
  const hourAgo = runs.dataUpdatedAt - 3_600_000;
  const lastHour = (runs.data?.runs ?? []).filter((run) => run.created_at && Date.parse(run.created_at) >= hourAgo);
  const byStatus = lastHour.reduce<Record<string, number>>((counts, run) => {
    counts[run.status] = (counts[run.status] ?? 0) + 1;
    return counts;
  }, {});
  return (
    <section aria-labelledby="recent" className="card lg:col-span-2">
      <h2 id="recent" className="mb-3 font-semibold">Recent chain runs</h2>
      {runs.isPending && <Loading />}
      {runs.error && <ProblemMessage error={runs.error} />}
      {runs.data && (
        <>
          <p className="muted mb-3 text-sm">
            Last hour: {lastHour.length === 0 ? 'no runs' : Object.entries(byStatus).map(([status, count]) => `${count} ${status}`).join(', ')}
          </p>
          {runs.data.runs.length === 0 ? (
            <Empty title="No runs yet">Start one from a template on the Runs page.</Empty>
          ) : (
            <ul className="divide-y divide-slate-200 dark:divide-slate-700">
              {runs.data.runs.slice(0, 8).map((run) => (
                <li key={run.id} className="flex items-center justify-between gap-2 py-2">
                  <Link className="link truncate" to={`/runs/${run.id}`}>{run.chain_name}</Link>
                  <span className="flex items-center gap-2 text-sm">
                    <span className="muted">{ago(run.created_at)}</span>
                    <StatusBadge status={run.status} />
                  </span>
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}

export function HomePage() {
  const state = useSession();
  return (
    <>
      <PageHeader title="Home">
        {can(state, 'agents:execute') && <Link className="btn-primary" to="/playground">Run an agent</Link>}
        {can(state, 'chains:execute') && <Link className="btn-secondary" to="/runs">Start a chain</Link>}
        <Link className="btn-secondary" to="/agents">Browse agents</Link>
      </PageHeader>
      <div className="grid grid-cols-1 gap-4 lg:grid-cols-3">
        <Health />
        <RecentRuns />
      </div>
    </>
  );
}
