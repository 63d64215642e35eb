// The thin layer binding the logic modules to VS Code: commands, the Sankalpa view, the status
// bar item, diagnostics, the chain files' code lens and completion. Everything it decides is
// in the modules beside src/ (tested in plain node); here only the editor's API is called.
import { basename } from 'node:path';
import { readFile } from 'node:fs/promises';

import * as vscode from 'vscode';

import { Client, type ChainRun, type CloudEvent, type Credential, type CredentialStore, type ExecuteChain } from '../api';
import { readTarGz } from '../archive';
import { agentNameAt, isChainFile, lensLine, parseChainText } from '../chainfile';
import { COMMANDS, type CommandId } from '../contributions';
import { describeEvent, followRun } from '../events';
import { buildInput, parseAnswer, type FieldSchema } from '../input';
import { plan, write } from '../project';
import { configDir, gatewayUrl, readProfiles } from '../profiles';
import { findingsFromSarif, type Finding } from '../sarif';
import { isLive, RECENT_RUNS, runIcon, statusText, tree, type Node, type ViewData } from '../view';

const SARIF_PATH = 'reports/security-scan.sarif';
/** How often the status bar reads the fleet's health (ms). */
const STATUS_INTERVAL_MS = 60_000;

/**
 * The credential of one gateway in VS Code's SecretStorage: a credential is only ever sent to
 * the gateway that issued it, so changing the gateway setting asks for a new sign-in.
 */
export class SecretStore implements CredentialStore {
  private readonly key: string;
  constructor(
    private readonly secrets: vscode.SecretStorage,
    gateway: string,
  ) {
    this.key = `sankalpa.credential:${gateway}`;
  }
  async load() {
    const text = await this.secrets.get(this.key);
    return text ? (JSON.parse(text) as Credential) : undefined;
  }
  async save(credential: Credential | undefined) {
    if (credential) await this.secrets.store(this.key, JSON.stringify(credential));
    else await this.secrets.delete(this.key);
  }
}

/** The view's tree, read from the gateway on refresh. */
export class Explorer implements vscode.TreeDataProvider<Node> {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private nodes: Node[] = [];

  constructor(private readonly load: () => Promise<ViewData>) {}

  async refresh(): Promise<ViewData> {
    const data = await this.load();
    this.nodes = tree(data);
    this.changed.fire(undefined);
    return data;
  }

  getChildren(node?: Node): Node[] {
    if (!node) return this.nodes;
    return node.kind === 'group' ? node.children : [];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    const item = new vscode.TreeItem(
      node.label,
      node.kind === 'group' ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None,
    );
    item.id = node.id;
    if (node.kind === 'agent') {
      item.contextValue = 'agent';
      item.tooltip = node.agent.description;
      item.description = node.agent.version;
    } else if (node.kind === 'chain') {
      item.contextValue = 'chain';
      item.tooltip = node.chain.description;
      item.description = `${node.chain.step_count} steps`;
    } else if (node.kind === 'run') {
      item.contextValue = isLive(node.run) ? `run-live-${node.run.status}` : 'run';
      item.iconPath = new vscode.ThemeIcon(runIcon(node.run));
      item.description = node.run.created_at ?? '';
      item.command = { command: 'sankalpa.openRun', title: 'Open run', arguments: [node] };
    }
    return item;
  }
}

