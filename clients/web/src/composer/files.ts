/**
 * A definition as a file and back: JSON, or YAML (the `yaml` package, loaded on first use, so
 * neither the console nor the composer's first load carries it). What is written reads back
 * exactly, in YAML 1.2 and in YAML 1.1 readers alike: a string either would read as another
 * type (`yes`, `0o17`, `1_000`) is quoted, and long strings are not folded.
 */
import type { Json } from './graph';

export type Format = 'json' | 'yaml';

/** The largest file imported: the orchestrator refuses a definition over 1 MiB anyway. */
export const MAX_IMPORT_BYTES = 1024 * 1024;

export function fileName(definition: Json, format: Format): string {
  const name = typeof definition.name === 'string' ? definition.name : '';
  const base = name.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '') || 'chain';
  return `${base}.${format === 'yaml' ? 'yaml' : 'json'}`;
}

export async function exportText(definition: Json, format: Format): Promise<string> {
  if (format === 'json') return `${JSON.stringify(definition, null, 2)}\n`;
  const { stringify } = await import('./yaml');
  return stringify(definition, { lineWidth: 0, compat: 'yaml-1.1' });
}

/** The format a file is in: by its name's extension, else by whether it starts as JSON does. */
function formatOf(name: string, text: string): Format {
  if (/\.ya?ml$/i.test(name)) return 'yaml';
  if (/\.json$/i.test(name)) return 'json';
  return /^\s*[{[]/.test(text) ? 'json' : 'yaml';
}

/** The definition a file holds; throws an Error saying what is wrong with it. */
export async function importText(name: string, text: string): Promise<Json> {
  if (new TextEncoder().encode(text).length > MAX_IMPORT_BYTES) {
    throw new Error(`${name} is larger than ${MAX_IMPORT_BYTES / 1024 / 1024} MiB, the most a definition may be`);
  }
  const format = formatOf(name, text);
  let parsed: unknown;
  try {
    if (format === 'json') {
      parsed = JSON.parse(text);
    } else {
      const { parse } = await import('./yaml');
      // Aliases expand as they are read: a hundred at most, so a small file cannot grow huge.
      parsed = parse(text, { maxAliasCount: 100 });
    }
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`${name} is not valid ${format === 'json' ? 'JSON' : 'YAML'}: ${why}`, { cause: error });
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error(`${name} does not hold a definition: a definition is an object (steps, agents or condition)`);
  }
  return parsed as Json;
}
