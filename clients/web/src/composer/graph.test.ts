import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { type Json, MAX_POSITION, edgeId, fromGraph, pathsFor, placedByDefinition, positionOf, problemsByStep, toGraph, withPositions, withoutPositions } from './graph';
import { laidOut } from './layout';

const CATALOG = join(__dirname, '../../../../catalog/chains');
const templates = readdirSync(CATALOG)
  .filter((file) => file.endsWith('.json'))
  .map((file) => [file, JSON.parse(readFileSync(join(CATALOG, file), 'utf8')) as Json] as const);

describe('the composer graph', () => {
  it('finds the catalog templates', () => {
    expect(templates.map(([file]) => file)).toContain('fullstack-app.json');
  });

  it.each(templates)('gives %s back exactly as it was', (_file, template) => {
    const graph = toGraph(template);
    expect(fromGraph(graph)).toEqual(template);
    expect(JSON.stringify(fromGraph(graph))).toBe(JSON.stringify(template));
  });

  it('draws fullstack-app’s needs as edges', () => {
    const graph = toGraph(templates.find(([file]) => file === 'fullstack-app.json')![1]);
    expect(graph.nodes.map((node) => node.id)).toContain('readme');
    expect(graph.edges.filter((edge) => edge.target === 'tests').map((edge) => edge.source)).toEqual([
      'api', 'auth', 'roles', 'email', 'payments', 'markdown',
    ]);
  });

  it('opens the simple form as its steps, and a changed one becomes the DAG form', () => {
    const simple = { name: 'twice', agents: ['hello_world', 'hello_world'], mode: 'sequential' };
    const graph = toGraph(simple);
    expect(graph.nodes.map((node) => node.id)).toEqual(['hello_world', 'hello_world_2']);
    expect(graph.edges).toEqual([{ id: edgeId('hello_world', 'hello_world_2'), source: 'hello_world', target: 'hello_world_2' }]);
    const unlinked = fromGraph({ ...graph, edges: [] });
    expect(unlinked).toEqual({
      name: 'twice',
      steps: [{ id: 'hello_world', agent: 'hello_world' }, { id: 'hello_world_2', agent: 'hello_world' }],
    });
  });

  it('opens the conditional form with the condition on each branch’s first step', () => {
    const graph = toGraph({ condition: 'input.tests', then: ['a', 'b'], else: ['a'] });
    expect(graph.nodes.map((node) => node.data.step)).toEqual([
      { id: 'a', agent: 'a', when: 'input.tests' },
      { id: 'b', agent: 'b', needs: ['a'] },
      { id: 'a_2', agent: 'a', when: '!(input.tests)' },
    ]);
  });

  it('puts each problem on the step it names, and a cycle on every step along it', () => {
    const graph = toGraph({
      steps: [{ id: 'a', agent: 'x', needs: ['c'] }, { id: 'b', agent: 'x', needs: ['a'] }, { id: 'c', agent: 'x', needs: ['b'] }, { id: 'd', agent: 'nope' }],
    });
    const { byStep, general } = problemsByStep(graph, [
      { field: 'steps', message: 'cycle: a -> b -> c -> a' },
      { field: 'steps[3].agent', message: 'unknown agent `nope`' },
      { field: 'name', message: 'too long' },
    ]);
    expect(byStep.get('a')).toEqual(['steps: cycle: a -> b -> c -> a']);
    expect(byStep.get('c')).toEqual(['steps: cycle: a -> b -> c -> a']);
    expect(byStep.get('d')).toEqual(['steps[3].agent: unknown agent `nope`']);
    expect(general).toEqual(['name: too long']);
  });

  it('places an else branch’s problem after the then branch’s steps', () => {
    const graph = toGraph({ condition: 'input.tests', then: ['a', 'b'], else: ['nope'] });
    expect(problemsByStep(graph, [{ field: 'else[0]', message: 'unknown agent `nope`' }]).byStep.get('nope')).toHaveLength(1);
  });
});

