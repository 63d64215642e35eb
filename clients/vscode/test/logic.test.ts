// The logic modules against the real fleet: sign-in and silent refresh, an API key, an agent
// run on a selection, security_scanner's SARIF mapped to the planted findings' ranges, a
// generated project downloaded into a temp folder, a run's events followed, cancel and approve.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { ApiError, Client, MemoryStore, type CloudEvent } from '../src/api';
import { readTarGz } from '../src/archive';
import { followRun, TERMINAL } from '../src/events';
import { buildInput, type FieldSchema } from '../src/input';
import { plan, write } from '../src/project';
import { findingsFromSarif } from '../src/sarif';
import { GATEWAY, needsFleet, PASSWORD, PLANTED, register, signedIn } from './fleet';

describe('against the fleet', { skip: needsFleet }, () => {
  test('signing in keeps a token pair, and a wrong password is refused', async () => {
    const email = await register();
    const store = new MemoryStore();
    const client = new Client(GATEWAY!, store);
    await assert.rejects(client.signIn(email, 'not the password'), (error: ApiError) => error.status === 401);
    assert.equal(store.credential, undefined);
    const principal = await client.signIn(email, PASSWORD);
    assert.equal(principal.kind, 'user');
    assert.equal((store as MemoryStore).credential?.kind, 'tokens');
  });

  test('an access token about to expire is refreshed silently, once for concurrent calls', async () => {
    const { client, store } = await signedIn();
    const before = store.credential;
    assert(before?.kind === 'tokens');
    store.credential = { ...before, refreshAt: Date.now() - 1 };
    const principals = await Promise.all([client.principal(), client.principal(), client.agents()]);
    assert.equal(principals[0].tenant_id, principals[1].tenant_id);
    const after = store.credential;
    assert(after?.kind === 'tokens');
    assert.notEqual(after.refresh, before.refresh);
    assert(after.refreshAt > Date.now() && after.refreshAt < after.expiresAt);
    // The old refresh token was used once: presenting it again is refused.
    const replay = await fetch(new URL('/api/users/refresh', GATEWAY), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: before.refresh }),
    });
    assert.equal(replay.status, 401);
  });

  // The fleet's access tokens live SANKALPA_ACCESS_TTL_SECONDS (10 s in vscode.rs).
  const ttl = Number(process.env.SANKALPA_ACCESS_TTL_SECONDS ?? 0);
  test('a session outlives its access token, renewed a fifth of its life early', { skip: ttl ? false : 'SANKALPA_ACCESS_TTL_SECONDS is not set' }, async () => {
    const { client, store } = await signedIn();
    const first = store.credential;
    assert(first?.kind === 'tokens');
    assert.equal(first.expiresAt - first.refreshAt, (ttl * 1000) / 5);
    await new Promise((resolve) => setTimeout(resolve, ttl * 1000 + 500));
    assert.equal((await client.principal()).kind, 'user');
    const renewed = store.credential;
    assert(renewed?.kind === 'tokens' && renewed.refresh !== first.refresh);
  });

  test('an API key is kept only once the gateway accepts it', async () => {
    const { client } = await signedIn();
    const created = await client.json<{ secret: string }>('POST', '/api/keys', { body: { name: 'vscode' } });
    const store = new MemoryStore();
    const keyed = new Client(GATEWAY!, store);
    await assert.rejects(keyed.useApiKey('sk_not_a_key'), (error: ApiError) => error.status === 401);
    assert.equal(store.credential, undefined);
    const principal = await keyed.useApiKey(created.secret);
    assert.equal(principal.kind, 'api_key');
    assert.equal((await keyed.principal()).tenant_id, (await client.principal()).tenant_id);
  });

  test('an agent runs on a selection with the input its schema asks for', async () => {
    const { client } = await signedIn();
    const agent = await client.agent('code_summarizer');
    const selection = 'def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n';
    const { input, missing } = buildInput(agent.input_schema as FieldSchema, {
      text: selection,
      fileName: 'calc.py',
      languageId: 'python',
    });
    assert.deepEqual(missing, []);
    assert.deepEqual(input, { code: selection, language: 'python' });
    const run = await client.executeAgent({ agent: 'code_summarizer', input, llm: 'off' });
    assert.equal(run.status, 'completed', JSON.stringify(run.error));
    const output = run.output as { metrics: { functions: number }; language: string };
    assert.equal(output.metrics.functions, 2);
    assert.equal(output.language, 'python');
  });

  test("security_scanner's SARIF lands on the planted findings' lines and tokens", async () => {
    const { client } = await signedIn();
    const run = await client.executeAgent({ agent: 'security_scanner', input: { code: PLANTED.code, filename: 'handler.py' } });
    assert.equal(run.status, 'completed', JSON.stringify(run.error));
    const files = readTarGz(await client.artifacts(run.workspace_id));
    const sarif = files.find((file) => file.path === 'reports/security-scan.sarif');
    assert(sarif, `no SARIF among ${files.map((f) => f.path).join(', ')}`);
    const lines = PLANTED.code.split('\n');
    const findings = findingsFromSarif(JSON.parse(new TextDecoder().decode(sarif.data)), lines);
    assert.deepEqual(
      findings.map((f) => [f.rule, f.line + 1]),
      PLANTED.expected.map((e) => [e.rule, e.line]),
    );
    for (const [index, finding] of findings.entries()) {
      const expected = PLANTED.expected[index]!;
      const text = lines[finding.line]!;
      assert.equal(finding.column, text.indexOf(expected.token), `${expected.rule} starts at its token`);
      assert.equal(finding.uri, 'handler.py');
      assert.equal(finding.severity, expected.severity);
      assert.match(finding.message, /\(CWE-\d+\)$/);
    }
  });

  test('a generated project is written into a folder, and existing files are kept unless allowed', async () => {
    const { client } = await signedIn();
    const folder = await mkdtemp(join(tmpdir(), 'sankalpa-vscode-'));
    try {
      const run = await client.executeChain({
        template: 'fullstack-app',
        input: {
          project_name: 'shop',
          entities: [{ name: 'Product', fields: [{ name: 'title', type: 'string', required: true }] }],
          features: [],
        },
        wait: true,
        wait_timeout_ms: 120_000,
      });
      assert.equal(run.status, 'completed', JSON.stringify(run.error));
      const files = readTarGz(await client.artifacts(run.id));
      assert(files.length > 10, `only ${files.length} files`);
      const first = await plan(folder, files);
      assert.equal(first.overwrite.length, 0);
      assert.equal(first.create.length, files.length);
      const written = await write(folder, files, first, false);
      assert.equal(written.length, files.length);
      const readme = files.find((f) => f.path.endsWith('README.md'))!;
      assert.deepEqual(await readFile(join(folder, readme.path)), Buffer.from(readme.data));

      await writeFile(join(folder, readme.path), 'mine');
      const second = await plan(folder, files);
      assert.equal(second.overwrite.length, files.length);
      await write(folder, files, second, false);
      assert.equal(await readFile(join(folder, readme.path), 'utf8'), 'mine');
      await write(folder, files, second, true);
      assert.deepEqual(await readFile(join(folder, readme.path)), Buffer.from(readme.data));
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  test("a run's events are followed in order to its end", async () => {
    const { client } = await signedIn();
    const run = await client.executeChain({ template: 'hello-sequence', input: { name: 'Ada' } });
    const events: CloudEvent[] = [];
    const ended = await followRun(client, run.id, (event) => events.push(event));
    assert.equal(ended, 'sankalpa.chains.run.completed');
    const types = events.map((e) => e.type.replace('sankalpa.chains.', ''));
    assert.equal(types[0], 'run.started');
    assert.equal(types.filter((t) => t === 'step.completed').length, 2);
    assert.equal(types.at(-1), 'run.completed');
    const sequences = events.map((e) => e.sequence);
    assert.deepEqual(sequences, [...sequences].sort((a, b) => a - b));
  });

  const gated = (userId: string) => ({
    steps: [
      { id: 'hello', agent: 'hello_world' },
      { id: 'gate', needs: ['hello'], approval: { prompt: 'Go on?', approvers: [`user:${userId}`] } },
      { id: 'after', needs: ['gate'], agent: 'hello_world' },
    ],
  });

  test('a waiting run is cancelled while it is followed', async () => {
    const { client } = await signedIn();
    const me = await client.principal();
    const run = await client.executeChain({ definition: gated(me.id), input: { name: 'Ada' } });
    const events: string[] = [];
    const following = followRun(client, run.id, (event) => {
      events.push(event.type);
      if (event.type === 'sankalpa.chains.step.waiting_approval') void client.cancel(run.id);
    });
    assert.equal(await following, 'sankalpa.chains.run.cancelled');
    assert(events.includes('sankalpa.chains.step.waiting_approval'));
    assert.equal((await client.run(run.id)).status, 'cancelled');
  });

  test('a waiting step is approved and the run completes', async () => {
    const { client } = await signedIn();
    const me = await client.principal();
    const run = await client.executeChain({ definition: gated(me.id), input: { name: 'Ada' } });
    const ended = await followRun(client, run.id, (event) => {
      if (event.type === 'sankalpa.chains.step.waiting_approval') void client.decide(run.id, 'gate', 'approve', 'from the editor');
    });
    assert.equal(ended, 'sankalpa.chains.run.completed');
    const after = await client.run(run.id);
    assert.equal(after.steps.find((s) => s.id === 'gate')?.status, 'completed');
  });

  test("following stops when asked, and another tenant's run is not found", async () => {
    const { client } = await signedIn();
    const other = await signedIn();
    const me = await client.principal();
    const run = await client.executeChain({ definition: gated(me.id), input: {} });
    await assert.rejects(followRun(other.client, run.id, () => undefined), (error: ApiError) => error.status === 404);
    const abort = new AbortController();
    const seen: string[] = [];
    const following = followRun(client, run.id, (event) => {
      seen.push(event.type);
      if (event.type === 'sankalpa.chains.step.waiting_approval') abort.abort();
    }, abort.signal);
    await assert.rejects(following);
    assert(!seen.some((type) => TERMINAL.includes(type)));
    await client.cancel(run.id);
  });
});
