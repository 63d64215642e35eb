// A stand-in for the `vscode` module (VS Code cannot be downloaded on these machines): the part
// of its API the editor layer calls, recording what it is given and answering prompts from a
// script the test writes (`answers`), so the editor layer runs in plain node.
import { readFile } from 'node:fs/promises';

type Listener<T> = (value: T) => unknown;

export class EventEmitter<T> {
  private listeners: Listener<T>[] = [];
  event = (listener: Listener<T>) => {
    this.listeners.push(listener);
    return { dispose: () => undefined };
  };
  fire(value: T) {
    for (const listener of this.listeners) listener(value);
  }
}

export class Position {
  constructor(readonly line: number, readonly character: number) {}
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(startLine: number, startCharacter: number, endLine: number, endCharacter: number) {
    this.start = new Position(startLine, startCharacter);
    this.end = new Position(endLine, endCharacter);
  }
}

export enum TreeItemCollapsibleState { None = 0, Collapsed = 1, Expanded = 2 }
export enum StatusBarAlignment { Left = 1, Right = 2 }
export enum ProgressLocation { SourceControl = 1, Window = 10, Notification = 15 }
export enum DiagnosticSeverity { Error = 0, Warning = 1, Information = 2, Hint = 3 }
export enum CompletionItemKind { Function = 2 }
export enum ViewColumn { Beside = -2 }

export class TreeItem {
  id?: string;
  contextValue?: string;
  tooltip?: string;
  description?: string;
  iconPath?: unknown;
  command?: unknown;
  constructor(readonly label: string, readonly collapsibleState: TreeItemCollapsibleState) {}
}

export class ThemeIcon {
  constructor(readonly id: string) {}
}

export class Diagnostic {
  source?: string;
  code?: string;
  constructor(readonly range: Range, readonly message: string, readonly severity: DiagnosticSeverity) {}
}

export class CodeLens {
  constructor(readonly range: Range, readonly command: { title: string; command: string; arguments?: unknown[] }) {}
}

export class CompletionItem {
  detail?: string;
  documentation?: string;
  range?: Range;
  constructor(readonly label: string, readonly kind: CompletionItemKind) {}
}

export class Uri {
  private constructor(readonly fsPath: string) {}
  static file(path: string) {
    return new Uri(path);
  }
  toString() {
    return `file://${this.fsPath}`;
  }
}

/** A document whose text the test gives. */
export class TextDocument {
  readonly uri: Uri;
  constructor(readonly fileName: string, private text: string, readonly languageId = 'plaintext') {
    this.uri = Uri.file(fileName);
  }
  /** An edit: the whole text replaced. */
  setText(text: string) {
    this.text = text;
  }
  getText(range?: Range) {
    if (!range) return this.text;
    const lines = this.text.split('\n');
    return lines.slice(range.start.line, range.end.line + 1).join('\n');
  }
  lineAt(line: number) {
    return { text: this.text.split('\n')[line] ?? '' };
  }
}

/** What the extension did, for the tests to read. */
export const recorded = {
  commands: new Map<string, (...args: unknown[]) => unknown>(),
  trees: new Map<string, unknown>(),
  diagnostics: new Map<string, Diagnostic[]>(),
  saveListeners: [] as ((document: TextDocument) => unknown)[],
  codeLenses: [] as { provideCodeLenses(document: TextDocument): CodeLens[] }[],
  completions: [] as { provideCompletionItems(document: TextDocument, position: Position): Promise<CompletionItem[]> }[],
  messages: [] as string[],
  panels: [] as { title: string; webview: { html: string } }[],
  output: [] as string[],
  statusBar: { text: '', tooltip: '', command: '', shown: false },
};

/** Answers to the next prompts, in order (quick picks, input boxes, dialogs, modal messages). */
export const answers: unknown[] = [];
/** When the user cancels a progress notification: at the first message matching it. */
export const progress: { cancelWhen?: RegExp } = {};
/** The settings `getConfiguration('sankalpa')` answers. */
export const settings: Record<string, unknown> = {};

function next(kind: string): unknown {
  if (answers.length === 0) throw new Error(`the test gave no answer for a ${kind}`);
  return answers.shift();
}

