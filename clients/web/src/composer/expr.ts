/**
 * The chain orchestrator's expression language (`when` conditions, `${...}` mappings), parsed in
 * the browser as it is typed: the same grammar, bounds, messages and columns as
 * `services/chain-orchestrator/src/expr.rs`, so a condition the composer accepts is one the
 * orchestrator accepts. Both are tested on the shared cases in
 * `services/chain-orchestrator/src/expr_cases.json`. Only syntax and which names an expression
 * reads are checked here; values are the orchestrator's, when the run evaluates them.
 */

/** Where paths may start. */
const ROOTS = ['input', 'steps', 'item', 'index'];
/** The longest expression source, in characters. */
export const MAX_EXPRESSION_CHARS = 4096;
/** How deeply `!`, `(`, `[`, `size(` and `has(` may nest in one expression. */
export const MAX_EXPRESSION_DEPTH = 64;
/** How much of a name, number or string an error message quotes. */
const MAX_QUOTED_CHARS = 40;

const OPERATORS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '(', ')', '[', ']', '.', ','];

export type Token =
  | { kind: 'ident'; name: string }
  | { kind: 'number'; value: number }
  | { kind: 'string'; text: string }
  | { kind: 'op'; op: string };

/** A token and where it is: its first character's index, and the index after its last. */
export interface Placed {
  token: Token;
  /** 1-based column in characters, as the orchestrator counts them. */
  column: number;
  end: number;
}

export class ParseError extends Error {
  constructor(
    readonly problem: string,
    /** 1-based, in characters. */
    readonly column: number,
  ) {
    super(`${problem} at column ${column}`);
  }
}

/** The first [`MAX_QUOTED_CHARS`] characters of `text`, as error messages quote it. */
function quoted(text: string): string {
  const chars = Array.from(text);
  return chars.length > MAX_QUOTED_CHARS ? `${chars.slice(0, MAX_QUOTED_CHARS).join('')}...` : text;
}

function describe(token: Token): string {
  switch (token.kind) {
    case 'ident':
      return `\`${quoted(token.name)}\``;
    case 'number':
      return `\`${token.value}\``;
    case 'string':
      return JSON.stringify(quoted(token.text));
    case 'op':
      return `\`${token.op}\``;
  }
}

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isAlpha = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
const isWordChar = (c: string | undefined) => c !== undefined && (isAlpha(c) || isDigit(c) || c === '_');

/** The tokens of `source`, each with its place; the first character no token starts refuses it. */
export function tokenize(source: string): Placed[] {
  const chars = Array.from(source);
  const tokens: Placed[] = [];
  let at = 0;
  while (at < chars.length) {
    const c = chars[at] as string;
    const column = at + 1;
    if (/\s/u.test(c)) {
      at += 1;
    } else if (isAlpha(c) || c === '_') {
      const start = at;
      while (isWordChar(chars[at])) at += 1;
      tokens.push({ token: { kind: 'ident', name: chars.slice(start, at).join('') }, column, end: at });
    } else if (isDigit(c) || (c === '-' && isDigit(chars[at + 1]))) {
      const start = at;
      at += 1;
      while (isDigit(chars[at]) || chars[at] === '.') at += 1;
      const text = chars.slice(start, at).join('');
      // As Rust's f64 parse: digits with at most one point, which may end the number.
      if (!/^-?\d+(\.\d*)?$/.test(text)) throw new ParseError(`\`${quoted(text)}\` is not a number`, column);
      tokens.push({ token: { kind: 'number', value: Number(text) }, column, end: at });
    } else if (c === '"' || c === "'") {
      at += 1;
      let text = '';
      for (;;) {
        const next = chars[at];
        if (next === undefined) throw new ParseError('unterminated string', column);
        if (next === c) break;
        if (next === '\\') {
          const escaped = chars[at + 1];
          if (escaped === undefined) throw new ParseError('unterminated string', column);
          text += escaped === 'n' ? '\n' : escaped === 't' ? '\t' : escaped;
          at += 2;
          continue;
        }
        text += next;
        at += 1;
      }
      at += 1;
      tokens.push({ token: { kind: 'string', text }, column, end: at });
    } else {
      const rest = chars.slice(at, at + 2).join('');
      const op = OPERATORS.find((candidate) => rest.startsWith(candidate));
      if (!op) throw new ParseError(`unexpected character \`${c}\``, column);
      at += op.length;
      tokens.push({ token: { kind: 'op', op }, column, end: at });
    }
  }
  return tokens;
}

