/**
 * Pick an agent, give it input, run it, read the output; this tab's runs stay listed to compare
 * (in memory: the history is the session's, not stored).
 */
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useSearchParams } from 'react-router';

import { AgentRunner } from '../agents/AgentRunner';
import { type AgentRun, agentKeys, listAgents } from '../agents/queries';
import { RunOutput } from '../agents/RunOutput';
import { Empty, Loading, PageHeader, ProblemMessage, StatusBadge } from '../ui/states';
import { duration } from '../ui/time';

interface HistoryItem {
  run: AgentRun;
  input: Record<string, unknown>;
}

/** Runs made in this tab, newest first; kept across visits to other pages, lost on reload. */
let history: HistoryItem[] = [];
const HISTORY_MAX = 50;

export function PlaygroundPage() {
  const agents = useQuery({ queryKey: agentKeys.all, queryFn: listAgents, staleTime: 60_000 });
  const [params, setParams] = useSearchParams();
  const [runs, setRuns] = useState(history);
  const [shown, setShown] = useState<string | null>(runs[0]?.run.run_id ?? null);
  const name = params.get('agent') ?? '';
  const agent = agents.data?.find((candidate) => candidate.name === name);
  const current = runs.find((item) => item.run.run_id === shown);

  function record(run: AgentRun, input: Record<string, unknown>) {
    history = [{ run, input }, ...history].slice(0, HISTORY_MAX);
    setRuns(history);
    setShown(run.run_id);
  }

  return (
    <>
      <PageHeader title="Playground" />
      {agents.isPending && <Loading label="Loading agents" />}
      {agents.error && <ProblemMessage error={agents.error} />}
      {agents.data && (
        <div className="grid grid-cols-1 gap-6 lg:grid-cols-3">
          <div className="space-y-4 lg:col-span-2">
            <div className="max-w-md">
              <label className="label" htmlFor="agent-pick">Agent</label>
              <select id="agent-pick" className="input" value={name}
                onChange={(event) => setParams(event.target.value ? { agent: event.target.value } : {})}>
                <option value="">Choose an agent…</option>
                {agents.data.map((candidate) => (
                  <option key={candidate.name} value={candidate.name}>
                    {candidate.name} ({candidate.category})
                  </option>
                ))}
              </select>
            </div>
            {agent ? (
              <>
                <p className="muted text-sm">{agent.description}</p>
                <AgentRunner key={agent.name} agent={agent} onRun={record} />
              </>
            ) : (
              <Empty title="No agent chosen">Pick one above to give it input and run it.</Empty>
            )}
            {current && <RunOutput run={current.run} />}
          </div>
          <aside aria-labelledby="history" className="card h-fit">
            <h2 id="history" className="mb-2 font-semibold">This session's runs</h2>
            {runs.length === 0 ? (
              <p className="muted text-sm">Runs you make here are listed to compare.</p>
            ) : (
              <ul className="space-y-1">
                {runs.map((item) => (
                  <li key={item.run.run_id}>
                    <button type="button" aria-pressed={item.run.run_id === shown}
                      className="flex w-full items-center justify-between gap-2 rounded px-2 py-1 text-left text-sm hover:bg-slate-100 aria-pressed:bg-indigo-100 dark:hover:bg-slate-800 dark:aria-pressed:bg-indigo-900"
                      onClick={() => setShown(item.run.run_id)}>
                      <span className="truncate font-mono">{item.run.agent}</span>
                      <span className="flex items-center gap-2">
                        <span className="muted text-xs">{duration(item.run.duration_ms)}</span>
                        <StatusBadge status={item.run.status} />
                      </span>
                    </button>
                  </li>
                ))}
              </ul>
            )}
          </aside>
        </div>
      )}
    </>
  );
}
