import { describe, expect, it } from 'vitest';

import { type Line, MAX_EDITS, diffDefinitions, diffJson, diffLines } from './diff';

/** The longest common subsequence's length, by dynamic programming: what a shortest script keeps. */
function lcs(a: string[], b: string[]): number {
  const row = new Array<number>(b.length + 1).fill(0);
  for (const item of a) {
    let diagonal = 0;
    for (let j = 1; j <= b.length; j += 1) {
      const above = row[j]!;
      row[j] = item === b[j - 1] ? diagonal + 1 : Math.max(above, row[j - 1]!);
      diagonal = above;
    }
  }
  return row[b.length]!;
}

const sides = (lines: Line[]) => ({
  before: lines.filter((line) => line.kind !== 'added').map((line) => line.text),
  after: lines.filter((line) => line.kind !== 'removed').map((line) => line.text),
});

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe('the line diff', () => {
  it('marks what was removed and added between what is kept', () => {
    expect(diffLines(['a', 'b', 'c', 'd'], ['a', 'c', 'x', 'd'])).toEqual([
      { kind: 'same', text: 'a' },
      { kind: 'removed', text: 'b' },
      { kind: 'same', text: 'c' },
      { kind: 'added', text: 'x' },
      { kind: 'same', text: 'd' },
    ]);
    expect(diffLines([], ['a'])).toEqual([{ kind: 'added', text: 'a' }]);
    expect(diffLines(['a'], [])).toEqual([{ kind: 'removed', text: 'a' }]);
    expect(diffLines([], [])).toEqual([]);
  });

  it('gives back both sides and keeps as many lines as can be kept, on 300 random pairs', () => {
    const next = random(7);
    for (let round = 0; round < 300; round += 1) {
      const make = () => Array.from({ length: Math.floor(next() * 30) }, () => 'abcde'[Math.floor(next() * 5)]!);
      const [a, b] = [make(), make()];
      const lines = diffLines(a, b);
      expect(sides(lines)).toEqual({ before: a, after: b });
      expect(lines.filter((line) => line.kind === 'same')).toHaveLength(lcs(a, b));
    }
  });

  it('shows versions too far apart as all removed then all added, still correct', () => {
    const a = Array.from({ length: MAX_EDITS }, (_, index) => `old ${index}`);
    const b = Array.from({ length: MAX_EDITS }, (_, index) => `new ${index}`);
    const lines = diffLines(['same', ...a, 'end'], ['same', ...b, 'end']);
    expect(sides(lines)).toEqual({ before: ['same', ...a, 'end'], after: ['same', ...b, 'end'] });
    expect(lines[1]).toEqual({ kind: 'removed', text: 'old 0' });
    expect(lines.at(-2)).toEqual({ kind: 'added', text: `new ${MAX_EDITS - 1}` });
  });
});

describe('the definition diff', () => {
  const older = {
    name: 'build',
    steps: [
      { id: 'plan', agent: 'project_planner' },
      { id: 'api', agent: 'api_builder', needs: ['plan'] },
      { id: 'docs', agent: 'readme_writer', needs: ['api'] },
    ],
  };
  const newer = {
    name: 'build',
    description: 'with tests',
    steps: [
      { id: 'plan', agent: 'project_planner' },
      { id: 'api', agent: 'api_builder', needs: ['plan'], when: 'input.api' },
      { id: 'tests', agent: 'test_writer', needs: ['api'] },
    ],
  };

  it('names each step’s change and the fields that changed', () => {
    const diff = diffDefinitions(older, newer);
    expect(diff.steps.map(({ id, change, fields }) => ({ id, change, fields }))).toEqual([
      { id: 'plan', change: 'same', fields: [] },
      { id: 'api', change: 'changed', fields: ['when'] },
      { id: 'tests', change: 'added', fields: [] },
      { id: 'docs', change: 'removed', fields: [] },
    ]);
    expect(diff.header).toEqual(['description']);
  });

  it('compares a simple-form version with a DAG-form one by what they run', () => {
    const simple = { name: 'two', agents: ['a', 'b'], mode: 'sequential' };
    const dag = { name: 'two', steps: [{ id: 'a', agent: 'a' }, { id: 'b', agent: 'b', needs: ['a'] }] };
    expect(diffDefinitions(simple, dag).steps.every((step) => step.change === 'same')).toBe(true);
  });

  it('diffs the JSON line by line', () => {
    const lines = diffJson(older, newer);
    expect(lines.filter((line) => line.kind === 'added').map((line) => line.text.trim())).toContain('"when": "input.api"');
    expect(lines.filter((line) => line.kind === 'removed').map((line) => line.text.trim())).toContain('"id": "docs",');
  });
});
