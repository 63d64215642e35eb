/** Chain runs, newest first, filtered by status, chain and when they were created; and a form to start one. */
import { useMutation, useQuery } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';

import { can, useSession } from '../auth/session';
import { Empty, Loading, PageHeader, ProblemMessage, StatusBadge } from '../ui/states';
import { ago } from '../ui/time';
import { chainKeys, listChains, listRuns, runKeys, startRun } from './queries';
import { isTimeFilter, windowOf } from './window';

const STATUSES = ['pending', 'running', 'waiting', 'completed', 'failed', 'cancelled'];

function StartRun() {
  const chains = useQuery({ queryKey: chainKeys.all, queryFn: listChains });
  const navigate = useNavigate();
  const [chain, setChain] = useState('');
  const [input, setInput] = useState('{}');
  const [inputError, setInputError] = useState<string | null>(null);
  const start = useMutation({
    mutationFn: ({ key, body }: { key: string; body: Record<string, unknown> }) => {
      const [origin, name] = key.split(':', 2);
      return startRun(origin === 'template' ? { template: name ?? '' } : { chainId: name ?? '' }, body);
    },
    onSuccess: (run) => navigate(`/runs/${run.id}`),
  });

  function submit(event: FormEvent) {
    event.preventDefault();
    let body: unknown;
    try {
      body = JSON.parse(input);
    } catch {
      setInputError('Not valid JSON');
      return;
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      setInputError('The input must be a JSON object');
      return;
    }
    setInputError(null);
    start.mutate({ key: chain, body: body as Record<string, unknown> });
  }

  return (
    <form onSubmit={submit} aria-labelledby="start-run" className="card mb-6 space-y-3">
      <h2 id="start-run" className="font-semibold">Start a run</h2>
      {chains.error && <ProblemMessage error={chains.error} />}
      <div className="grid grid-cols-1 gap-3 md:grid-cols-3">
        <div>
          <label className="label" htmlFor="run-chain">Chain</label>
          <select id="run-chain" className="input" required value={chain} onChange={(event) => setChain(event.target.value)}>
            <option value="">Choose a chain…</option>
            {chains.data?.chains.map((candidate) => {
              const key = candidate.origin === 'template' ? `template:${candidate.name}` : `chain:${candidate.id ?? ''}`;
              return (
                <option key={key} value={key}>
                  {candidate.name} ({candidate.origin}, {candidate.step_count} steps)
                </option>
              );
            })}
          </select>
        </div>
        <div className="md:col-span-2">
          <label className="label" htmlFor="run-input">Input (JSON)</label>
          <textarea id="run-input" className="input min-h-24 font-mono" spellCheck={false} value={input}
            aria-invalid={Boolean(inputError)} aria-describedby={inputError ? 'run-input-error' : undefined}
            onChange={(event) => setInput(event.target.value)} />
          {inputError && <p id="run-input-error" className="mt-1 text-sm text-red-700 dark:text-red-300">{inputError}</p>}
        </div>
      </div>
      <ProblemMessage error={start.error} />
      <button type="submit" className="btn-primary" disabled={!chain || start.isPending}>
        {start.isPending ? 'Starting…' : 'Start run'}
      </button>
    </form>
  );
}

export function RunsPage() {
  const state = useSession();
  const [params, setParams] = useSearchParams();
  const status = params.get('status') ?? '';
  const chainId = params.get('chain') ?? '';
  const rawTime = params.get('time') ?? '';
  const time = isTimeFilter(rawTime) ? rawTime : '';
  const from = params.get('from') ?? '';
  const to = params.get('to') ?? '';
  const chains = useQuery({ queryKey: chainKeys.all, queryFn: listChains });
  const stored = (chains.data?.chains ?? []).filter((chain) => chain.origin === 'tenant' && chain.id);
  const runs = useQuery({
    queryKey: [...runKeys.list(status), chainId, time, from, to],
    // A span back from now moves with each refresh.
    queryFn: () => listRuns(status, 50, chainId, windowOf(time, Date.now(), from, to)),
    refetchInterval: 5_000,
  });
  const filter = (name: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next);
  };
  return (
    <>
      <PageHeader title="Runs" />
      {can(state, 'chains:execute') && <StartRun />}
      <div className="mb-4 grid max-w-4xl grid-cols-1 gap-3 sm:grid-cols-3">
        <div>
          <label className="label" htmlFor="status-filter">Status</label>
          <select id="status-filter" className="input" value={status} onChange={(event) => filter('status', event.target.value)}>
            <option value="">Any status</option>
            {STATUSES.map((option) => <option key={option} value={option}>{option}</option>)}
          </select>
        </div>
        <div>
          <label className="label" htmlFor="chain-filter">Stored chain</label>
          <select id="chain-filter" className="input" value={chainId} onChange={(event) => filter('chain', event.target.value)}>
            <option value="">Any chain or template</option>
            {stored.map((chain) => <option key={chain.id} value={chain.id ?? ''}>{chain.name}</option>)}
          </select>
        </div>
        <div>
          <label className="label" htmlFor="time-filter">Created</label>
          <select id="time-filter" className="input" value={time} onChange={(event) => filter('time', event.target.value)}>
            <option value="">Any time</option>
            <option value="hour">In the last hour</option>
            <option value="day">In the last day</option>
            <option value="week">In the last week</option>
            <option value="custom">Between…</option>
          </select>
        </div>
        {time === 'custom' && (
          <>
            <div>
              <label className="label" htmlFor="time-from">From (local time)</label>
              <input id="time-from" type="datetime-local" className="input" value={from}
                onChange={(event) => filter('from', event.target.value)} />
            </div>
            <div>
              <label className="label" htmlFor="time-to">Until (local time)</label>
              <input id="time-to" type="datetime-local" className="input" value={to}
                onChange={(event) => filter('to', event.target.value)} />
            </div>
          </>
        )}
      </div>
      {runs.isPending && <Loading label="Loading runs" />}
      {runs.error && <ProblemMessage error={runs.error} />}
      {runs.data && runs.data.runs.length === 0 && (
        <Empty title={status ? `No ${status} runs` : time ? 'No runs created then' : 'No runs yet'}>Runs you start show up here.</Empty>
      )}
      {runs.data && runs.data.runs.length > 0 && (
        <div className="card overflow-x-auto p-0">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Chain runs, newest first</caption>
            <thead className="border-b border-slate-200 dark:border-slate-700">
              <tr>
                <th scope="col" className="px-4 py-2">Chain</th>
                <th scope="col" className="px-4 py-2">Status</th>
                <th scope="col" className="px-4 py-2">Started</th>
                <th scope="col" className="hidden px-4 py-2 md:table-cell">Run</th>
              </tr>
            </thead>
            <tbody>
              {runs.data.runs.map((run) => (
                <tr key={run.id} className="border-b border-slate-100 last:border-0 dark:border-slate-800">
                  <td className="px-4 py-2"><Link className="link" to={`/runs/${run.id}`}>{run.chain_name}</Link></td>
                  <td className="px-4 py-2"><StatusBadge status={run.status} /></td>
                  <td className="px-4 py-2">{ago(run.created_at)}</td>
                  <td className="muted hidden px-4 py-2 font-mono text-xs md:table-cell">{run.id}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