describe('the composer layout', () => {
  it('puts each step to the right of the steps it needs, a cycle too', () => {
    const graph = toGraph(templates.find(([file]) => file === 'fullstack-app.json')![1]);
    const placed = new Map(laidOut(graph.nodes, graph.edges).map((node) => [node.id, node.position]));
    for (const edge of graph.edges) expect(placed.get(edge.target)!.x).toBeGreaterThan(placed.get(edge.source)!.x);
    const cyclic = toGraph({ steps: [{ id: 'a', agent: 'x', needs: ['b'] }, { id: 'b', agent: 'x', needs: ['a', 'gone'] }] });
    expect(laidOut(cyclic.nodes, cyclic.edges)).toHaveLength(2);
  });
});

describe('the paths an input mapping may name', () => {
  it('are the chain input’s, the upstream steps’ outputs, and a map step’s item', () => {
    const graph = toGraph({
      input_schema: { type: 'object', properties: { name: { type: 'string' } } },
      steps: [
        { id: 'greet', agent: 'hello_world' },
        { id: 'gate', approval: { prompt: 'Go?', approvers: ['role:admin'] }, needs: ['greet'] },
        { id: 'each', agent: 'hello_world', for_each: '${input.people}', needs: ['gate'] },
        { id: 'aside', agent: 'hello_world' },
      ],
    });
    const outputs = new Map([['hello_world', { type: 'object', properties: { message: { type: 'string' } } }]]);
    expect(pathsFor(graph, 'each', outputs)).toEqual([
      'input', 'input.name', 'item', 'index',
      'steps.gate', 'steps.gate.approved', 'steps.gate.by', 'steps.gate.input', 'steps.gate.comment',
      'steps.greet', 'steps.greet.message',
    ]);
    expect(pathsFor(graph, 'aside', outputs)).toEqual(['input', 'input.name']);
  });

  it('reach into nested objects, three levels at most', () => {
    const graph = toGraph({ steps: [{ id: 'scan', agent: 'deep' }, { id: 'next', agent: 'deep', needs: ['scan'] }] });
    const level = (inner: object) => ({ type: 'object', properties: { inner } });
    const outputs = new Map([['deep', { type: 'object', properties: { a: level(level(level({ type: 'string' }))), b: { type: 'array' } } }]]);
    expect(pathsFor(graph, 'next', outputs)).toEqual([
      'input', 'steps.scan', 'steps.scan.a', 'steps.scan.a.inner', 'steps.scan.a.inner.inner', 'steps.scan.b',
    ]);
  });
});

describe('the steps’ own positions', () => {
  const chain = { steps: [{ id: 'a', agent: 'x' }, { id: 'b', agent: 'x', needs: ['a'] }] };

  it('are read only when sound, and place the graph only when every step has one', () => {
    expect(positionOf({ id: 'a', position: { x: 1.5, y: -2 } })).toEqual({ x: 1.5, y: -2 });
    expect(positionOf({ id: 'a', position: { x: '1', y: 2 } })).toBeUndefined();
    expect(positionOf({ id: 'a' })).toBeUndefined();
    const graph = toGraph(chain);
    expect(placedByDefinition(graph)).toBe(false);
    expect(placedByDefinition(toGraph({ steps: [{ id: 'a', agent: 'x', position: { x: 0, y: 0 } }, { id: 'b', agent: 'x' }] }))).toBe(false);
    expect(placedByDefinition(toGraph({ steps: [] }))).toBe(false);
  });

  it('are written where the nodes are, whole and within bounds, and dropped again losslessly', () => {
    const graph = toGraph(chain);
    graph.nodes[0]!.position = { x: 10.4, y: -3.6 };
    graph.nodes[1]!.position = { x: 2 * MAX_POSITION, y: 7 };
    const placed = withPositions(graph);
    expect(placedByDefinition(placed)).toBe(true);
    expect(fromGraph(placed)).toEqual({
      steps: [
        { id: 'a', agent: 'x', position: { x: 10, y: -4 } },
        { id: 'b', agent: 'x', needs: ['a'], position: { x: MAX_POSITION, y: 7 } },
      ],
    });
    expect(fromGraph(withoutPositions(placed))).toEqual(chain);
  });
});
