/**
 * What changed between two versions of a definition: per step (added, removed, changed, and
 * which of its fields), the definition's other members, and the lines of its JSON (a unified
 * diff: Myers' shortest edit script). Steps are compared in the DAG form, so a simple-form
 * version compares with a DAG-form one by what they run.
 */
import { type Json, type StepJson, stepsOfGraph, toGraph } from './graph';

export type StepChange = 'added' | 'removed' | 'changed' | 'same';

export interface StepDiff {
  id: string;
  change: StepChange;
  /** The step's fields that differ (`needs` among them), for a changed step. */
  fields: string[];
  /** The step as the newer version has it, or as the older had it when removed. */
  step: StepJson;
}

export interface DefinitionDiff {
  /** The newer version's steps in order, then those it removed, where they were. */
  steps: StepDiff[];
  /** The definition's other members that differ (name, description, input_schema...). */
  header: string[];
}

export interface Line {
  kind: 'same' | 'added' | 'removed';
  text: string;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function stepsOf(definition: Json): StepJson[] {
  return stepsOfGraph(toGraph(definition));
}

function changedFields(before: StepJson, after: StepJson): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  return keys.filter((key) => !same(before[key], after[key]));
}

export function diffDefinitions(older: Json, newer: Json): DefinitionDiff {
  const before = stepsOf(older);
  const after = stepsOf(newer);
  const olderById = new Map(before.map((step) => [step.id, step]));
  const newerIds = new Set(after.map((step) => step.id));
  const steps: StepDiff[] = after.map((step) => {
    const previous = olderById.get(step.id);
    if (!previous) return { id: step.id, change: 'added', fields: [], step };
    const fields = changedFields(previous, step);
    return { id: step.id, change: fields.length > 0 ? 'changed' : 'same', fields, step };
  });
  for (const step of before) {
    if (!newerIds.has(step.id)) steps.push({ id: step.id, change: 'removed', fields: [], step });
  }
  const headerOf = (definition: Json) => toGraph(definition).header;
  const [olderHeader, newerHeader] = [headerOf(older), headerOf(newer)];
  const header = [...new Set([...Object.keys(olderHeader), ...Object.keys(newerHeader)])].filter(
    (key) => !same(olderHeader[key], newerHeader[key]),
  );
  return { steps, header };
}

/**
 * The most edits the shortest edit script is searched for. Its memory grows with their square
 * (16 MB here); two versions further apart show as the one's lines removed, the other's added.
 */
export const MAX_EDITS = 2_000;

/** The middle lines that differ, as the shortest edit script (Myers, O(ND)), or null past `MAX_EDITS`. */
function shortestEdits(before: string[], after: string[]): Line[] | null {
  const n = before.length;
  const m = after.length;
  const limit = Math.min(n + m, MAX_EDITS);
  // The furthest x reached on each diagonal k = x - y (at index k + offset).
  const offset = limit + 1;
  const frontier = new Int32Array(2 * limit + 3);
  const at = (k: number) => frontier[offset + k] ?? 0;
  // Each d's frontier before its moves, diagonals -d-1..d+1 (all the way back reads), from `base`.
  const trace: { base: number; values: Int32Array }[] = [];
  let edits = -1;
  for (let d = 0; d <= limit && edits < 0; d += 1) {
    const base = Math.max(0, offset - d - 1);
    trace.push({ base, values: frontier.slice(base, offset + d + 2) });
    for (let k = -d; k <= d; k += 2) {
      const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
      let x = down ? at(k + 1) : at(k - 1) + 1;
      let y = x - k;
      while (x < n && y < m && before[x] === after[y]) {
        x += 1;
        y += 1;
      }
      frontier[offset + k] = x;
      if (x >= n && y >= m) {
        edits = d;
        break;
      }
    }
  }
  if (edits < 0) return null;
  const lines: Line[] = [];
  let x = n;
  let y = m;
  for (let d = edits; d >= 0; d -= 1) {
    const { base, values } = trace[d] as { base: number; values: Int32Array };
    const previous = (k: number) => values[offset + k - base] ?? 0;
    const k = x - y;
    const down = k === -d || (k !== d && previous(k - 1) < previous(k + 1));
    const fromK = down ? k + 1 : k - 1;
    const fromX = previous(fromK);
    const fromY = fromX - fromK;
    while (x > fromX && y > fromY) {
      x -= 1;
      y -= 1;
      lines.push({ kind: 'same', text: before[x] as string });
    }
    if (d === 0) break;
    if (down) {
      y -= 1;
      lines.push({ kind: 'added', text: after[y] as string });
    } else {
      x -= 1;
      lines.push({ kind: 'removed', text: before[x] as string });
    }
  }
  return lines.reverse();
}

/**
 * The lines of `before` and `after` as a unified diff: each kept, removed or added line, in
 * order. The lines both start and end with are kept as they are; the middle is diffed.
 */
export function diffLines(before: string[], after: string[]): Line[] {
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start += 1;
  let end = 0;
  while (
    end < before.length - start &&
    end < after.length - start &&
    before[before.length - 1 - end] === after[after.length - 1 - end]
  ) {
    end += 1;
  }
  const kept = (lines: string[]) => lines.map((text): Line => ({ kind: 'same', text }));
  const olderMiddle = before.slice(start, before.length - end);
  const newerMiddle = after.slice(start, after.length - end);
  const middle = shortestEdits(olderMiddle, newerMiddle) ?? [
    ...olderMiddle.map((text): Line => ({ kind: 'removed', text })),
    ...newerMiddle.map((text): Line => ({ kind: 'added', text })),
  ];
  return [...kept(before.slice(0, start)), ...middle, ...kept(before.slice(before.length - end))];
}

/** The unified diff of two definitions' pretty-printed JSON. */
export function diffJson(older: Json, newer: Json): Line[] {
  const lines = (value: Json) => JSON.stringify(value, null, 2).split('\n');
  return diffLines(lines(older), lines(newer));
}