export const window = {
  activeTextEditor: undefined as undefined | { document: TextDocument; selection: Range & { isEmpty: boolean } },
  createOutputChannel: () => ({
    appendLine: (line: string) => recorded.output.push(line),
    show: () => undefined,
    dispose: () => undefined,
  }),
  createStatusBarItem: () => {
    const item = recorded.statusBar;
    return Object.assign(item, { show: () => { item.shown = true; }, dispose: () => undefined });
  },
  showQuickPick: async (items: unknown[] | Promise<unknown[]>, options?: { canPickMany?: boolean }) => {
    const wanted = next('quick pick');
    const list = await items;
    if (wanted === undefined) return undefined;
    const label = (item: unknown) => (typeof item === 'string' ? item : (item as { label: string }).label);
    if (options?.canPickMany) return list.filter((item) => (wanted as string[]).includes(label(item)));
    const found = list.find((item) => label(item) === wanted);
    if (!found) throw new Error(`no pick ${String(wanted)} among ${list.map(label).join(', ')}`);
    return found;
  },
  showInputBox: async (options?: { validateInput?: (value: string) => string | undefined }) => {
    const value = next('input box') as string | undefined;
    const error = value === undefined ? undefined : options?.validateInput?.(value);
    if (error) throw new Error(`the input box refused ${value}: ${error}`);
    return value;
  },
  showOpenDialog: async () => next('open dialog'),
  showWarningMessage: async (message: string, _options: unknown, ...items: string[]) => {
    recorded.messages.push(`warning: ${message}`);
    const answer = next('warning message');
    if (answer !== undefined && !items.includes(answer as string)) throw new Error(`no button ${String(answer)}`);
    return answer;
  },
  showInformationMessage: async (message: string) => {
    recorded.messages.push(`info: ${message}`);
    return undefined;
  },
  showErrorMessage: async (message: string) => {
    recorded.messages.push(`error: ${message}`);
    return undefined;
  },
  /** Progress notifications: the user presses Cancel once a reported message matches. */
  withProgress: async <T>(
    _options: unknown,
    task: (progress: { report(value: { message?: string }): void }, token: { onCancellationRequested(listener: () => void): void }) => Promise<T>,
  ) => {
    const listeners: (() => void)[] = [];
    const report = ({ message }: { message?: string }) => {
      if (message && progress.cancelWhen?.test(message)) {
        progress.cancelWhen = undefined;
        for (const listener of listeners) listener();
      }
    };
    return task({ report }, { onCancellationRequested: (listener) => void listeners.push(listener) });
  },
  createWebviewPanel: (_type: string, title: string) => {
    const panel = { title, webview: { html: '' } };
    recorded.panels.push(panel);
    return panel;
  },
  registerTreeDataProvider: (id: string, provider: unknown) => {
    recorded.trees.set(id, provider);
    return { dispose: () => undefined };
  },
  showTextDocument: async () => undefined,
};

export const workspace = {
  getConfiguration: () => ({ get: <T>(key: string) => settings[key] as T }),
  onDidSaveTextDocument: (listener: (document: TextDocument) => unknown) => {
    recorded.saveListeners.push(listener);
    return { dispose: () => undefined };
  },
  openTextDocument: async (target: Uri | { content: string; language: string }) =>
    target instanceof Uri
      ? new TextDocument(target.fsPath, await readFile(target.fsPath, 'utf8'))
      : new TextDocument('untitled', target.content, target.language),
};

export const languages = {
  createDiagnosticCollection: () => ({
    set: (uri: Uri, list: Diagnostic[]) => recorded.diagnostics.set(uri.toString(), list),
    dispose: () => undefined,
  }),
  registerCodeLensProvider: (_selector: unknown, provider: (typeof recorded.codeLenses)[number]) => {
    recorded.codeLenses.push(provider);
    return { dispose: () => undefined };
  },
  registerCompletionItemProvider: (_selector: unknown, provider: (typeof recorded.completions)[number]) => {
    recorded.completions.push(provider);
    return { dispose: () => undefined };
  },
};

export const commands = {
  registerCommand: (id: string, handler: (...args: unknown[]) => unknown) => {
    if (recorded.commands.has(id)) throw new Error(`command ${id} registered twice`);
    recorded.commands.set(id, handler);
    return { dispose: () => undefined };
  },
  executeCommand: async (id: string, ...args: unknown[]) => {
    const handler = recorded.commands.get(id);
    if (!handler) throw new Error(`command ${id} not found`);
    return handler(...args);
  },
};
