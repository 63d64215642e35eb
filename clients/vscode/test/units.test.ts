// The logic modules' parts that need no fleet: the SSE reader across chunk boundaries, the tar
// reader and the paths it may write, SARIF columns in characters, the CLI's profiles, chain
// files.
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';

import { readTarGz } from '../src/archive';
import { agentNameAt, isChainFile, parseChainText } from '../src/chainfile';
import { readSse } from '../src/events';
import { buildInput, parseAnswer } from '../src/input';
import { configDir, DEFAULT_GATEWAY, gatewayUrl, readProfiles } from '../src/profiles';
import { inside, plan } from '../src/project';
import { findingsFromSarif } from '../src/sarif';

async function* chunks(text: string, size: number) {
  const bytes = new TextEncoder().encode(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

test('the SSE reader joins events split anywhere, multi-byte characters included', async () => {
  const stream = ': keep-alive\n\nid: 7\nevent: sankalpa.chains.run.started\ndata: {"a":"é🙂"}\n\r\nid: 8\ndata: one\ndata: two\n\n';
  for (const size of [1, 2, 3, 7, 1000]) {
    const events = [];
    for await (const event of readSse(chunks(stream, size))) events.push(event);
    assert.deepEqual(events, [
      { id: '7', event: 'sankalpa.chains.run.started', data: '{"a":"é🙂"}' },
      { id: '8', event: 'message', data: 'one\ntwo' },
    ], `chunks of ${size}`);
  }
});

/** A tar of `files` as GNU tar writes one (ustar headers, `L` records for long names). */
function tar(files: Record<string, string>): Uint8Array {
  const blocks: Buffer[] = [];
  const header = (name: string, size: number, type: string) => {
    const block = Buffer.alloc(512);
    block.write(name.slice(0, 100), 0);
    block.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
    block.write(type, 156);
    block.write('ustar\0', 257);
    return block;
  };
  const body = (text: string) => {
    const data = Buffer.from(text);
    return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
  };
  for (const [name, text] of Object.entries(files)) {
    if (name.length > 100) blocks.push(header('././@LongLink', name.length + 1, 'L'), body(`${name}\0`));
    blocks.push(header(name, Buffer.byteLength(text), '0'), body(text));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

test('the tar reader reads files and long names; unsafe paths are refused', async () => {
  const long = `${'deep/'.repeat(30)}file.txt`;
  const files = readTarGz(tar({ 'a.txt': 'A', [long]: 'L', '../escape.txt': 'x', '/etc/passwd': 'x', 'dir/../../x': 'x' }));
  assert.deepEqual(files.map((f) => [f.path, new TextDecoder().decode(f.data)]), [
    ['a.txt', 'A'], [long, 'L'], ['../escape.txt', 'x'], ['/etc/passwd', 'x'], ['dir/../../x', 'x'],
  ]);
  const root = await mkdtemp(join(tmpdir(), 'sankalpa-units-'));
  try {
    await mkdir(join(root, 'a.txt.d'));
    await writeFile(join(root, 'a.txt'), 'mine');
    const planned = await plan(root, [...files, { path: 'a.txt.d', data: new Uint8Array() }]);
    assert.deepEqual(planned, {
      create: [long],
      overwrite: ['a.txt'],
      refused: ['../escape.txt', '/etc/passwd', 'dir/../../x', 'a.txt.d'],
    });
    assert.equal(inside(root, 'a\\b'), undefined);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('SARIF columns in characters become UTF-16 columns; a result without a column starts at the text', () => {
  const lines = ['x = 1', '  s = "🙂🙂"; eval(y)', '    exec(z)'];
  const log = {
    runs: [{
      results: [
        { ruleId: 'code_injection', level: 'error', message: { text: 'eval' }, properties: { cwe: 'CWE-95' },
          locations: [{ physicalLocation: { artifactLocation: { uri: 'f.py' }, region: { startLine: 2, startColumn: 13 } } }] },
        { ruleId: 'other', level: 'note', message: { text: 'exec' }, locations: [{ physicalLocation: { region: { startLine: 3 } } }] },
      ],
    }],
  };
  const [first, second] = findingsFromSarif(log, lines);
  assert.deepEqual(first, { uri: 'f.py', line: 1, column: 14, endLine: 1, endColumn: 21, severity: 'error', message: 'eval (CWE-95)', rule: 'code_injection' });
  assert.equal(lines[1]!.slice(first!.column), 'eval(y)');
  assert.deepEqual([second!.line, second!.column, second!.severity], [2, 4, 'information']);
  assert.throws(() => findingsFromSarif({ version: '2.1.0' }, lines), /no runs/);
});

test("the CLI's config.toml names the gateway; the setting wins, the CLI's default is last", async () => {
  const home = await mkdtemp(join(tmpdir(), 'sankalpa-config-'));
  try {
    assert.equal(configDir({ XDG_CONFIG_HOME: home, HOME: '/nowhere' }), join(home, 'sankalpa'));
    assert.equal(configDir({ HOME: home }), join(home, '.config', 'sankalpa'));
    const dir = join(home, 'sankalpa');
    assert.equal(gatewayUrl({}, await readProfiles(dir)), DEFAULT_GATEWAY);
    await mkdir(dir);
    // As the CLI writes it (toml::to_string_pretty of clients/cli/src/config.rs's Config).
    await writeFile(join(dir, 'config.toml'), 'default_profile = "staging"\n\n[profiles.staging]\ngateway = "https://staging.example.com"\n\n[profiles.local]\ngateway = "http://127.0.0.1:9090"\noutput = "json"\n');
    const profiles = await readProfiles(dir);
    assert.equal(gatewayUrl({}, profiles), 'https://staging.example.com');
    assert.equal(gatewayUrl({ profile: 'local' }, profiles), 'http://127.0.0.1:9090');
    assert.equal(gatewayUrl({ profile: 'missing' }, profiles), DEFAULT_GATEWAY);
    assert.equal(gatewayUrl({ gatewayUrl: 'http://x:1', profile: 'local' }, profiles), 'http://x:1');
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test('chain files parse as JSON or YAML, with the line of a syntax error, and agent names are found', () => {
  assert(isChainFile('build.sankalpa.yaml') && isChainFile('a/b.sankalpa.json') && !isChainFile('x.json'));
  assert.deepEqual(parseChainText('{"agents": ["hello_world"], "mode": "sequential"}'), {
    definition: { agents: ['hello_world'], mode: 'sequential' },
  });
  assert.deepEqual(parseChainText('steps:\n  - id: a\n    agent: hello_world\n'), {
    definition: { steps: [{ id: 'a', agent: 'hello_world' }] },
  });
  const broken = parseChainText('steps:\n  - id: a\n    agent: [unclosed\n');
  assert('error' in broken && broken.line >= 2, JSON.stringify(broken));
  assert.deepEqual(agentNameAt('    "agent": "api_b', 19), { typed: 'api_b', start: 14 });
  assert.deepEqual(agentNameAt('    agent: ', 11), { typed: '', start: 11 });
  assert.equal(agentNameAt('    "id": "api_b', 16), undefined);
});

test('input is built from the editor where the schema allows, the rest is asked with checks', () => {
  const schema = {
    type: 'object',
    properties: {
      code: { type: 'string' },
      filename: { type: 'string' },
      depth: { type: 'integer', minimum: 1, maximum: 5 },
      mode: { enum: ['fast', 'thorough'] },
      strict: { type: 'boolean' },
    },
    required: ['code', 'depth', 'mode', 'strict'],
  };
  const { input, missing } = buildInput(schema, { text: 'x = 1', fileName: 'a.py', languageId: 'python' });
  assert.deepEqual(input, { code: 'x = 1', filename: 'a.py' });
  assert.deepEqual(missing.map((f) => [f.name, f.ask, f.choices]), [
    ['depth', 'text', []],
    ['mode', 'pick', ['"fast"', '"thorough"']],
    ['strict', 'pick', ['true', 'false']],
  ]);
  const [depth, mode, strict] = missing;
  assert.deepEqual(parseAnswer(depth!, '3'), { value: 3 });
  assert.deepEqual(parseAnswer(depth!, '9'), { error: 'depth is at most 5' });
  assert.deepEqual(parseAnswer(depth!, '2.5'), { error: 'depth is a whole number' });
  assert.deepEqual(parseAnswer(mode!, '"fast"'), { value: 'fast' });
  assert.deepEqual(parseAnswer(strict!, 'false'), { value: false });
});
