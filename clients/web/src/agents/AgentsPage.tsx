/** The catalog by category, with a search over names and descriptions. */
import { useQuery } from '@tanstack/react-query';
import { useDeferredValue, useState } from 'react';
import { Link, useNavigate } from 'react-router';

import { can, useSession } from '../auth/session';

import { Empty, Loading, PageHeader, ProblemMessage } from '../ui/states';
import { CustomAgentEditor } from './CustomAgentEditor';
import { CATEGORIES, agentKeys, listAgents } from './queries';

export function AgentsPage() {
  const agents = useQuery({ queryKey: agentKeys.all, queryFn: listAgents, staleTime: 60_000 });
  const [search, setSearch] = useState('');
  const state = useSession();
  const navigate = useNavigate();
  const [creating, setCreating] = useState(false);
  const needle = useDeferredValue(search.trim().toLowerCase());
  const matching = (agents.data ?? []).filter(
    (agent) => !needle || agent.name.includes(needle) || agent.description.toLowerCase().includes(needle),
  );
  const categories = [...CATEGORIES, ...new Set(matching.map((agent) => agent.category))].filter(
    (category, index, all) => all.indexOf(category) === index,
  );
  return (
    <>
      <PageHeader title="Agents">
        {can(state, 'agents:write') && (
          <button type="button" className="btn-primary" aria-expanded={creating} onClick={() => setCreating(!creating)}>
            New custom agent…
          </button>
        )}
      </PageHeader>
      {creating && (
        <div className="mb-6">
          <CustomAgentEditor onSaved={(name) => navigate(`/agents/${name}`)} />
        </div>
      )}
      <div className="mb-6 max-w-md">
        <label className="label" htmlFor="agent-search">Search agents</label>
        <input id="agent-search" className="input" type="search" value={search}
          onChange={(event) => setSearch(event.target.value)} placeholder="Name or description" />
      </div>
      {agents.isPending && <Loading label="Loading agents" />}
      {agents.error && <ProblemMessage error={agents.error} />}
      {agents.data && matching.length === 0 && <Empty title="No agent matches">Try another word.</Empty>}
      {categories.map((category) => {
        const inCategory = matching.filter((agent) => agent.category === category);
        if (inCategory.length === 0) return null;
        return (
          <section key={category} aria-labelledby={`category-${category}`} className="mb-8">
            <h2 id={`category-${category}`} className="mb-3 text-lg font-semibold capitalize">
              {category} <span className="muted text-sm font-normal">({inCategory.length})</span>
            </h2>
            <ul className="grid grid-cols-1 gap-3 sm:grid-cols-2 lg:grid-cols-3">
              {inCategory.map((agent) => (
                <li key={agent.name} className="card">
                  <Link className="link font-mono font-medium" to={`/agents/${agent.name}`}>{agent.name}</Link>
                  <p className="muted mt-1 line-clamp-3 text-sm">{agent.description}</p>
                  <p className="muted mt-2 text-xs">v{agent.version} · {agent.origin}{agent.llm_capable ? ' · LLM' : ''}</p>
                </li>
              ))}
            </ul>
          </section>
        );
      })}
    </>
  );
}
