import { describe, expect, it } from 'vitest';

import {
  MAX_PASTED_STEPS,
  PASTE_OFFSET,
  clipboardText,
  copySteps,
  freeId,
  parseClipboard,
  pasteSteps,
  removeSteps,
  withStepsRenamed,
} from './clipboard';
import { fromGraph, toGraph } from './graph';

const chain = {
  name: 'plan-build',
  steps: [
    { id: 'plan', agent: 'project_planner' },
    { id: 'api', agent: 'api_builder', needs: ['plan'], input: { entities: '${steps.plan.entities}' } },
    {
      id: 'tests',
      agent: 'test_writer',
      needs: ['api', 'plan'],
      when: 'steps.api.ok && steps["plan"].ok',
      input: { files: '${steps.api.files}', literal: 'steps.api', list: ['${steps.plan.name}'] },
    },
  ],
};

function placed() {
  const graph = toGraph(chain);
  return { ...graph, nodes: graph.nodes.map((node, index) => ({ ...node, position: { x: index * 100, y: 10 } })) };
}

describe('copy and paste of steps', () => {
  it('numbers a taken id from 2', () => {
    expect(freeId('plan', new Set())).toBe('plan');
    expect(freeId('plan', new Set(['plan', 'plan_2']))).toBe('plan_3');
  });

  it('pastes new ids, keeps needs between the pasted steps only, and renames what they read', () => {
    const graph = placed();
    const copied = copySteps(graph, new Set(['api', 'tests']));
    expect(copied.steps.map((step) => step.id)).toEqual(['api', 'tests']);
    const { graph: pasted, ids } = pasteSteps(graph, copied, PASTE_OFFSET);
    expect(ids).toEqual(['api_2', 'tests_2']);
    const steps = (fromGraph(pasted).steps as Record<string, unknown>[]).slice(3);
    expect(steps).toEqual([
      // `plan` was not copied: the need of it is dropped, what reads it still reads it.
      { id: 'api_2', agent: 'api_builder', input: { entities: '${steps.plan.entities}' } },
      {
        id: 'tests_2',
        agent: 'test_writer',
        needs: ['api_2'],
        when: 'steps.api_2.ok && steps["plan"].ok',
        input: { files: '${steps.api_2.files}', literal: 'steps.api', list: ['${steps.plan.name}'] },
      },
    ]);
    // The originals are untouched; the copies sit off them, the only ones selected.
    expect((fromGraph(pasted).steps as unknown[]).slice(0, 3)).toEqual(chain.steps);
    const byId = new Map(pasted.nodes.map((node) => [node.id, node]));
    expect(byId.get('tests_2')?.position).toEqual({ x: 200 + PASTE_OFFSET, y: 10 + PASTE_OFFSET });
    expect(pasted.nodes.filter((node) => node.selected).map((node) => node.id)).toEqual(['api_2', 'tests_2']);
  });

  it('pastes twice without an id meeting another', () => {
    const graph = placed();
    const copied = copySteps(graph, new Set(['plan', 'api']));
    const once = pasteSteps(graph, copied, PASTE_OFFSET).graph;
    const twice = pasteSteps(once, copied, 2 * PASTE_OFFSET);
    expect(twice.ids).toEqual(['plan_3', 'api_3']);
    expect(twice.graph.edges.filter((edge) => edge.target === 'api_3').map((edge) => edge.source)).toEqual(['plan_3']);
    expect(new Set(twice.graph.nodes.map((node) => node.id)).size).toBe(7);
  });

  it('renames a sub-chain’s input and a map step’s list', () => {
    const renames = new Map([['plan', 'plan_2']]);
    expect(withStepsRenamed({ id: 'x', for_each: '${steps.plan.entities}', chain: { template: 't', input: { a: '${steps.plan}' } } }, renames))
      .toEqual({ id: 'x', for_each: '${steps.plan_2.entities}', chain: { template: 't', input: { a: '${steps.plan_2}' } } });
  });

  it('removes steps with their connections, and connections alone', () => {
    const graph = placed();
    const without = removeSteps(graph, new Set(['api']));
    expect(without.nodes.map((node) => node.id)).toEqual(['plan', 'tests']);
    expect(without.edges.map((edge) => edge.id)).toEqual(['plan->tests']);
    expect(removeSteps(graph, new Set(), new Set(['plan->tests'])).edges.map((edge) => edge.id)).toEqual(['plan->api', 'api->tests']);
  });
});

