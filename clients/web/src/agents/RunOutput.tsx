/** An agent run's outcome: status, duration, and its output as a tree, as text, or as files. */
import { Files } from '../artifacts/Files';
import { JsonTree } from '../ui/JsonTree';
import { StatusBadge } from '../ui/states';
import { Tabs } from '../ui/Tabs';
import { duration } from '../ui/time';
import type { AgentRun } from './queries';

/** The output's longest string, which for most agents is the thing they made (text, code). */
function mainText(output: unknown): string | null {
  let best: string | null = null;
  const visit = (value: unknown) => {
    if (typeof value === 'string') {
      if (!best || value.length > best.length) best = value;
    } else if (value && typeof value === 'object') {
      Object.values(value).forEach(visit);
    }
  };
  visit(output);
  return best;
}

export function RunOutput({ run }: { run: AgentRun }) {
  const text = mainText(run.output);
  return (
    <section aria-label="Run output" className="card">
      <div className="mb-3 flex flex-wrap items-center gap-3 text-sm">
        <StatusBadge status={run.status} />
        <span>Took {duration(run.duration_ms)}</span>
        <span className="muted font-mono text-xs">{run.run_id}</span>
      </div>
      {run.error && (
        <p role="alert" className="mb-3 text-sm text-red-800 dark:text-red-200">
          <code>{run.error.code}</code>: {run.error.message}
        </p>
      )}
      <Tabs
        label="Output views"
        tabs={[
          { value: 'tree', label: 'JSON', content: <JsonTree value={run.output ?? null} label="Output as JSON" /> },
          {
            value: 'text',
            label: 'Text',
            content: (
              <pre aria-label="Output as text" tabIndex={0} className="max-h-96 overflow-auto whitespace-pre-wrap rounded-md bg-slate-100 p-3 text-sm dark:bg-slate-800">
                {text ?? JSON.stringify(run.output, null, 2)}
              </pre>
            ),
          },
          {
            value: 'files',
            label: `Files (${run.artifacts.length})`,
            content: <Files workspace={run.workspace_id} artifacts={run.artifacts} />,
          },
        ]}
      />
    </section>
  );
}
