/**
 * Maps an agent's input JSON Schema to form fields and back. Top-level properties become fields
 * a person fills in (text, number, checkbox, choice, a list one item per line); anything deeper
 * (objects, arrays of objects, unions) is edited as JSON in place. The server checks the input
 * against the schema again, and its errors land on the fields by name.
 */
import type { JsonProblem } from '../ui/jsonEditing';

export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  default?: unknown;
  additionalProperties?: boolean | JsonSchema;
}

interface FieldBase {
  name: string;
  label: string;
  required: boolean;
  description?: string;
}

export type Field = FieldBase &
  (
    | { kind: 'text'; multiline: boolean; minLength?: number; maxLength?: number }
    | { kind: 'number'; integer: boolean; minimum?: number; maximum?: number }
    | { kind: 'boolean' }
    | { kind: 'choice'; options: string[] }
    | { kind: 'list' }
    | { kind: 'json' }
  );

/** What the form holds: text for every field but checkboxes. */
export type FormValues = Record<string, string | boolean>;

/** Strings longer than this are edited in a text area. */
const SINGLE_LINE_MAX = 300;

function typeOf(schema: JsonSchema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type.find((type) => type !== 'null');
  return schema.type;
}

function humanise(name: string): string {
  const spaced = name.replace(/[_-]+/g, ' ').trim();
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}

export function fieldsFor(schema: JsonSchema): Field[] {
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties ?? {}).map(([name, property]) => {
    const base: FieldBase = {
      name,
      label: property.title ?? humanise(name),
      required: required.has(name),
      ...(property.description ? { description: property.description } : {}),
    };
    const type = typeOf(property);
    if (property.enum && property.enum.every((option) => typeof option === 'string')) {
      return { ...base, kind: 'choice', options: property.enum as string[] };
    }
    switch (type) {
      case 'string':
        return {
          ...base,
          kind: 'text',
          multiline: (property.maxLength ?? Infinity) > SINGLE_LINE_MAX,
          ...(property.minLength !== undefined ? { minLength: property.minLength } : {}),
          ...(property.maxLength !== undefined ? { maxLength: property.maxLength } : {}),
        };
      case 'integer':
      case 'number':
        return {
          ...base,
          kind: 'number',
          integer: type === 'integer',
          ...(property.minimum !== undefined ? { minimum: property.minimum } : {}),
          ...(property.maximum !== undefined ? { maximum: property.maximum } : {}),
        };
      case 'boolean':
        return { ...base, kind: 'boolean' };
      case 'array':
        if (property.items && typeOf(property.items) === 'string') return { ...base, kind: 'list' };
        return { ...base, kind: 'json' };
      default:
        return { ...base, kind: 'json' };
    }
  });
}

/** The form's values for `input` (a JSON object), e.g. when switching from the JSON view. */
export function valuesFor(fields: Field[], input: Record<string, unknown>): FormValues {
  const values: FormValues = {};
  for (const field of fields) {
    const value = input[field.name];
    if (field.kind === 'boolean') {
      values[field.name] = value === true;
    } else if (value === undefined) {
      values[field.name] = '';
    } else if (field.kind === 'list' && Array.isArray(value)) {
      values[field.name] = value.join('\n');
    } else if (field.kind === 'json') {
      values[field.name] = JSON.stringify(value, null, 2);
    } else {
      values[field.name] = String(value);
    }
  }
  return values;
}

export interface Mapped {
  input: Record<string, unknown>;
  /** Messages by field name; the input is not to be sent while there is one. */
  errors: Record<string, string>;
}

/** The input the form's values make, or the fields that do not make one. */
export function inputFor(fields: Field[], values: FormValues): Mapped {
  const input: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const raw = values[field.name];
    if (field.kind === 'boolean') {
      if (raw === true || field.required) input[field.name] = raw === true;
      continue;
    }
    const text = typeof raw === 'string' ? raw : '';
    if (text.trim() === '') {
      if (field.required) errors[field.name] = 'Required';
      continue;
    }
    switch (field.kind) {
      case 'text':
        if (field.maxLength !== undefined && text.length > field.maxLength) {
          errors[field.name] = `At most ${field.maxLength} characters`;
        } else {
          input[field.name] = text;
        }
        break;
      case 'choice':
        input[field.name] = text;
        break;
      case 'number': {
        const number = Number(text);
        if (!Number.isFinite(number)) errors[field.name] = 'Not a number';
        else if (field.integer && !Number.isInteger(number)) errors[field.name] = 'A whole number';
        else if (field.minimum !== undefined && number < field.minimum)
          errors[field.name] = `At least ${field.minimum}`;
        else if (field.maximum !== undefined && number > field.maximum)
          errors[field.name] = `At most ${field.maximum}`;
        else input[field.name] = number;
        break;
      }
      case 'list':
        input[field.name] = text
          .split('\n')
          .map((line) => line.trim())
          .filter((line) => line !== '');
        break;
      case 'json':
        try {
          input[field.name] = JSON.parse(text);
        } catch {
          errors[field.name] = 'Not valid JSON';
        }
        break;
    }
  }
  return { input, errors };
}

/** The field a server-side violation names (`/name`, `name`, `input.name`), if it is a field. */
export function fieldOf(fields: Field[], path: string): string | undefined {
  const first = path
    .replace(/^\/|^input[./]/, '')
    .split(/[./[]/)
    .find((part) => part !== '');
  return fields.find((field) => field.name === first)?.name;
}

const EXPECTED: Record<Field['kind'], string> = {
  text: 'a string',
  choice: 'a string',
  number: 'a number',
  boolean: 'true or false',
  list: 'a list',
  json: 'JSON',
};

/**
 * What is wrong with `text` as input for `fields`, checked as it is typed in the JSON view: not
 * JSON, not an object, or a field the form would refuse (unknown keys when the schema allows
 * none). Empty when it looks right; the server has the last word.
 */
export function checkJson(fields: Field[], text: string, closed: boolean): JsonProblem[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return [{ message: `Not valid JSON: ${error instanceof Error ? error.message : String(error)}` }];
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [{ message: 'The input must be a JSON object' }];
  const input = value as Record<string, unknown>;
  const problems: JsonProblem[] = Object.entries(inputFor(fields, valuesFor(fields, input)).errors).map(
    ([field, message]) => ({ field, message }),
  );
  for (const field of fields) {
    const given = input[field.name];
    if (given === undefined) continue;
    const wrong =
      (field.kind === 'number' && typeof given !== 'number') ||
      (field.kind === 'boolean' && typeof given !== 'boolean') ||
      ((field.kind === 'text' || field.kind === 'choice') && typeof given !== 'string') ||
      (field.kind === 'list' && !Array.isArray(given));
    if (wrong) problems.push({ field: field.name, message: `must be ${EXPECTED[field.kind]}` });
    if (field.kind === 'choice' && typeof given === 'string' && !field.options.includes(given)) {
      problems.push({ field: field.name, message: `one of ${field.options.join(', ')}` });
    }
  }
  if (closed) {
    const known = new Set(fields.map((field) => field.name));
    for (const key of Object.keys(input)) if (!known.has(key)) problems.push({ field: key, message: 'not a field of this agent' });
  }
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const key = `${problem.field ?? ''}\n${problem.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
