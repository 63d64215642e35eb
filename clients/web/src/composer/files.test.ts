import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { MAX_IMPORT_BYTES, exportText, fileName, importText } from './files';
import { type Json, fromGraph, toGraph } from './graph';

const CATALOG = join(__dirname, '../../../../catalog/chains');
const templates = readdirSync(CATALOG)
  .filter((file) => file.endsWith('.json'))
  .map((file) => [file, JSON.parse(readFileSync(join(CATALOG, file), 'utf8')) as Json] as const);

describe('a definition as a file', () => {
  it.each(templates)('writes %s as YAML and reads it back exactly', async (file, template) => {
    const yaml = await exportText(template, 'yaml');
    // Block style, not JSON (which is YAML too).
    expect(yaml.trimStart().startsWith('{')).toBe(false);
    const read = await importText(file.replace(/\.json$/, '.yaml'), yaml);
    expect(JSON.stringify(read)).toBe(JSON.stringify(template));
    // Through the composer's graph too: opened from YAML, it is given back unchanged.
    expect(JSON.stringify(fromGraph(toGraph(read)))).toBe(JSON.stringify(template));
  });

  it.each(templates)('writes %s as JSON and reads it back exactly', async (file, template) => {
    const read = await importText(file, await exportText(template, 'json'));
    expect(JSON.stringify(read)).toBe(JSON.stringify(template));
  });

  it('keeps strings that YAML 1.2 or 1.1 would read as other types', async () => {
    const input = { yes: 'yes', on: 'on', n: '1.5', octal: '0o17', grouped: '1_000', nil: 'null', tilde: '~', empty: '', multi: 'a\nb', colon: 'a: b', hash: '# c', expr: '${input.flag}' };
    const tricky = { name: 'tricky', steps: [{ id: 'a', agent: 'x', input }] };
    const yaml = await exportText(tricky, 'yaml');
    expect(await importText('t.yml', yaml)).toEqual(tricky);
    const { parse } = await import('yaml');
    expect(parse(yaml, { version: '1.1' })).toEqual(tricky);
  });

  it('tells the format by the extension, else by the text', async () => {
    expect(await importText('chain', '{"steps": []}')).toEqual({ steps: [] });
    expect(await importText('chain', 'steps: []\n')).toEqual({ steps: [] });
    await expect(importText('chain.json', 'steps: []')).rejects.toThrow('chain.json is not valid JSON');
  });

  it('refuses what is not a definition, or too large', async () => {
    await expect(importText('list.yaml', '- a\n- b\n')).rejects.toThrow('does not hold a definition');
    await expect(importText('bad.yaml', 'steps: [\n')).rejects.toThrow('bad.yaml is not valid YAML');
    await expect(importText('big.json', ' '.repeat(MAX_IMPORT_BYTES + 1))).rejects.toThrow('larger than 1 MiB');
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 200 }, (_, index) => `k${index}: *a`)].join('\n');
    await expect(importText('bomb.yaml', bomb)).rejects.toThrow('not valid YAML');
  });

  it('names the file after the chain', () => {
    expect(fileName({ name: 'Shop API v2' }, 'yaml')).toBe('shop-api-v2.yaml');
    expect(fileName({}, 'json')).toBe('chain.json');
  });
});
