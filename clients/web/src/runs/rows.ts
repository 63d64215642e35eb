/**
 * The rows of a run's timeline: each step, and after a finished map step (`for_each`) one row
 * per item, from its output (the items' outputs in item order). A map step has up to 1,000 items
 * and a run up to 200 steps, so the page renders only the rows in view (`StepList`).
 */
import type { ChainRun, StepState } from './timeline';

export type Row =
  | { kind: 'step'; key: string; step: StepState }
  | { kind: 'item'; key: string; stepId: string; index: number; summary: string | null };

/** The longest item summary shown; the whole output is the step's, in its JSON. */
export const SUMMARY_CHARS = 160;

function summarise(output: unknown): string | null {
  if (output === null || output === undefined) return null;
  const text = JSON.stringify(output);
  return text.length > SUMMARY_CHARS ? `${text.slice(0, SUMMARY_CHARS - 1)}…` : text;
}

export function rowsOf(steps: StepState[], run: ChainRun | undefined): Row[] {
  return steps.flatMap((step): Row[] => {
    const own: Row = { kind: 'step', key: `step:${step.id}`, step };
    const stored = run?.steps.find((candidate) => candidate.id === step.id);
    // Typed as an object by the contract, a map step's output is the list of its items' outputs.
    const items: unknown = stored?.kind === 'map' ? stored.output : undefined;
    if (!Array.isArray(items)) return [own];
    return [
      own,
      ...items.map((output: unknown, index): Row => ({
        kind: 'item',
        key: `item:${step.id}:${index}`,
        stepId: step.id,
        index,
        summary: summarise(output),
      })),
    ];
  });
}
