import { CompletionContext, type CompletionResult } from '@codemirror/autocomplete';
import { json } from '@codemirror/lang-json';
import { ensureSyntaxTree } from '@codemirror/language';
import { EditorState } from '@codemirror/state';
import { describe, expect, it } from 'vitest';

import { diagnosticsOf, keyCompletion, keyRanges, pathCompletion } from './jsonEditing';

function stateOf(doc: string): EditorState {
  const state = EditorState.create({ doc, extensions: [json()] });
  ensureSyntaxTree(state, doc.length, 1_000);
  return state;
}

const hints = [{ name: 'expression', detail: 'text, required' }, { name: 'precision' }];

function complete(doc: string, pos = doc.length): CompletionResult | null {
  const result = keyCompletion(hints)(new CompletionContext(stateOf(doc), pos, false));
  if (result instanceof Promise) throw new Error('the source answers at once');
  return result;
}

describe('the JSON editor', () => {
  it('finds the top-level keys, not nested ones', () => {
    const doc = '{"expression": "1", "variables": {"x": 2}}';
    expect([...keyRanges(stateOf(doc)).entries()]).toEqual([
      ['expression', { from: 1, to: 13 }],
      ['variables', { from: 20, to: 31 }],
    ]);
  });

  it('offers the keys the object lacks where a key goes', () => {
    const result = complete('{"expression": "1", "p');
    expect(result?.options.map((option) => option.label)).toEqual(['"precision"']);
    expect(result?.options[0]?.apply).toBe('"precision": ');
    expect(result?.from).toBe(20);
  });

  it('takes the closing quote the editor added into the completed key', () => {
    const doc = '{"ex"}';
    expect(complete(doc, 4)?.to).toBe(5);
  });

  it('offers nothing inside a value or a nested object', () => {
    expect(complete('{"expression": "1')).toBeNull();
    expect(complete('{"variables": {"e')).toBeNull();
  });

  it('offers paths after ${ inside a string, closing the expression once', () => {
    const paths = ['input.name', 'steps.greet.message'];
    const at = (doc: string, pos = doc.length) => {
      const result = pathCompletion(paths)(new CompletionContext(stateOf(doc), pos, false));
      if (result instanceof Promise) throw new Error('the source answers at once');
      return result;
    };
    const open = at('{"name": "${st');
    expect(open?.from).toBe(12);
    expect(open?.options.map((option) => option.apply)).toEqual(['input.name}', 'steps.greet.message}']);
    const closed = at('{"name": "${st}"}', 14);
    expect(closed?.options[1]?.apply).toBe('steps.greet.message');
    expect(at('{"name": "plain')).toBeNull();
  });

  it('marks a problem on its key, and one about a missing key on the object', () => {
    const state = stateOf('{"precision": 99}');
    expect(
      diagnosticsOf(state, [
        { field: 'precision', message: 'At most 15' },
        { field: 'expression', message: 'Required' },
      ]),
    ).toEqual([
      { from: 1, to: 12, severity: 'error', message: 'precision: At most 15' },
      { from: 0, to: 1, severity: 'error', message: 'expression: Required' },
    ]);
  });
});
