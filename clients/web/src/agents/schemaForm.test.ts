import { describe, expect, it } from 'vitest';

import { type JsonSchema, checkJson, fieldOf, fieldsFor, inputFor, valuesFor } from './schemaForm';

// The shapes of catalog/agents.json: hello_world, custom_calculator, text_translator.
const calculator: JsonSchema = {
  type: 'object',
  properties: {
    expression: { type: 'string', minLength: 1, maxLength: 10000 },
    variables: { type: 'object' },
    precision: { type: 'integer', minimum: 0, maximum: 15, description: 'Decimal places' },
  },
  required: ['expression'],
};

describe('fieldsFor', () => {
  it('maps each property to the field a person fills in', () => {
    const fields = fieldsFor({
      type: 'object',
      properties: {
        name: { type: 'string', maxLength: 200, description: 'Who to greet' },
        target_language: { enum: ['en', 'fr'] },
        tags: { type: 'array', items: { type: 'string' } },
        strict: { type: 'boolean' },
        entities: { type: 'array', items: { type: 'object' } },
        when: { type: ['string', 'null'], maxLength: 40 },
      },
      required: ['target_language'],
    });
    expect(fields.map((field) => [field.name, field.kind, field.required])).toEqual([
      ['name', 'text', false],
      ['target_language', 'choice', true],
      ['tags', 'list', false],
      ['strict', 'boolean', false],
      ['entities', 'json', false],
      ['when', 'text', false],
    ]);
    expect(fields[0]).toMatchObject({ label: 'Name', description: 'Who to greet', multiline: false });
    expect(fields[1]).toMatchObject({ label: 'Target language', options: ['en', 'fr'] });
  });

  it('edits long strings in a text area', () => {
    expect(fieldsFor(calculator)[0]).toMatchObject({ kind: 'text', multiline: true });
  });
});

describe('inputFor', () => {
  const fields = fieldsFor(calculator);

  it('builds typed input and leaves empty optional fields out', () => {
    const mapped = inputFor(fields, { expression: '2 * x', variables: '{"x": 4}', precision: '' });
    expect(mapped).toEqual({ input: { expression: '2 * x', variables: { x: 4 } }, errors: {} });
  });

  it('names every field that does not make valid input', () => {
    const mapped = inputFor(fields, { expression: ' ', variables: '{x', precision: '2.5' });
    expect(mapped.errors).toEqual({
      expression: 'Required',
      variables: 'Not valid JSON',
      precision: 'A whole number',
    });
  });

  it('checks numeric bounds', () => {
    expect(inputFor(fields, { expression: '1', precision: '16' }).errors).toEqual({
      precision: 'At most 15',
    });
  });

  it('splits a list into its non-empty lines', () => {
    const list = fieldsFor({ properties: { tags: { type: 'array', items: { type: 'string' } } } });
    expect(inputFor(list, { tags: 'a\n\n b \n' }).input).toEqual({ tags: ['a', 'b'] });
  });

  it('round-trips through valuesFor', () => {
    const input = { expression: '1 + 1', variables: { y: 2 }, precision: 3 };
    expect(inputFor(fields, valuesFor(fields, input))).toEqual({ input, errors: {} });
  });
});

describe('fieldOf', () => {
  it('finds the field a server violation points at', () => {
    const fields = fieldsFor(calculator);
    expect(fieldOf(fields, '/precision')).toBe('precision');
    expect(fieldOf(fields, 'input.variables.x')).toBe('variables');
    expect(fieldOf(fields, 'deadline_ms')).toBeUndefined();
  });
});

describe('checkJson', () => {
  const fields = fieldsFor(calculator);

  it('accepts input the schema takes', () => {
    expect(checkJson(fields, '{"expression": "1 + 1", "precision": 2}', true)).toEqual([]);
  });

  it('says what is wrong as it is typed', () => {
    expect(checkJson(fields, '{"expression": 1', true)[0]?.message).toMatch(/^Not valid JSON/);
    expect(checkJson(fields, '[]', true)).toEqual([{ message: 'The input must be a JSON object' }]);
    expect(checkJson(fields, '{"precision": 99, "colour": "red"}', true)).toEqual([
      { field: 'expression', message: 'Required' },
      { field: 'precision', message: 'At most 15' },
      { field: 'colour', message: 'not a field of this agent' },
    ]);
    expect(checkJson(fields, '{"expression": 42}', false)).toEqual([{ field: 'expression', message: 'must be a string' }]);
  });
});