export function activate(context: vscode.ExtensionContext): void {
  const settings = () => vscode.workspace.getConfiguration('sankalpa');
  let client: Client | undefined;
  const api = async () => {
    const profiles = await readProfiles(configDir());
    const url = gatewayUrl(
      { gatewayUrl: settings().get<string>('gatewayUrl'), profile: settings().get<string>('profile') },
      profiles,
    );
    if (client?.baseUrl !== url) client = new Client(url, new SecretStore(context.secrets, url));
    return client;
  };

  const output = vscode.window.createOutputChannel('Sankalpa');
  const diagnostics = vscode.languages.createDiagnosticCollection('sankalpa');
  const scanned = new Set<string>();
  const status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left);
  status.command = 'sankalpa.signIn';
  status.show();

  const explorer = new Explorer(async () => {
    const c = await api();
    const [agents, chains, runs] = await Promise.all([c.agents(), c.chains(), c.runs(RECENT_RUNS)]);
    return { agents, chains, runs };
  });
  let refreshTimer: NodeJS.Timeout | undefined;
  const refreshView = async () => {
    clearTimeout(refreshTimer);
    const data = await explorer.refresh();
    // Live runs are read again until none is: their status is what the view is for.
    if (data.runs.some(isLive)) {
      refreshTimer = setTimeout(() => void refreshView().catch(() => undefined), (settings().get<number>('runsRefreshSeconds') ?? 3) * 1000);
    }
  };
  const refreshStatus = async () => {
    const c = await api();
    const [health, principal] = await Promise.all([
      c.status().catch(() => undefined),
      c.principal().catch(() => undefined),
    ]);
    const tenant = principal && (await c.tenant(principal.tenant_id).catch(() => undefined));
    Object.assign(status, statusText(health, principal, tenant));
  };
  const statusTimer = setInterval(() => void refreshStatus(), STATUS_INTERVAL_MS);

  const scan = async (document: vscode.TextDocument) => {
    const c = await api();
    const run = await c.executeAgent({ agent: 'security_scanner', input: { code: document.getText(), filename: basename(document.fileName) } });
    if (run.status !== 'completed') throw new Error(`security_scanner ${run.status}: ${run.error?.message ?? ''}`);
    const sarif = readTarGz(await c.artifacts(run.workspace_id)).find((f) => f.path === SARIF_PATH);
    if (!sarif) throw new Error(`the scan wrote no ${SARIF_PATH}`);
    const findings = findingsFromSarif(JSON.parse(new TextDecoder().decode(sarif.data)), document.getText().split(/\r?\n/));
    diagnostics.set(document.uri, findings.map(toDiagnostic));
    scanned.add(document.uri.toString());
    return findings.length;
  };

  const follow = (runId: string, title: string) =>
    vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title, cancellable: true },
      async (progress, token) => {
        const c = await api();
        output.show(true);
        output.appendLine(`run ${runId}`);
        token.onCancellationRequested(() => void c.cancel(runId).catch((e: Error) => output.appendLine(e.message)));
        const ended = await followRun(c, runId, (event: CloudEvent) => {
          const line = describeEvent(event);
          output.appendLine(line);
          progress.report({ message: line });
        });
        output.appendLine(`run ${runId}: ${ended.replace(/^sankalpa\.chains\./, '')}`);
        void refreshView().catch(() => undefined);
        return ended;
      },
    );

  const pickRun = async (node?: Node): Promise<ChainRun | undefined> => {
    if (node?.kind === 'run') return node.run;
    const runs = (await (await api()).runs(RECENT_RUNS)).filter(isLive);
    const picked = await vscode.window.showQuickPick(runs.map((run) => ({ label: run.chain_name, description: run.id, run })));
    return picked?.run;
  };

  const decide = async (node: Node | undefined, decision: 'approve' | 'reject') => {
    const run = await pickRun(node);
    if (!run) return;
    const c = await api();
    const full = await c.run(run.id);
    const waiting = full.steps.filter((step) => step.status === 'waiting');
    const step = waiting.length === 1 ? waiting[0] : (await vscode.window.showQuickPick(waiting.map((s) => ({ label: s.id, step: s }))))?.step;
    if (!step) return;
    const comment = await vscode.window.showInputBox({ prompt: `A comment (optional) to ${decision} ${step.id}` });
    if (comment === undefined) return;
    await c.decide(run.id, step.id, decision, comment || undefined);
    await refreshView();
  };

  const runAgent = async (agentName: string | undefined, text: string, document?: vscode.TextDocument) => {
    const c = await api();
    const name = agentName ?? (await vscode.window.showQuickPick((await c.agents()).map((a) => ({ label: a.name, description: a.category, detail: a.description }))))?.label;
    if (!name) return;
    const agent = await c.agent(name);
    const { input, missing } = buildInput(agent.input_schema as FieldSchema, {
      text,
      fileName: document ? basename(document.fileName) : undefined,
      languageId: document?.languageId,
    });
    for (const field of missing) {
      const answer = field.ask === 'pick'
        ? (await vscode.window.showQuickPick(field.choices, { title: field.name, placeHolder: field.schema.description }))
        : await vscode.window.showInputBox({
          title: field.name,
          prompt: field.schema.description,
          validateInput: (value) => { const parsed = parseAnswer(field, value); return 'error' in parsed ? parsed.error : undefined; },
        });
      if (answer === undefined) return;
      const parsed = parseAnswer(field, answer);
      if ('error' in parsed) throw new Error(parsed.error);
      input[field.name] = parsed.value;
    }
    const run = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Sankalpa: ${name}`, cancellable: true },
      (_progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        return c.executeAgent({ agent: name, input }, abort.signal);
      },
    );
    const panel = vscode.window.createWebviewPanel('sankalpa.result', `${name}: ${run.status}`, vscode.ViewColumn.Beside, {});
    panel.webview.html = resultHtml(name, run.status, run.output ?? run.error ?? {});
  };

  const chainInputFromFile = async (): Promise<Record<string, unknown> | undefined> => {
    const files = await vscode.window.showOpenDialog({ title: 'The chain input (JSON or YAML)', filters: { 'JSON or YAML': ['json', 'yaml', 'yml'] } });
    if (!files?.[0]) return {};
    const parsed = parseChainText(await readFile(files[0].fsPath, 'utf8'));
    if ('error' in parsed) throw new Error(`${files[0].fsPath}:${parsed.line + 1}: ${parsed.error}`);
    return parsed.definition as Record<string, unknown>;
  };

  const start = async (body: ExecuteChain, title: string) => {
    const run = await (await api()).executeChain(body);
    void refreshView().catch(() => undefined);
    await follow(run.id, title);
  };

  const handlers: Record<CommandId, (...args: never[]) => unknown> = {
    'sankalpa.signIn': async () => {
      const how = await vscode.window.showQuickPick(['Email and password', 'API key'], { title: 'Sign in to Sankalpa' });
      if (!how) return;
      const c = await api();
      if (how === 'API key') {
        const key = await vscode.window.showInputBox({ prompt: 'API key (sk_...)', password: true, ignoreFocusOut: true });
        if (!key) return;
        await c.useApiKey(key.trim());
      } else {
        const email = await vscode.window.showInputBox({ prompt: 'Email', ignoreFocusOut: true });
        const password = email && (await vscode.window.showInputBox({ prompt: 'Password', password: true, ignoreFocusOut: true }));
        if (!email || !password) return;
        await c.signIn(email, password);
      }
      await Promise.all([refreshStatus(), refreshView()]);
    },
    'sankalpa.signOut': async () => {
      await (await api()).signOut();
      await refreshStatus();
    },
    'sankalpa.refresh': () => Promise.all([refreshStatus(), refreshView()]),
    'sankalpa.runAgentOnSelection': async () => {
      const editor = vscode.window.activeTextEditor;
      if (!editor) return;
      await runAgent(undefined, editor.document.getText(editor.selection), editor.document);
    },
    'sankalpa.runAgentOnFile': async () => {
      const editor = vscode.window.activeTextEditor;
      if (!editor) return;
      await runAgent(undefined, editor.document.getText(), editor.document);
    },
    'sankalpa.runAgent': async (node?: Node) => {
      const editor = vscode.window.activeTextEditor;
      const text = editor ? editor.document.getText(editor.selection.isEmpty ? undefined : editor.selection) : '';
      await runAgent(node?.kind === 'agent' ? node.agent.name : undefined, text, editor?.document);
    },
    'sankalpa.scanFile': async () => {
      const editor = vscode.window.activeTextEditor;
      if (!editor) return;
      const count = await scan(editor.document);
      void vscode.window.showInformationMessage(`security_scanner: ${count} finding(s) in ${basename(editor.document.fileName)}`);
    },
    'sankalpa.generateProject': async (folder?: vscode.Uri) => {
      const root = folder ?? (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false }))?.[0];
      if (!root) return;
      const projectName = await vscode.window.showInputBox({ title: 'Project name', value: basename(root.fsPath), validateInput: (v) => (v.trim() ? undefined : 'a name is needed') });
      const description = projectName && (await vscode.window.showInputBox({ title: 'What it is for (optional)' }));
      const entities = description !== undefined && projectName
        ? await vscode.window.showInputBox({
          title: 'Entities (JSON)',
          value: '[{"name": "Item", "fields": [{"name": "title", "type": "string", "required": true}]}]',
          validateInput: (value) => (jsonArray(value) ? undefined : 'a JSON list of entities: [{"name": "Item", "fields": [...]}]'),
        })
        : undefined;
      if (!projectName || entities === undefined) return;
      const features = await vscode.window.showQuickPick(['auth', 'roles', 'email', 'payments', 'markdown'], { canPickMany: true, title: 'Features' });
      if (!features) return;
      const c = await api();
      const run = await c.executeChain({ template: 'fullstack-app', input: { project_name: projectName, description, entities: jsonArray(entities), features } });
      const ended = await follow(run.id, `Sankalpa: generating ${projectName}`);
      if (ended !== 'sankalpa.chains.run.completed') throw new Error(`the run ${ended.replace(/^sankalpa\.chains\./, '')}`);
      const files = readTarGz(await c.artifacts(run.id));
      const planned = await plan(root.fsPath, files);
      let overwrite = false;
      if (planned.overwrite.length > 0) {
        const answer = await vscode.window.showWarningMessage(
          `${planned.overwrite.length} file(s) exist already (${planned.overwrite.slice(0, 3).join(', ')}...)`,
          { modal: true },
          'Overwrite',
          'Keep mine',
        );
        if (answer === undefined) return;
        overwrite = answer === 'Overwrite';
      }
      const written = await write(root.fsPath, files, planned, overwrite);
      void vscode.window.showInformationMessage(`Sankalpa wrote ${written.length} file(s) into ${root.fsPath}${planned.refused.length ? `; refused ${planned.refused.length} unsafe path(s)` : ''}`);
    },
    'sankalpa.runChain': async (node?: Node) => {
      const c = await api();
      const chain = node?.kind === 'chain'
        ? node.chain
        : (await vscode.window.showQuickPick((await c.chains()).map((ch) => ({ label: ch.name, description: ch.origin, chain: ch }))))?.chain;
      if (!chain) return;
      const input = await chainInputFromFile();
      const target = chain.id ? { chain_id: chain.id } : { template: chain.name };
      await start({ ...target, input }, `Sankalpa: ${chain.name}`);
    },
    'sankalpa.runChainFile': async (uri?: vscode.Uri) => {
      const definition = await definitionOf(uri);
      const input = await chainInputFromFile();
      await start({ definition, input }, 'Sankalpa: chain file');
    },
    'sankalpa.validateChainFile': async (uri?: vscode.Uri) => {
      const definition = await definitionOf(uri);
      const result = await (await api()).validateChain(definition);
      if (result.valid) void vscode.window.showInformationMessage(`Valid: ${result.step_count} step(s)`);
      else void vscode.window.showErrorMessage(`Invalid: ${result.violations.map((v) => `${v.field}: ${v.message}`).join('; ')}`);
    },
    'sankalpa.openRun': async (node?: Node) => {
      const run = await pickRun(node);
      if (!run) return;
      const full = await (await api()).run(run.id);
      const document = await vscode.workspace.openTextDocument({ language: 'json', content: JSON.stringify(full, null, 2) });
      await vscode.window.showTextDocument(document, { preview: true });
    },
    'sankalpa.followRun': async (node?: Node) => {
      const run = await pickRun(node);
      if (run) await follow(run.id, `Sankalpa: ${run.chain_name}`);
    },
    'sankalpa.cancelRun': async (node?: Node) => {
      const run = await pickRun(node);
      if (!run) return;
      await (await api()).cancel(run.id);
      await refreshView();
    },
    'sankalpa.approveStep': (node?: Node) => decide(node, 'approve'),
    'sankalpa.rejectStep': (node?: Node) => decide(node, 'reject'),
  };

  for (const [id, handler] of Object.entries(handlers)) {
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: never[]) => {
        try {
          return await handler(...args);
        } catch (error) {
          output.appendLine(`${COMMANDS[id as CommandId]}: ${(error as Error).message}`);
          void vscode.window.showErrorMessage(`Sankalpa: ${(error as Error).message}`);
        }
      }),
    );
  }

  const chainFiles = [{ pattern: '**/*.sankalpa.{json,yaml,yml}' }];
  context.subscriptions.push(
    output,
    diagnostics,
    status,
    { dispose: () => { clearInterval(statusTimer); clearTimeout(refreshTimer); } },
    vscode.window.registerTreeDataProvider('sankalpa.explorer', explorer),
    vscode.workspace.onDidSaveTextDocument((document) => {
      if (settings().get<boolean>('scanOnSave') && scanned.has(document.uri.toString())) {
        void scan(document).catch((error: Error) => output.appendLine(`scan: ${error.message}`));
      }
    }),
    vscode.languages.registerCodeLensProvider(chainFiles, {
      provideCodeLenses: (document) => {
        if (!isChainFile(document.fileName)) return [];
        const range = new vscode.Range(lensLine(document.getText()), 0, lensLine(document.getText()), 0);
        return [
          new vscode.CodeLens(range, { title: 'Validate', command: 'sankalpa.validateChainFile', arguments: [document.uri] }),
          new vscode.CodeLens(range, { title: 'Run', command: 'sankalpa.runChainFile', arguments: [document.uri] }),
        ];
      },
    }),
    vscode.languages.registerCompletionItemProvider(
      chainFiles,
      {
        provideCompletionItems: async (document, position) => {
          const at = agentNameAt(document.lineAt(position.line).text, position.character);
          if (!at) return [];
          const agents = await (await api()).agents().catch(() => []);
          return agents.map((agent) => {
            const item = new vscode.CompletionItem(agent.name, vscode.CompletionItemKind.Function);
            item.detail = agent.category;
            item.documentation = agent.description;
            item.range = new vscode.Range(position.line, at.start, position.line, position.character);
            return item;
          });
        },
      },
      '"',
      ':',
    ),
  );
  void refreshStatus().then(() => refreshView()).catch(() => undefined);
}

export function deactivate(): void {}

async function definitionOf(uri?: vscode.Uri): Promise<unknown> {
  const document = uri ? await vscode.workspace.openTextDocument(uri) : vscode.window.activeTextEditor?.document;
  if (!document) throw new Error('no chain definition file is open');
  const parsed = parseChainText(document.getText());
  if ('error' in parsed) throw new Error(`${basename(document.fileName)}:${parsed.line + 1}: ${parsed.error}`);
  return parsed.definition;
}

/** The list `text` is as JSON, or undefined. */
function jsonArray(text: string): unknown[] | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function toDiagnostic(finding: Finding): vscode.Diagnostic {
  const severity = {
    error: vscode.DiagnosticSeverity.Error,
    warning: vscode.DiagnosticSeverity.Warning,
    information: vscode.DiagnosticSeverity.Information,
    hint: vscode.DiagnosticSeverity.Hint,
  }[finding.severity];
  const diagnostic = new vscode.Diagnostic(
    new vscode.Range(finding.line, finding.column, finding.endLine, finding.endColumn),
    finding.message,
    severity,
  );
  diagnostic.source = 'sankalpa security_scanner';
  diagnostic.code = finding.rule;
  return diagnostic;
}

/** A result panel: the output as JSON, escaped (the webview runs no script). */
function resultHtml(agent: string, status: string, output: unknown): string {
  const escape = (text: string) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);
  return `<!doctype html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'"></head>
<body><h2>${escape(agent)}: ${escape(status)}</h2><pre style="white-space: pre-wrap">${escape(JSON.stringify(output, null, 2))}</pre></body></html>`;
}
