import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { type StreamState, followRun } from './stream';
import type { CloudEvent } from './timeline';

function frame(sequence: number, action: string): string {
  const event = {
    specversion: '1.0',
    id: `evt-${sequence}`,
    source: '/sankalpa/chain-orchestrator/a',
    type: `sankalpa.chains.${action}`,
    subject: `chains.t.run-1.${action}`,
    datacontenttype: 'application/json',
    tenantid: 't',
    sequence,
    data: { run_id: 'run-1', step_id: 'greet' },
  };
  return `id: ${sequence}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

let close: (() => void) | undefined;
afterEach(() => close?.());

// A real HTTP server speaking the gateway's stream: the first connection drops after two
// events; the reconnection must name the last one seen and gets the rest.
describe('followRun', () => {
  it('reconnects after a drop and resumes after the last event seen', async () => {
    const resumedFrom: (string | undefined)[] = [];
    const server = createServer((request: IncomingMessage, response: ServerResponse) => {
      resumedFrom.push(request.headers['last-event-id'] as string | undefined);
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      if (resumedFrom.length === 1) {
        response.write(frame(1, 'step.started') + frame(2, 'step.completed'));
        setTimeout(() => response.socket?.destroy(), 50);
      } else {
        response.end(frame(3, 'run.completed'));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    close = () => server.close();
    const { port } = server.address() as AddressInfo;

    const events: CloudEvent[] = [];
    const states: StreamState[] = [];
    await new Promise<void>((resolve) => {
      followRun('run-1', 0, (event) => events.push(event), (state) => {
        states.push(state);
        if (state === 'ended') resolve();
      }, `http://127.0.0.1:${port}`);
    });

    expect(events.map((event) => event.sequence)).toEqual([1, 2, 3]);
    expect(resumedFrom).toEqual([undefined, '2']);
    expect(states).toEqual(['connecting', 'live', 'reconnecting', 'live', 'ended']);
  });
});
