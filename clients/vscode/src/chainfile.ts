// Chain definition files (`*.sankalpa.json`, `*.sankalpa.yaml`): parsing either form into the
// definition the gateway validates and runs, where to put the code lens, and when the cursor
// is on an agent's name (for completion).
import { LineCounter, parseDocument } from 'yaml';

export const CHAIN_FILE = /\.sankalpa\.(json|ya?ml)$/;

export function isChainFile(fileName: string): boolean {
  return CHAIN_FILE.test(fileName);
}

export type Parsed = { definition: unknown } | { error: string; line: number };

/** YAML is a superset of JSON, so one parser reads both, with the line of a syntax error. */
export function parseChainText(text: string): Parsed {
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const error = document.errors[0];
  if (error) return { error: error.message, line: lines.linePos(error.pos[0]).line - 1 };
  return { definition: document.toJS() as unknown };
}

/**
 * When the cursor at `character` of `line` is in an agent's name (`"agent": "ap|` in JSON,
 * `agent: ap|` in YAML), what is typed of it so far.
 */
export function agentNameAt(line: string, character: number): { typed: string; start: number } | undefined {
  const before = line.slice(0, character);
  const match = /(?:"agent"\s*:\s*"|\bagent\s*:\s*["']?)([a-z0-9_]*)$/.exec(before);
  if (!match) return undefined;
  const typed = match[1] ?? '';
  return { typed, start: character - typed.length };
}

/** The 0-based line of the first `steps`, `agents` or `condition` key, where the lens goes. */
export function lensLine(text: string): number {
  const line = text.split(/\r?\n/).findIndex((l) => /^\s*"?(steps|agents|condition|name)"?\s*:/.test(l));
  return Math.max(line, 0);
}