describe('pasting steps that keep their places', () => {
  it('gives the copies their new places in the definition too', () => {
    const graph = toGraph({ steps: [{ id: 'a', agent: 'x', position: { x: 5, y: 6 } }] });
    graph.nodes[0]!.position = { x: 5, y: 6 };
    const { graph: pasted } = pasteSteps(graph, copySteps(graph, new Set(['a'])), PASTE_OFFSET);
    expect((fromGraph(pasted).steps as unknown[])[1]).toEqual({ id: 'a_2', agent: 'x', position: { x: 5 + PASTE_OFFSET, y: 6 + PASTE_OFFSET } });
  });
});

describe('steps through the system clipboard', () => {
  it('come back from their text as they were copied, and paste as the page\'s own copy does', () => {
    const graph = placed();
    const copied = copySteps(graph, new Set(['api', 'tests']));
    const read = parseClipboard(clipboardText(copied));
    expect(read).toEqual({ copied });
    if (!('copied' in read)) throw new Error('not read');
    expect(pasteSteps(graph, read.copied, PASTE_OFFSET)).toEqual(pasteSteps(graph, copied, PASTE_OFFSET));
  });

  it('pasted into another chain (another tab) that has the same ids, get new ones', () => {
    const text = clipboardText(copySteps(placed(), new Set(['plan', 'api'])));
    const read = parseClipboard(text);
    if (!('copied' in read)) throw new Error('not read');
    const other = toGraph({ name: 'other', steps: [{ id: 'plan', agent: 'hello_world' }] });
    const { graph, ids } = pasteSteps(other, read.copied, PASTE_OFFSET);
    expect(ids).toEqual(['plan_2', 'api']);
    const api = (fromGraph(graph).steps as Record<string, unknown>[])[2];
    expect(api).toMatchObject({ id: 'api', needs: ['plan_2'], input: { entities: '${steps.plan_2.entities}' } });
  });

  it('refuse what is not the composer\'s steps, or beyond the bounds', () => {
    const problem = (text: string) => {
      const read = parseClipboard(text);
      return 'problem' in read ? read.problem : null;
    };
    expect(problem('hello')).toBe('The clipboard holds no steps.');
    expect(problem('{"steps": [{"id": "a"}]}')).toBe('The clipboard holds no steps.');
    expect(problem(JSON.stringify({ kind: 'sankalpa.composer.steps', steps: [] }))).toBe('The clipboard holds no steps.');
    const steps = (count: number) => Array.from({ length: count }, (_, index) => ({ id: `s${index}`, agent: 'hello_world' }));
    expect(problem(JSON.stringify({ kind: 'sankalpa.composer.steps', steps: steps(MAX_PASTED_STEPS) }))).toBeNull();
    expect(problem(JSON.stringify({ kind: 'sankalpa.composer.steps', steps: steps(MAX_PASTED_STEPS + 1) }))).toMatch(/At most 200/);
    expect(problem(JSON.stringify({ kind: 'sankalpa.composer.steps', steps: [{ id: 'a b' }] }))).toBe('A copied step has no valid id.');
    expect(problem(JSON.stringify({ kind: 'sankalpa.composer.steps', steps: [['a']] }))).toBe('A copied step has no valid id.');
    expect(problem(JSON.stringify({ kind: 'sankalpa.composer.steps', steps: [{ id: 'a' }, { id: 'a' }] }))).toBe('Step a is copied twice.');
    expect(problem(' '.repeat((1 << 20) + 1))).toMatch(/more than 1 MiB/);
  });

  it('keep only the real places of the steps copied', () => {
    const read = parseClipboard(JSON.stringify({
      kind: 'sankalpa.composer.steps',
      steps: [{ id: 'a' }, { id: 'b' }],
      positions: { a: { x: 1, y: 2, z: 3 }, b: { x: 'far', y: 0 }, c: { x: 0, y: 0 } },
    }));
    expect(read).toEqual({ copied: { steps: [{ id: 'a' }, { id: 'b' }], positions: { a: { x: 1, y: 2 } } } });
  });
});
