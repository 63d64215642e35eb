// The editor layer, run against the stand-in `vscode` module: activation registers every
// command and the view; with the fleet, the commands as a user drives them (answers scripted):
// sign in, the view's tree, the status bar, a scan's diagnostics, an agent on a selection,
// chain files' lens, completion and validation, a project generated into a folder.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import type * as vscodeTypes from 'vscode';

import { Client, type Status } from '../src/api';
import { COMMANDS } from '../src/contributions';
import { activate, SecretStore, type Explorer } from '../src/editor/extension';
import { followRun } from '../src/events';
import type { Node } from '../src/view';
import { GATEWAY, needsFleet, PASSWORD, PLANTED, register } from './fleet';
import { answers, commands, DiagnosticSeverity, Position, progress, Range, recorded, settings, TextDocument, Uri, window } from './vscode-stub';

const secrets = new Map<string, string>();
const context = {
  subscriptions: [] as { dispose(): unknown }[],
  secrets: {
    get: async (key: string) => secrets.get(key),
    store: async (key: string, value: string) => void secrets.set(key, value),
    delete: async (key: string) => void secrets.delete(key),
  },
};

/** Runs a command and fails on any error it showed. */
async function run(id: string, ...args: unknown[]) {
  const shown = recorded.messages.length;
  await commands.executeCommand(id, ...args);
  const errors = recorded.messages.slice(shown).filter((m) => m.startsWith('error:'));
  assert.deepEqual(errors, [], `${id} showed an error`);
  assert.deepEqual(answers, [], `${id} left answers unused`);
}

function open(fileName: string, text: string, languageId: string) {
  const document = new TextDocument(fileName, text, languageId);
  const lines = text.split('\n');
  const selection = Object.assign(new Range(0, 0, lines.length - 1, lines.at(-1)!.length), { isEmpty: false });
  window.activeTextEditor = { document, selection };
  return document;
}

before(() => {
  // Port 9 (discard) answers nothing: without a fleet, the extension starts signed out.
  settings.gatewayUrl = GATEWAY ?? 'http://127.0.0.1:9';
  settings.scanOnSave = true;
  settings.runsRefreshSeconds = 1;
  activate(context as unknown as vscodeTypes.ExtensionContext);
});

// The status bar's timer would keep the test process alive.
after(() => {
  for (const subscription of context.subscriptions) subscription.dispose();
});

test('activation registers every command of the manifest, the view and the status bar item', () => {
  assert.deepEqual([...recorded.commands.keys()].sort(), Object.keys(COMMANDS).sort());
  assert(recorded.trees.has('sankalpa.explorer'));
  assert(recorded.statusBar.shown);
  assert.equal(recorded.statusBar.command, 'sankalpa.signIn');
  assert(context.subscriptions.length >= Object.keys(COMMANDS).length);
});

test('a chain file gets the Validate and Run lens, other files none', () => {
  const chain = new TextDocument('/w/build.sankalpa.json', '{\n  "name": "x",\n  "agents": ["hello_world"]\n}');
  const lenses = recorded.codeLenses.flatMap((p) => p.provideCodeLenses(chain));
  assert.deepEqual(lenses.map((l) => [l.command.title, l.command.command, l.range.start.line]), [
    ['Validate', 'sankalpa.validateChainFile', 1],
    ['Run', 'sankalpa.runChainFile', 1],
  ]);
  assert.deepEqual(lenses[0]!.command.arguments, [chain.uri]);
  assert.deepEqual(recorded.codeLenses.flatMap((p) => p.provideCodeLenses(new TextDocument('/w/a.json', '{}'))), []);
});