export type Segment = string | number;

/** What an expression reads: each path (`has(...)` included), from its root. */
export interface Parsed {
  paths: Segment[][];
}

class Parser {
  at = 0;
  depth = 0;
  readonly paths: Segment[][] = [];

  constructor(
    private readonly tokens: Placed[],
    private readonly endColumn: number,
  ) {}

  peek(): Token | undefined {
    return this.tokens[this.at]?.token;
  }

  column(): number {
    return this.tokens[this.at]?.column ?? this.endColumn;
  }

  isOp(op: string): boolean {
    const token = this.peek();
    return token?.kind === 'op' && token.op === op;
  }

  eat(op: string): boolean {
    if (!this.isOp(op)) return false;
    this.at += 1;
    return true;
  }

  expect(op: string): void {
    if (!this.eat(op)) throw this.unexpected(`\`${op}\``);
  }

  unexpected(wanted: string): ParseError {
    const token = this.peek();
    return new ParseError(`expected ${wanted}, found ${token ? describe(token) : 'the end'}`, this.column());
  }

  nested<T>(column: number, parse: () => T): T {
    if (this.depth >= MAX_EXPRESSION_DEPTH) {
      throw new ParseError(`nested deeper than ${MAX_EXPRESSION_DEPTH} levels`, column);
    }
    this.depth += 1;
    try {
      return parse();
    } finally {
      this.depth -= 1;
    }
  }

  or(): void {
    this.and();
    while (this.eat('||')) this.and();
  }

  and(): void {
    this.unary();
    while (this.eat('&&')) this.unary();
  }

  unary(): void {
    const column = this.column();
    if (this.eat('!')) {
      this.nested(column, () => this.unary());
      return;
    }
    this.comparison();
  }

  comparison(): void {
    this.primary();
    const token = this.peek();
    const compares =
      (token?.kind === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(token.op)) ||
      (token?.kind === 'ident' && token.name === 'in');
    if (!compares) return;
    this.at += 1;
    this.primary();
  }

  primary(): void {
    const column = this.column();
    const token = this.peek();
    if (!token) throw this.unexpected('a value');
    this.at += 1;
    switch (token.kind) {
      case 'number':
      case 'string':
        return;
      case 'op':
        if (token.op === '(') {
          this.nested(column, () => {
            this.or();
            this.expect(')');
          });
          return;
        }
        if (token.op === '[') {
          this.nested(column, () => {
            if (this.eat(']')) return;
            for (;;) {
              this.or();
              if (this.eat(']')) return;
              this.expect(',');
            }
          });
          return;
        }
        if (token.op === '!') {
          this.nested(column, () => this.unary());
          return;
        }
        this.at -= 1;
        throw new ParseError(`expected a value, found ${describe(token)}`, column);
      case 'ident':
        switch (token.name) {
          case 'true':
          case 'false':
          case 'null':
            return;
          case 'has':
            this.nested(column, () => {
              this.expect('(');
              const root = this.peek();
              if (root?.kind !== 'ident') throw this.unexpected('a field path');
              const rootColumn = this.column();
              this.at += 1;
              this.path(root.name, rootColumn);
              this.expect(')');
            });
            return;
          case 'size':
            this.nested(column, () => {
              this.expect('(');
              this.or();
              this.expect(')');
            });
            return;
          default:
            this.path(token.name, column);
        }
    }
  }

  path(root: string, column: number): void {
    if (!ROOTS.includes(root)) {
      throw new ParseError(`unknown name \`${quoted(root)}\`: paths start with \`input\`, \`steps\`, \`item\` or \`index\``, column);
    }
    const segments: Segment[] = [root];
    for (;;) {
      if (this.eat('.')) {
        const name = this.peek();
        if (name?.kind !== 'ident') throw this.unexpected('a field name');
        this.at += 1;
        segments.push(name.name);
      } else if (this.eat('[')) {
        const key = this.peek();
        if (key?.kind === 'string') segments.push(key.text);
        else if (key?.kind === 'number' && key.value >= 0 && Number.isInteger(key.value)) segments.push(key.value);
        else throw this.unexpected('a string key or an index');
        this.at += 1;
        this.expect(']');
      } else {
        this.paths.push(segments);
        return;
      }
    }
  }
}

