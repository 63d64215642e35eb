import { describe, expect, it } from 'vitest';

import { SUMMARY_CHARS, rowsOf } from './rows';
import { type ChainRun, fromRun } from './timeline';

const RUN = '0b9e8f1c-2d7a-4c55-9a61-3f1b2c4d5e6f';

function runWith(items: unknown[]): ChainRun {
  return {
    id: RUN,
    chain_name: 'greet-everyone',
    status: 'completed',
    cancel_requested: false,
    session_id: `run-${RUN}`,
    workspace_id: RUN,
    created_by: 'user-1',
    steps: [
      { id: 'first', kind: 'agent', agent: 'hello_world', status: 'completed', attempts: 1, duration_ms: 5, artifacts: [], output: { greeting: 'Hi' } },
      // The contract types outputs as objects; a map step's is the list of its items' outputs.
      { id: 'each', kind: 'map', agent: 'hello_world', status: 'completed', attempts: 1, duration_ms: 90, artifacts: [], output: items as unknown as Record<string, unknown> },
    ],
  };
}

describe('the timeline rows', () => {
  it('puts a map step’s items after it, in item order, a failed one without a summary', () => {
    const run = runWith([{ greeting: 'Hello, Ada!' }, null, { greeting: 'x'.repeat(500) }]);
    const rows = rowsOf(fromRun(run).steps, run);
    expect(rows.map((row) => row.key)).toEqual(['step:first', 'step:each', 'item:each:0', 'item:each:1', 'item:each:2']);
    expect(rows[2]).toMatchObject({ kind: 'item', stepId: 'each', index: 0, summary: '{"greeting":"Hello, Ada!"}' });
    expect(rows[3]).toMatchObject({ kind: 'item', summary: null });
    const long = rows[4];
    expect(long?.kind === 'item' && long.summary?.length).toBe(SUMMARY_CHARS);
  });

  it('lists a thousand items as a thousand rows', () => {
    const run = runWith(Array.from({ length: 1000 }, (_, index) => ({ greeting: `Hello, ${index}!` })));
    const rows = rowsOf(fromRun(run).steps, run);
    expect(rows).toHaveLength(1002);
    expect(rows.at(-1)).toMatchObject({ kind: 'item', index: 999 });
  });

  it('has only the steps while the map step runs', () => {
    const run = runWith([]);
    const running = { ...run, steps: run.steps.map((step) => ({ ...step, output: null })) };
    expect(rowsOf(fromRun(running).steps, running).map((row) => row.kind)).toEqual(['step', 'step']);
  });
});