describe('with the fleet', { skip: needsFleet }, () => {
  let email: string;

  test('signing in with email and password is kept in secret storage and shown in the status bar', async () => {
    email = await register();
    answers.push('Email and password', email, PASSWORD);
    await run('sankalpa.signIn');
    const kept = JSON.parse(secrets.get(`sankalpa.credential:${GATEWAY}`)!) as { kind: string };
    assert.equal(kept.kind, 'tokens');
    // The test's fleet runs without the marketplace and triggers: the gateway says degraded.
    const health = (await (await fetch(new URL('/api/status', GATEWAY))).json()) as Status;
    const icon = health.status === 'ok' ? '$(pass)' : '$(warning)';
    // A new tenant is named after its user's email.
    assert.equal(recorded.statusBar.text, `${icon} Sankalpa: ${email.split('@')[0]}`);
    for (const service of health.services) {
      assert(recorded.statusBar.tooltip.includes(`${service.name}: ${service.status}`), service.name);
    }
  });

  test("the view's tree has agents by category, stored chains and templates, recent runs", async () => {
    const explorer = recorded.trees.get('sankalpa.explorer') as Explorer;
    const top = explorer.getChildren();
    assert.deepEqual(top.map((n) => n.label), ['Agents', 'Chains', 'Recent runs']);
    const categories = explorer.getChildren(top[0]);
    const testing = categories.find((n) => n.label === 'testing')!;
    assert(explorer.getChildren(testing).some((n: Node) => n.label === 'security_scanner'));
    const agentItem = explorer.getTreeItem(explorer.getChildren(testing)[0]!);
    assert.equal(agentItem.contextValue, 'agent');
    const [stored, templates] = explorer.getChildren(top[1]);
    assert.equal(stored!.label, 'Stored');
    assert(explorer.getChildren(templates).some((n) => n.label === 'fullstack-app'));
    assert.deepEqual(explorer.getChildren(top[2]), []);
  });

  test('a scan puts the planted findings in the Problems panel at their lines', async () => {
    const document = open('/w/handler.py', PLANTED.code, 'python');
    await run('sankalpa.scanFile');
    const diagnostics = recorded.diagnostics.get(document.uri.toString())!;
    assert.deepEqual(
      diagnostics.map((d) => [d.code, d.range.start.line + 1, d.severity]),
      PLANTED.expected.map((e) => [e.rule, e.line, e.severity === 'error' ? DiagnosticSeverity.Error : DiagnosticSeverity.Warning]),
    );
    assert(recorded.messages.includes('info: security_scanner: 4 finding(s) in handler.py'));

    // Saved without its last line, the file is scanned again: the eval finding goes away.
    document.setText(PLANTED.code.split('\n').slice(0, -1).join('\n'));
    for (const listener of recorded.saveListeners) listener(document);
    const deadline = Date.now() + 10_000;
    while (recorded.diagnostics.get(document.uri.toString())!.length !== 3 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.deepEqual(recorded.diagnostics.get(document.uri.toString())!.map((d) => d.code), ['sql_injection', 'command_injection', 'weak_hash']);

    // A file never scanned is not scanned on save, nor is any once the setting is off.
    const other = open('/w/other.py', 'result = eval(name)', 'python');
    settings.scanOnSave = false;
    document.setText(PLANTED.code);
    for (const listener of recorded.saveListeners) listener(document);
    settings.scanOnSave = true;
    for (const listener of recorded.saveListeners) listener(other);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(recorded.diagnostics.get(document.uri.toString())!.length, 3);
    assert.equal(recorded.diagnostics.has(other.uri.toString()), false);
  });

  test("an agent runs on the selection and its result opens in a panel", async () => {
    open('/w/calc.py', 'def add(a, b):\n    return a + b\n', 'python');
    answers.push('critic');
    await run('sankalpa.runAgentOnSelection');
    const panel = recorded.panels.at(-1)!;
    assert.equal(panel.title, 'critic: completed');
    assert.match(panel.webview.html, /&quot;verdict&quot;/);
  });

  test('the fields an agent needs beyond the selection are asked for: a pick for a choice, a box otherwise', async () => {
    open('/w/notes.md', 'good morning', 'markdown');
    answers.push('text_translator', '"es"');
    await run('sankalpa.runAgentOnSelection');
    assert.equal(recorded.panels.at(-1)!.title, 'text_translator: completed');

    // An answer the field's type refuses is refused in the box (the stand-in stops there), and
    // nothing runs.
    const panels = recorded.panels.length;
    answers.push('version_tracker', '1.2.0', 'not json');
    await commands.executeCommand('sankalpa.runAgentOnSelection');
    assert.match(recorded.messages.at(-1)!, /^error: Sankalpa: the input box refused not json: changes is JSON/);
    assert.equal(recorded.panels.length, panels);
    answers.push('version_tracker', '1.2.0', '["fix: a crash on start"]');
    await run('sankalpa.runAgentOnSelection');
    assert.equal(recorded.panels.length, panels + 1);
    assert.equal(recorded.panels.at(-1)!.title, 'version_tracker: completed');
  });

  test('agent names are completed in a chain file, and it is validated by the gateway', async () => {
    const line = '  "steps": [{"id": "a", "agent": "hello_w';
    const document = new TextDocument('/w/c.sankalpa.json', `{\n${line}"}]\n}`);
    const items = await recorded.completions[0]!.provideCompletionItems(document, new Position(1, line.length));
    const hello = items.find((i) => i.label === 'hello_world');
    assert(hello, 'hello_world is offered');
    assert.deepEqual([hello.range!.start.character, hello.range!.end.character], [line.indexOf('hello_w'), line.length]);
    assert.deepEqual(await recorded.completions[0]!.provideCompletionItems(document, new Position(1, 10)), []);

    const folder = await mkdtemp(join(tmpdir(), 'sankalpa-chain-'));
    try {
      const file = join(folder, 'broken.sankalpa.yaml');
      await writeFile(file, 'steps:\n  - id: a\n    agent: hello_world\n    needs: [nowhere]\n');
      await commands.executeCommand('sankalpa.validateChainFile', Uri.file(file));
      assert.match(recorded.messages.at(-1)!, /^error: Invalid: .*steps\[0\]\.needs\[0\]/);
      await writeFile(file, 'agents: [hello_world, hello_world]\nmode: sequential\n');
      await run('sankalpa.validateChainFile', Uri.file(file));
      assert.equal(recorded.messages.at(-1), 'info: Valid: 2 step(s)');
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  test('a project is generated into a folder, asking before overwriting', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'sankalpa-project-'));
    const form = ['shop', 'A small shop', '[{"name": "Product", "fields": [{"name": "title", "type": "string"}]}]', []];
    try {
      answers.push(...form);
      await run('sankalpa.generateProject', Uri.file(folder));
      const written = await readdir(folder, { recursive: true });
      const readme = written.find((path) => path.endsWith('README.md'));
      assert(readme, written.join(', '));
      assert(recorded.output.some((line) => line.endsWith(': run.completed')));

      await writeFile(join(folder, readme), 'mine');
      answers.push(...form, 'Keep mine');
      await run('sankalpa.generateProject', Uri.file(folder));
      assert.match(recorded.messages.findLast((m) => m.startsWith('warning:'))!, /file\(s\) exist already/);
      assert.equal(await readFile(join(folder, readme), 'utf8'), 'mine');
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  test('a followed run is cancelled from its notification; a waiting step is approved from the view', async () => {
    const client = new Client(GATEWAY!, new SecretStore(context.secrets as unknown as vscodeTypes.SecretStorage, GATEWAY!));
    const me = await client.principal();
    const definition = {
      steps: [
        { id: 'gate', approval: { prompt: 'Go on?', approvers: [`user:${me.id}`] } },
        { id: 'after', needs: ['gate'], agent: 'hello_world' },
      ],
    };
    const cancelled = await client.executeChain({ definition, input: { name: 'Ada' } });
    const explorer = recorded.trees.get('sankalpa.explorer') as Explorer;
    await run('sankalpa.refresh');
    const runNode = (id: string) => explorer.getChildren(explorer.getChildren()[2]).find((n) => n.kind === 'run' && n.run.id === id)!;
    progress.cancelWhen = /step\.waiting_approval gate/;
    await run('sankalpa.followRun', runNode(cancelled.id));
    assert.equal(progress.cancelWhen, undefined, 'the step waited and Cancel was pressed');
    assert(recorded.output.includes(`run ${cancelled.id}: run.cancelled`));
    assert.equal((await client.run(cancelled.id)).status, 'cancelled');

    const approved = await client.executeChain({ definition, input: { name: 'Ada' } });
    let waiting: Node | undefined;
    for (let attempt = 0; attempt < 50 && !waiting; attempt++) {
      await run('sankalpa.refresh');
      const node = runNode(approved.id);
      if (node && explorer.getTreeItem(node).contextValue === 'run-live-waiting') waiting = node;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert(waiting, 'the run waits in the view');
    answers.push('from the editor');
    await run('sankalpa.approveStep', waiting);
    assert.equal(await followRun(client, approved.id, () => undefined), 'sankalpa.chains.run.completed');
    const gate = (await client.run(approved.id)).steps.find((step) => step.id === 'gate')!;
    assert.equal((gate.output as { comment?: string }).comment, 'from the editor');
  });

  test('signing out forgets the credential', async () => {
    await run('sankalpa.signOut');
    assert.equal(secrets.has(`sankalpa.credential:${GATEWAY}`), false);
    assert.match(recorded.statusBar.text, /signed out$/);
  });
});
