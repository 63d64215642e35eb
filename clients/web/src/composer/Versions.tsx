/**
 * A stored chain's versions (1 to its latest; each is kept as saved): open one in the composer,
 * or compare two. The comparison lists each step's change, draws both versions' steps on one
 * read-only canvas with the added, removed and changed ones marked (a word and a sign on each,
 * not colour alone), and shows the JSON as a unified diff.
 */
import { useQuery } from '@tanstack/react-query';
import { Background, type Edge, ReactFlow, ReactFlowProvider } from '@xyflow/react';
import { useMemo, useState } from 'react';

import { useShownTheme } from '../app/theme';
import { Loading, ProblemMessage } from '../ui/states';
import { type DefinitionDiff, diffDefinitions, diffJson } from './diff';
import { type Json, type StepNode, edgeId } from './graph';
import { laidOut } from './layout';
import { composerKeys, getChain } from './queries';
import { StepNodeView } from './StepNode';

const NODE_TYPES = { step: StepNodeView };

function definitionOf(chain: { definition?: unknown; name: string }): Json {
  return { ...(chain.definition as Json | null), name: chain.name };
}

/** Both versions' steps on one graph: the newer's, then those it removed, each marked. */
function comparedGraph(diff: DefinitionDiff): { nodes: StepNode[]; edges: Edge[] } {
  const nodes: StepNode[] = diff.steps.map((entry) => ({
    id: entry.id,
    type: 'step',
    ariaLabel: `Step ${entry.id}`,
    position: { x: 0, y: 0 },
    data: {
      step: entry.step,
      problems: [],
      ...(entry.change !== 'same' ? { change: { kind: entry.change, fields: entry.fields } } : {}),
    },
  }));
  const edges = diff.steps.flatMap((entry) =>
    (Array.isArray(entry.step.needs) ? entry.step.needs : [])
      .filter((need): need is string => typeof need === 'string')
      .map((need): Edge => ({ id: edgeId(need, entry.id), source: need, target: entry.id })),
  );
  return { nodes: laidOut(nodes, edges), edges };
}

function Comparison({ older, newer, labels }: { older: Json; newer: Json; labels: [string, string] }) {
  const colorMode = useShownTheme();
  const diff = useMemo(() => diffDefinitions(older, newer), [older, newer]);
  const graph = useMemo(() => comparedGraph(diff), [diff]);
  const lines = useMemo(() => diffJson(older, newer), [older, newer]);
  const changed = diff.steps.filter((entry) => entry.change !== 'same');
  return (
    <div className="space-y-4">
      <ul aria-label="Changes" className="list-disc pl-5 text-sm">
        {changed.map((entry) => (
          <li key={entry.id}>
            <span className="font-mono">{entry.id}</span>: {entry.change}
            {entry.fields.length > 0 && ` (${entry.fields.join(', ')})`}
          </li>
        ))}
        {diff.header.map((field) => <li key={field}><span className="font-mono">{field}</span>: changed</li>)}
        {changed.length === 0 && diff.header.length === 0 && <li>No change.</li>}
      </ul>
      <div aria-label={`Steps of ${labels[0]} and ${labels[1]}`} role="region" className="h-[24rem] rounded-md border border-slate-200 dark:border-slate-700">
        <ReactFlowProvider>
          <ReactFlow nodes={graph.nodes} edges={graph.edges} nodeTypes={NODE_TYPES} colorMode={colorMode} fitView fitViewOptions={{ maxZoom: 1 }} minZoom={0.05}
            nodesDraggable={false} nodesConnectable={false} elementsSelectable={false} deleteKeyCode={null}>
            <Background />
          </ReactFlow>
        </ReactFlowProvider>
      </div>
      <div>
        <h3 className="mb-1 text-sm font-semibold">JSON, {labels[0]} to {labels[1]}</h3>
        <pre aria-label="JSON diff" tabIndex={0} className="max-h-[32rem] overflow-auto rounded-md border border-slate-200 p-2 text-xs dark:border-slate-700">
          {lines.map((line, index) =>
            line.kind === 'added' ? (
              <ins key={index} className="block bg-green-100 text-green-950 no-underline dark:bg-green-950 dark:text-green-100">+ {line.text}</ins>
            ) : line.kind === 'removed' ? (
              <del key={index} className="block bg-red-100 text-red-950 no-underline dark:bg-red-950 dark:text-red-100">- {line.text}</del>
            ) : (
              <span key={index} className="block">{'  '}{line.text}</span>
            ),
          )}
        </pre>
      </div>
    </div>
  );
}

export function Versions({ chainId, latest, shown, onOpen }: {
  chainId: string;
  latest: number;
  /** The version open in the composer. */
  shown: number;
  onOpen: (version: number) => void;
}) {
  const versions = Array.from({ length: latest }, (_, index) => latest - index);
  const [toOpen, setToOpen] = useState(shown);
  const [from, setFrom] = useState(Math.max(1, latest - 1));
  const [to, setTo] = useState(latest);
  const older = useQuery({ queryKey: composerKeys.chain(chainId, from), queryFn: () => getChain(chainId, from), staleTime: Infinity });
  const newer = useQuery({ queryKey: composerKeys.chain(chainId, to), queryFn: () => getChain(chainId, to), staleTime: Infinity });
  const choice = (id: string, label: string, value: number, onChange: (version: number) => void) => (
    <div>
      <label className="label" htmlFor={id}>{label}</label>
      <select id={id} className="input" value={value} onChange={(event) => onChange(Number(event.target.value))}>
        {versions.map((version) => <option key={version} value={version}>Version {version}{version === latest ? ' (latest)' : ''}</option>)}
      </select>
    </div>
  );
  return (
    <div className="space-y-4">
      <form className="flex flex-wrap items-end gap-3" onSubmit={(event) => { event.preventDefault(); onOpen(toOpen); }}>
        {choice('version-open', 'Version to open', toOpen, setToOpen)}
        <button type="submit" className="btn-secondary" disabled={toOpen === shown}>Open</button>
        <p className="muted text-sm">Open: version {shown} of {latest}. Saving makes version {latest + 1}.</p>
      </form>
      <section aria-labelledby="compare-versions" className="space-y-3">
        <h3 id="compare-versions" className="font-semibold">Compare two versions</h3>
        <div className="flex flex-wrap items-end gap-3">
          {choice('version-from', 'Older version', from, setFrom)}
          {choice('version-to', 'Newer version', to, setTo)}
        </div>
        <ProblemMessage error={older.error ?? newer.error} />
        {older.data && newer.data ? (
          <Comparison older={definitionOf(older.data)} newer={definitionOf(newer.data)} labels={[`version ${from}`, `version ${to}`]} />
        ) : (
          !(older.error ?? newer.error) && <Loading label="Loading the versions" />
        )}
      </section>
    </div>
  );
}
