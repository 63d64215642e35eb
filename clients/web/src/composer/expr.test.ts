import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import {
  MAX_EXPRESSION_CHARS,
  MAX_EXPRESSION_DEPTH,
  ParseError,
  expressionProblems,
  mappingProblems,
  mappingSource,
  parse,
  renameSteps,
  stepReferences,
} from './expr';

// The cases the orchestrator's own parser is tested on (expr.rs reads the same file).
const cases = JSON.parse(
  readFileSync(join(__dirname, '../../../../services/chain-orchestrator/src/expr_cases.json'), 'utf8'),
) as { accept: string[]; reject: { source: string; column: number; message: string }[] };

function failure(source: string): ParseError {
  try {
    parse(source);
  } catch (error) {
    if (error instanceof ParseError) return error;
    throw error;
  }
  throw new Error(`${source} parsed`);
}

describe('the expression parser', () => {
  it('has the shared cases', () => {
    expect(cases.accept.length).toBeGreaterThan(10);
    expect(cases.reject.length).toBeGreaterThan(10);
  });

  it.each(cases.accept)('accepts %s', (source) => {
    expect(() => parse(source)).not.toThrow();
  });

  it.each(cases.reject)('refuses $source at column $column', ({ source, column, message }) => {
    const error = failure(source);
    expect(error.column).toBe(column);
    expect(error.problem).toContain(message);
    expect(error.message).toBe(`${error.problem} at column ${column}`);
  });

  it('refuses what is too long at the column after the bound, not with a stack overflow', () => {
    for (const source of [
      `${'!'.repeat(200_000)}true`,
      `${'('.repeat(100_000)}true${')'.repeat(100_000)}`,
      `input.x == '${'a'.repeat(MAX_EXPRESSION_CHARS)}'`,
    ]) {
      const error = failure(source);
      expect(error.problem).toContain('characters long');
      expect(error.column).toBe(MAX_EXPRESSION_CHARS + 1);
    }
  });

  it('refuses nesting past the depth at the token that goes too deep', () => {
    const depth = MAX_EXPRESSION_DEPTH;
    expect(() => parse(`${'!'.repeat(depth)}true`)).not.toThrow();
    const error = failure(`${'!'.repeat(depth + 1)}true`);
    expect(error.problem).toContain('nested deeper than 64 levels');
    expect(error.column).toBe(depth + 1);
    for (const [open, close] of [['(', ')'], ['[', ']'], ['size(', ')'], ['!(', ')']] as const) {
      expect(() => parse(`${open.repeat(depth / 2)}true${close.repeat(depth / 2)}`)).not.toThrow();
      expect(failure(`${open.repeat(depth + 1)}true${close.repeat(depth + 1)}`).problem).toContain('nested deeper');
    }
    const has = `${'('.repeat(depth)}has(input.a)${')'.repeat(depth)}`;
    expect(() => parse(has.slice(1, -1))).not.toThrow();
    expect(failure(has).problem).toContain('nested deeper');
  });

  it('quotes long names and strings briefly', () => {
    expect(failure(`${'n'.repeat(1000)}.x`).message.length).toBeLessThan(200);
    expect(failure(`input.a == 1 '${'s'.repeat(1000)}'`).message.length).toBeLessThan(200);
  });

  it('finds the steps an expression reads', () => {
    expect(stepReferences(parse('steps.a.x == 1 && (has(steps.b) || input.c)'))).toEqual(['a', 'b']);
    expect(stepReferences(parse('steps["ci-gen"].ok'))).toEqual(['ci-gen']);
  });
});

describe('the checks of an expression where a step puts it', () => {
  it('words each problem as the orchestrator does', () => {
    const upstream = new Set(['a']);
    expect(expressionProblems('steps.a.ok', { perItem: false, upstream })).toEqual([]);
    expect(expressionProblems('input.flag ==', { perItem: false, upstream })).toEqual([
      'bad expression: expected a value, found the end at column 14',
    ]);
    expect(expressionProblems('steps.d.v', { perItem: false, upstream })).toEqual([
      'reads step `d`, which this step does not need (directly or through others)',
    ]);
    expect(expressionProblems('item', { perItem: false, upstream })).toEqual([
      'reads `item` or `index`, which only the `input` of a step with `for_each` has',
    ]);
    expect(expressionProblems('item', { perItem: true, upstream })).toEqual([]);
  });

  it('reads a mapping only when the whole string is one ${...}', () => {
    expect(mappingSource('${steps.a}')).toBe('steps.a');
    expect(mappingSource('${}')).toBe('');
    expect(mappingSource('hello ${input.name}')).toBeUndefined();
    expect(mappingSource('${')).toBeUndefined();
  });
});

describe('renaming the steps an expression reads', () => {
  const renames = new Map([['a', 'a_2'], ['ci-gen', 'ci-gen_2']]);

  it('renames roots, in both spellings, and nothing else', () => {
    expect(renameSteps('steps.a.ok && input.steps.a', renames)).toBe('steps.a_2.ok && input.steps.a');
    expect(renameSteps('steps["ci-gen"].ok || steps.b', renames)).toBe('steps["ci-gen_2"].ok || steps.b');
    expect(renameSteps("'steps.a' == steps.ab", renames)).toBe("'steps.a' == steps.ab");
  });

  it('leaves a source that does not tokenize as it was', () => {
    expect(renameSteps("steps.a == 'open", renames)).toBe("steps.a == 'open");
  });
});

describe('the checks of an input mapping', () => {
  it('finds each bad ${...}, however deep, under its top-level key', () => {
    const mapping = { name: '${input.name}', files: ['${steps.api.files}', { deep: '${steps.nope}' }], text: 'steps.nope', bad: '${input.a ==}' };
    expect(mappingProblems(mapping, { perItem: false, upstream: new Set(['api']) })).toEqual([
      { field: 'files', message: 'reads step `nope`, which this step does not need (directly or through others)' },
      { field: 'bad', message: 'bad expression: expected a value, found the end at column 11' },
    ]);
  });
});
