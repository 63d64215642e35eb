import { describe, expect, it } from 'vitest';

import { type ChainRun, type CloudEvent, apply, fromRun } from './timeline';

const RUN = '0b9e8f1c-2d7a-4c55-9a61-3f1b2c4d5e6f';

// As the gateway streams them (the orchestrator's payloads, services/chain-orchestrator/src/events.rs).
function event(sequence: number, action: string, data: Record<string, unknown>, time: string): CloudEvent {
  return {
    specversion: '1.0',
    id: `evt-${sequence}`,
    source: '/sankalpa/chain-orchestrator/replica-1',
    type: `sankalpa.chains.${action}`,
    subject: `chains.tenant-1.${RUN}.${action}`,
    datacontenttype: 'application/json',
    tenantid: 'tenant-1',
    sequence,
    time,
    data: { run_id: RUN, ...data },
  };
}

const pending: ChainRun = {
  id: RUN,
  chain_name: 'hello-sequence',
  status: 'pending',
  cancel_requested: false,
  session_id: `run-${RUN}`,
  workspace_id: RUN,
  created_by: 'user-1',
  steps: [
    { id: 'greet', kind: 'agent', agent: 'hello_world', status: 'pending', attempts: 0, duration_ms: 0, artifacts: [] },
    { id: 'shout', kind: 'agent', agent: 'text_transform', status: 'pending', attempts: 0, duration_ms: 0, artifacts: [] },
  ],
};

const recorded: CloudEvent[] = [
  event(11, 'run.started', { chain: 'hello-sequence' }, '2026-12-04T10:00:00.000Z'),
  event(12, 'step.started', { step_id: 'greet', agent: 'hello_world', attempt: 1, agent_run_id: `${RUN}-greet-1` }, '2026-12-04T10:00:00.100Z'),
  event(13, 'step.completed', { step_id: 'greet', agent: 'hello_world' }, '2026-12-04T10:00:00.350Z'),
  event(14, 'step.started', { step_id: 'shout', agent: 'text_transform', attempt: 1 }, '2026-12-04T10:00:00.400Z'),
  event(15, 'step.failed', { step_id: 'shout', agent: 'text_transform', error: { code: 'invalid_input', message: 'text is required' } }, '2026-12-04T10:00:00.450Z'),
  event(16, 'step.started', { step_id: 'shout', agent: 'text_transform', attempt: 2 }, '2026-12-04T10:00:01.000Z'),
  event(17, 'step.completed', { step_id: 'shout', agent: 'text_transform' }, '2026-12-04T10:00:01.200Z'),
  event(18, 'run.completed', { chain: 'hello-sequence', status: 'completed' }, '2026-12-04T10:00:01.210Z'),
];

describe('the run timeline', () => {
  it('turns steps green as their events arrive, with attempts and durations', () => {
    let timeline = fromRun(pending);
    timeline = apply(timeline, recorded[0]!);
    timeline = apply(timeline, recorded[1]!);
    expect(timeline.status).toBe('running');
    expect(timeline.steps[0]).toMatchObject({ status: 'running', attempts: 1 });

    const done = recorded.slice(2).reduce(apply, timeline);
    expect(done.status).toBe('completed');
    expect(done.lastSequence).toBe(18);
    expect(done.steps[0]).toMatchObject({ status: 'completed', attempts: 1, durationMs: 250 });
    // The retry cleared the first attempt's error.
    expect(done.steps[1]).toMatchObject({ status: 'completed', attempts: 2, durationMs: 200 });
    expect(done.steps[1]!.error).toBeUndefined();
  });

  it('ignores events replayed after a reconnection', () => {
    const once = recorded.slice(0, 5).reduce(apply, fromRun(pending));
    // The stream resumed from Last-Event-ID 13 and sent 13 to 15 again.
    const replayed = recorded.slice(2, 5).reduce(apply, once);
    expect(replayed).toBe(once);
    expect(replayed.steps[1]).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: { code: 'invalid_input', message: 'text is required' },
    });
  });

  it('shows an approval waiting for a decision, then its outcome', () => {
    const approval: ChainRun = {
      ...pending,
      steps: [{ id: 'review', kind: 'approval', agent: '', status: 'pending', attempts: 0, duration_ms: 0, artifacts: [] }],
    };
    let timeline = apply(
      fromRun(approval),
      event(3, 'step.waiting_approval', { step_id: 'review', prompt: 'Ship it?', approvers: [] }, '2026-12-04T10:00:00Z'),
    );
    expect(timeline.status).toBe('waiting');
    expect(timeline.steps[0]).toMatchObject({ status: 'waiting', prompt: 'Ship it?' });
    timeline = apply(
      timeline,
      event(4, 'step.failed', { step_id: 'review', error: { code: 'rejected', message: 'no' } }, '2026-12-04T10:00:05Z'),
    );
    expect(timeline.steps[0]).toMatchObject({ status: 'failed', error: { code: 'rejected' } });
  });

  it('adds a step it did not know and records a failed run', () => {
    const timeline = [
      event(5, 'step.started', { step_id: 'extra', agent: 'echo', attempt: 1 }, '2026-12-04T10:00:00Z'),
      event(6, 'run.failed', { status: 'failed', error: { code: 'step_failed', message: 'extra failed' } }, '2026-12-04T10:00:01Z'),
    ].reduce(apply, fromRun(pending));
    expect(timeline.steps.map((step) => step.id)).toEqual(['greet', 'shout', 'extra']);
    expect(timeline.status).toBe('failed');
    expect(timeline.error).toEqual({ code: 'step_failed', message: 'extra failed' });
  });
});
