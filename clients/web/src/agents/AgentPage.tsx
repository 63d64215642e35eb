/** One agent: what it does, its input and output as readable docs, and a Run panel. */
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useParams } from 'react-router';

import { JsonTree } from '../ui/JsonTree';
import { Loading, PageHeader, ProblemMessage } from '../ui/states';
import { Tabs } from '../ui/Tabs';
import { AgentRunner } from './AgentRunner';
import { type AgentRun, agentKeys, getAgent } from './queries';
import { RunOutput } from './RunOutput';
import { SchemaDocs } from './SchemaDocs';
import type { JsonSchema } from './schemaForm';

export function AgentPage() {
  const { name = '' } = useParams();
  const agent = useQuery({ queryKey: agentKeys.one(name), queryFn: () => getAgent(name) });
  const [run, setRun] = useState<AgentRun | null>(null);
  if (agent.isPending) return <Loading label="Loading the agent" />;
  if (agent.error) return <ProblemMessage error={agent.error} />;
  const { data } = agent;
  return (
    <>
      <p className="mb-2 text-sm"><Link className="link" to="/agents">← Agents</Link></p>
      <PageHeader title={data.name}>
        <Link className="btn-secondary" to={`/playground?agent=${encodeURIComponent(data.name)}`}>Open in playground</Link>
      </PageHeader>
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