/** Parses an expression of at most `MAX_EXPRESSION_CHARS`, nested at most `MAX_EXPRESSION_DEPTH` levels. */
export function parse(source: string): Parsed {
  const length = Array.from(source).length;
  if (length > MAX_EXPRESSION_CHARS) {
    throw new ParseError(
      `the expression is ${length} characters long; the most is ${MAX_EXPRESSION_CHARS}`,
      MAX_EXPRESSION_CHARS + 1,
    );
  }
  const parser = new Parser(tokenize(source), length + 1);
  parser.or();
  if (parser.peek() !== undefined) throw parser.unexpected('an operator or the end');
  return { paths: parser.paths };
}

/** The step ids an expression reads (`steps.<id>...`). */
export function stepReferences(parsed: Parsed): string[] {
  return parsed.paths.flatMap(([root, step]) => (root === 'steps' && typeof step === 'string' ? [step] : []));
}

/** Whether an expression reads `item` or `index`, which only a `for_each` step's input has. */
export function readsItem(parsed: Parsed): boolean {
  return parsed.paths.some(([root]) => root === 'item' || root === 'index');
}

/** The expression inside a mapping string that is exactly `${...}`, as the orchestrator reads it. */
export function mappingSource(text: string): string | undefined {
  return text.startsWith('${') && text.endsWith('}') && text.length >= 3 ? text.slice(2, -1) : undefined;
}

/**
 * What is wrong with `source` where a step puts it, worded as the orchestrator's validation:
 * its syntax, `item` or `index` outside a map step's input, a step it does not need.
 */
export function expressionProblems(source: string, where: { perItem: boolean; upstream: Set<string> }): string[] {
  let parsed: Parsed;
  try {
    parsed = parse(source);
  } catch (error) {
    if (error instanceof ParseError) return [`bad expression: ${error.message}`];
    throw error;
  }
  const problems: string[] = [];
  if (!where.perItem && readsItem(parsed)) {
    problems.push('reads `item` or `index`, which only the `input` of a step with `for_each` has');
  }
  for (const step of stepReferences(parsed)) {
    if (!where.upstream.has(step)) {
      problems.push(`reads step \`${step}\`, which this step does not need (directly or through others)`);
    }
  }
  return problems;
}

/**
 * `source` with each path that reads a renamed step reading its new id: `steps.a` and
 * `steps["a"]` alike. A source that does not tokenize is returned as it is.
 */
export function renameSteps(source: string, renames: Map<string, string>): string {
  let tokens: Placed[];
  try {
    tokens = tokenize(source);
  } catch {
    return source;
  }
  const chars = Array.from(source);
  // Replacements from the end, so earlier indices stay put.
  const edits: { from: number; to: number; text: string }[] = [];
  tokens.forEach((placed, index) => {
    const before = tokens[index - 1]?.token;
    const isRoot = placed.token.kind === 'ident' && placed.token.name === 'steps' && !(before?.kind === 'op' && before.op === '.');
    if (!isRoot) return;
    const opener = tokens[index + 1];
    const name = tokens[index + 2];
    if (opener?.token.kind !== 'op' || !name) return;
    if (opener.token.op === '.' && name.token.kind === 'ident') {
      const renamed = renames.get(name.token.name);
      if (renamed) edits.push({ from: name.column - 1, to: name.end, text: renamed });
    } else if (opener.token.op === '[' && name.token.kind === 'string') {
      const renamed = renames.get(name.token.text);
      if (renamed) edits.push({ from: name.column - 1, to: name.end, text: JSON.stringify(renamed) });
    }
  });
  for (const edit of edits.reverse()) chars.splice(edit.from, edit.to - edit.from, edit.text);
  return chars.join('');
}

/** A problem of an input mapping, under the top-level key it is in (as the JSON editor marks them). */
export interface MappingProblem {
  field: string;
  message: string;
}

/** The problems of each `${...}` in an input mapping, by the top-level key they are under. */
export function mappingProblems(mapping: unknown, where: { perItem: boolean; upstream: Set<string> }): MappingProblem[] {
  if (!mapping || typeof mapping !== 'object' || Array.isArray(mapping)) return [];
  const problems: MappingProblem[] = [];
  const visit = (field: string, value: unknown) => {
    if (typeof value === 'string') {
      const source = mappingSource(value);
      if (source !== undefined) expressionProblems(source, where).forEach((message) => problems.push({ field, message }));
    } else if (Array.isArray(value)) {
      value.forEach((item) => visit(field, item));
    } else if (value && typeof value === 'object') {
      Object.values(value).forEach((item) => visit(field, item));
    }
  };
  Object.entries(mapping).forEach(([field, value]) => visit(field, value));
  return problems;
}
