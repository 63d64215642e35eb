/** One agent: what it does, its input and output as readable docs, and a Run panel. */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';

import { api, data as unwrap } from '../api/client';
import { can, useSession } from '../auth/session';

import { JsonTree } from '../ui/JsonTree';
import { Loading, PageHeader, ProblemMessage } from '../ui/states';
import { Tabs } from '../ui/Tabs';
import { AgentRunner } from './AgentRunner';
import { CustomAgentEditor } from './CustomAgentEditor';
import { type AgentRun, agentKeys, getAgent } from './queries';
import { RunOutput } from './RunOutput';
import { SchemaDocs } from './SchemaDocs';
import type { JsonSchema } from './schemaForm';

export function AgentPage() {
  const { name = '' } = useParams();
  const agent = useQuery({ queryKey: agentKeys.one(name), queryFn: () => getAgent(name) });
  const [run, setRun] = useState<AgentRun | null>(null);
  const [editing, setEditing] = useState(false);
  const state = useSession();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE('/api/agents/custom/{name}', { params: { path: { name } } })),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: ['agents'] });
      navigate('/agents');
    },
  });
  if (agent.isPending) return <Loading label="Loading the agent" />;
  if (agent.error) return <ProblemMessage error={agent.error} />;
  const { data } = agent;
  return (
    <>
      <p className="mb-2 text-sm"><Link className="link" to="/agents">← Agents</Link></p>
      <PageHeader title={data.name}>
        {data.custom && can(state, 'agents:write') && (
          <>
            <button type="button" className="btn-secondary" aria-expanded={editing} onClick={() => setEditing(!editing)}>
              Edit definition…
            </button>
            <button type="button" className="btn-danger" disabled={remove.isPending} onClick={() => remove.mutate()}>
              Delete agent
            </button>
          </>
        )}
        <Link className="btn-secondary" to={`/playground?agent=${encodeURIComponent(data.name)}`}>Open in playground</Link>
      </PageHeader>
      <ProblemMessage error={remove.error} />
      {editing && data.custom && (
        <div className="mb-6">
          <CustomAgentEditor name={data.name} definition={data.custom.definition} onSaved={() => setEditing(false)} />
        </div>
      )}
      <p className="muted mb-1 text-sm">
        {data.category} · version {data.version} · {data.origin}
        {data.custom ? ` · revision ${data.custom.revision}` : ''}
      </p>
      <p className="mb-6 max-w-3xl">{data.description}</p>
      <div className="grid grid-cols-1 gap-6 lg:grid-cols-2">
        <div className="card">
          <Tabs
            label="Schemas"
            tabs={[
              {
                value: 'docs',
                label: 'Docs',
                content: (
                  <div className="space-y-6">
                    <SchemaDocs title="Input" schema={data.input_schema as JsonSchema} />
                    <SchemaDocs title="Output" schema={data.output_schema as JsonSchema} />
                  </div>
                ),
              },
              {
                value: 'json',
                label: 'JSON Schema',
                content: (
                  <div className="space-y-4">
                    <JsonTree label="Input schema" value={data.input_schema} />
                    <JsonTree label="Output schema" value={data.output_schema} />
                  </div>
                ),
              },
            ]}
          />
        </div>
        <div className="space-y-4">
          <h2 className="text-lg font-semibold">Run</h2>
          <AgentRunner agent={data} onRun={setRun} />
          {run && <RunOutput run={run} />}
        </div>
      </div>
    </>
  );
}
