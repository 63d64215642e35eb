/**
 * A chain run's live state, folded from its CloudEvents (`GET /api/chains/runs/{id}/events`).
 * The run as fetched once seeds it; each event then moves a step or the run along. Events carry
 * their stream sequence: one at or below the last applied is a replay after a reconnection and
 * is ignored, so the timeline never goes backwards or counts an attempt twice.
 */
import type { Schemas } from '../api/client';

export type ChainRun = Schemas['ChainRun'];
export type CloudEvent = Schemas['CloudEvent'];

export interface StepState {
  id: string;
  agent: string;
  status: string;
  attempts: number;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  error?: { code: string; message: string };
  waitingReason?: string;
  prompt?: string;
  skipReason?: string;
}

export interface Timeline {
  runId: string;
  status: string;
  steps: StepState[];
  /** The last sequence applied; a reconnection resumes after it (`Last-Event-ID`). */
  lastSequence: number;
  error?: { code: string; message: string };
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export function isFinished(status: string): boolean {
  return TERMINAL.has(status);
}

export function fromRun(run: ChainRun): Timeline {
  return {
    runId: run.id,
    status: run.status,
    lastSequence: 0,
    ...(run.error ? { error: { code: run.error.code, message: run.error.message } } : {}),
    steps: run.steps.map((step) => ({
      id: step.id,
      agent: step.agent,
      status: step.status,
      attempts: step.attempts,
      ...(step.started_at ? { startedAt: step.started_at } : {}),
      ...(step.finished_at ? { finishedAt: step.finished_at } : {}),
      ...(step.finished_at ? { durationMs: step.duration_ms } : {}),
      ...(step.error ? { error: { code: step.error.code, message: step.error.message } } : {}),
      ...(step.skip_reason ? { skipReason: step.skip_reason } : {}),
    })),
  };
}

type Data = Record<string, unknown>;

function text(data: Data, key: string): string | undefined {
  const value = data[key];
  return typeof value === 'string' ? value : undefined;
}

function errorOf(data: Data): { code: string; message: string } | undefined {
  const error = data.error;
  if (!error || typeof error !== 'object') return undefined;
  const { code, message } = error as Data;
  return { code: String(code ?? ''), message: String(message ?? '') };
}

function elapsed(from: string | undefined, to: string | undefined): number | undefined {
  if (!from || !to) return undefined;
  return Math.max(0, Date.parse(to) - Date.parse(from));
}

function updateStep(timeline: Timeline, id: string, change: (step: StepState) => StepState): StepState[] {
  const known = timeline.steps.some((step) => step.id === id);
  const steps = known
    ? timeline.steps
    : [...timeline.steps, { id, agent: '', status: 'pending', attempts: 0 }];
  return steps.map((step) => (step.id === id ? change(step) : step));
}

/** The timeline after `event`. */
export function apply(timeline: Timeline, event: CloudEvent): Timeline {
  if (event.sequence !== 0 && event.sequence <= timeline.lastSequence) return timeline;
  const next = { ...timeline, lastSequence: Math.max(timeline.lastSequence, event.sequence) };
  const data = (event.data ?? {}) as Data;
  const action = event.type.replace(/^sankalpa\.chains\./, '');
  const at = event.time ?? undefined;
  const stepId = text(data, 'step_id');
  switch (action) {
    case 'run.started':
      return isFinished(next.status) ? next : { ...next, status: 'running' };
    case 'run.completed':
      return { ...next, status: text(data, 'status') ?? 'completed' };
    case 'run.failed': {
      const error = errorOf(data);
      return { ...next, status: 'failed', ...(error ? { error } : {}) };
    }
    case 'run.cancelled':
      return { ...next, status: 'cancelled' };
  }
  if (!stepId) return next;
  switch (action) {
    case 'step.started':
      return {
        ...next,
        status: next.status === 'pending' || next.status === 'waiting' ? 'running' : next.status,
        steps: updateStep(next, stepId, (step) => {
          const { error: _error, waitingReason: _reason, finishedAt: _end, durationMs: _ms, ...rest } = step;
          return {
            ...rest,
            agent: text(data, 'agent') ?? step.agent,
            status: 'running',
            attempts: Math.max(step.attempts, Number(data.attempt ?? step.attempts + 1)),
            ...(at ? { startedAt: at } : {}),
          };
        }),
      };
    case 'step.waiting':
      return {
        ...next,
        steps: updateStep(next, stepId, (step) => {
          const reason = errorOf({ error: data.reason });
          return { ...step, ...(reason ? { waitingReason: reason.message } : {}) };
        }),
      };
    case 'step.waiting_approval':
      return {
        ...next,
        status: 'waiting',
        steps: updateStep(next, stepId, (step) => ({
          ...step,
          status: 'waiting',
          ...(text(data, 'prompt') ? { prompt: text(data, 'prompt') } : {}),
        })),
      };
    case 'step.completed':
    case 'step.failed':
    case 'step.skipped': {
      const status = action.slice('step.'.length);
      return {
        ...next,
        steps: updateStep(next, stepId, (step) => {
          const error = errorOf(data);
          const durationMs = elapsed(step.startedAt, at);
          const { waitingReason: _reason, ...rest } = step;
          return {
            ...rest,
            status,
            ...(at ? { finishedAt: at } : {}),
            ...(durationMs !== undefined ? { durationMs } : {}),
            ...(error ? { error } : {}),
            ...(text(data, 'skip_reason') ? { skipReason: text(data, 'skip_reason') } : {}),
          };
        }),
      };
    }
    default:
      return next;
  }
}
