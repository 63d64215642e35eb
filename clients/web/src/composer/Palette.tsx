/**
 * What can be added to the chain: the agents by category (searchable), and the other kinds of
 * step. Each is a button (the keyboard's way) and can be dragged onto the canvas.
 */
import { type DragEvent, useState } from 'react';

import type { Agent } from '../agents/queries';

/** The drag's payload type: what to add, as `agent:<name>` or `kind:<kind>`. */
export const DRAG_TYPE = 'application/x-sankalpa-step';

export type Addition = { agent: string } | { kind: 'approval' | 'chain' };

export function additionOf(payload: string): Addition | null {
  const [what, name = ''] = payload.split(':', 2);
  if (what === 'agent' && name) return { agent: name };
  if (what === 'kind' && (name === 'approval' || name === 'chain')) return { kind: name };
  return null;
}

function dragging(payload: string) {
  return (event: DragEvent) => {
    event.dataTransfer.setData(DRAG_TYPE, payload);
    event.dataTransfer.effectAllowed = 'copy';
  };
}

export function Palette({ agents, onAdd }: { agents: Agent[]; onAdd: (addition: Addition) => void }) {
  const [search, setSearch] = useState('');
  const needle = search.trim().toLowerCase();
  const shown = agents.filter((agent) => !needle || agent.name.includes(needle) || agent.description.toLowerCase().includes(needle));
  const categories = [...new Set(shown.map((agent) => agent.category))].sort();
  return (
    <section aria-labelledby="palette" className="space-y-3">
      <h2 id="palette" className="font-semibold">Add a step</h2>
      <div className="flex flex-wrap gap-2">
        <button type="button" draggable className="btn-secondary" onDragStart={dragging('kind:approval')}
          onClick={() => onAdd({ kind: 'approval' })}>Approval</button>
        <button type="button" draggable className="btn-secondary" onDragStart={dragging('kind:chain')}
          onClick={() => onAdd({ kind: 'chain' })}>Sub-chain</button>
      </div>
      <div>
        <label className="label" htmlFor="palette-search">Search agents</label>
        <input id="palette-search" type="search" className="input" value={search} onChange={(event) => setSearch(event.target.value)} />
      </div>
      <div className="max-h-[28rem] space-y-2 overflow-y-auto pr-1">
        {categories.map((category) => (
          <div key={category}>
            <h3 className="muted text-xs font-semibold uppercase tracking-wide">{category}</h3>
            <ul className="mt-1 space-y-1">
              {shown.filter((agent) => agent.category === category).map((agent) => (
                <li key={agent.name}>
                  <button type="button" draggable title={agent.description} aria-label={`Add ${agent.name}`}
                    className="w-full truncate rounded border border-slate-200 px-2 py-1 text-left font-mono text-xs hover:bg-slate-100 dark:border-slate-700 dark:hover:bg-slate-800"
                    onDragStart={dragging(`agent:${agent.name}`)} onClick={() => onAdd({ agent: agent.name })}>
                    {agent.name}
                  </button>
                </li>
              ))}
            </ul>
          </div>
        ))}
        {categories.length === 0 && <p className="muted text-sm">No agent matches.</p>}
      </div>
    </section>
  );
}
