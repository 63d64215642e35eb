// An agent's input built from what the editor has (the selection or the file, its name and
// language), by the agent's input schema: the fields it can fill are filled, the required ones
// it cannot are listed for the editor to ask for, each with how to ask (a pick or a text).

/** A JSON Schema, as far as input building reads it. */
export interface FieldSchema {
  type?: string | string[];
  enum?: unknown[];
  description?: string;
  properties?: Record<string, FieldSchema>;
  required?: string[];
  minimum?: number;
  maximum?: number;
}

export interface EditorText {
  text: string;
  fileName?: string;
  /** VS Code's language id (`python`, `typescriptreact`, ...). */
  languageId?: string;
}

export interface Field {
  name: string;
  schema: FieldSchema;
  /** `pick` for an enum or a boolean, `text` otherwise. */
  ask: 'pick' | 'text';
  choices: string[];
}

const CODE_FIELDS = ['code', 'source', 'content', 'text'];
const NAME_FIELDS = ['filename', 'file_name', 'path'];
/** VS Code language ids for the languages the code agents name. */
const LANGUAGES: Record<string, string> = {
  python: 'python',
  javascript: 'javascript',
  javascriptreact: 'javascript',
  typescript: 'typescript',
  typescriptreact: 'typescript',
  rust: 'rust',
  go: 'go',
  java: 'java',
  c: 'c',
};

export function buildInput(
  schema: FieldSchema,
  editor: EditorText,
): { input: Record<string, unknown>; missing: Field[] } {
  const input: Record<string, unknown> = {};
  const properties = schema.properties ?? {};
  for (const [name, field] of Object.entries(properties)) {
    if (!accepts(field, 'string')) continue;
    if (CODE_FIELDS.includes(name) && editor.text) input[name] = editor.text;
    else if (NAME_FIELDS.includes(name) && editor.fileName) input[name] = editor.fileName;
    else if (name === 'language' && editor.languageId && LANGUAGES[editor.languageId]) {
      input[name] = LANGUAGES[editor.languageId];
    }
  }
  const missing = (schema.required ?? [])
    .filter((name) => !(name in input))
    .map((name) => describe(name, properties[name] ?? {}));
  return { input, missing };
}

function describe(name: string, schema: FieldSchema): Field {
  if (schema.enum) return { name, schema, ask: 'pick', choices: schema.enum.map((v) => JSON.stringify(v)) };
  if (accepts(schema, 'boolean') && !accepts(schema, 'string')) {
    return { name, schema, ask: 'pick', choices: ['true', 'false'] };
  }
  return { name, schema, ask: 'text', choices: [] };
}

/** A typed answer's value, or an error message saying what the field wants. */
export function parseAnswer(field: Field, answer: string): { value: unknown } | { error: string } {
  const { schema } = field;
  if (field.ask === 'pick') return { value: JSON.parse(answer) };
  if (accepts(schema, 'integer') || accepts(schema, 'number')) {
    const value = Number(answer);
    if (answer.trim() === '' || Number.isNaN(value)) return { error: `${field.name} is a number` };
    if (accepts(schema, 'integer') && !Number.isInteger(value)) return { error: `${field.name} is a whole number` };
    if (schema.minimum !== undefined && value < schema.minimum) return { error: `${field.name} is at least ${schema.minimum}` };
    if (schema.maximum !== undefined && value > schema.maximum) return { error: `${field.name} is at most ${schema.maximum}` };
    return { value };
  }
  if (accepts(schema, 'string') || schema.type === undefined) return { value: answer };
  // Objects and arrays are typed as JSON.
  try {
    return { value: JSON.parse(answer) };
  } catch {
    return { error: `${field.name} is JSON (${String(schema.type)})` };
  }
}

function accepts(schema: FieldSchema, type: string): boolean {
  return schema.type === undefined ? type === 'string' && !schema.enum : [schema.type].flat().includes(type);
}
