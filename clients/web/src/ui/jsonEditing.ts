/**
 * What the JSON editor knows of the document it edits, read from its syntax tree: the top-level
 * keys and where they are, completion of the keys a schema names and of the paths a `${...}`
 * expression may name, and problems placed on the key they concern. Part of the editor's own
 * chunk (`JsonEditor.tsx`), loaded with it.
 */
import type { CompletionSource } from '@codemirror/autocomplete';
import { syntaxTree } from '@codemirror/language';
import type { Diagnostic } from '@codemirror/lint';
import type { EditorState } from '@codemirror/state';
import type { SyntaxNode } from '@lezer/common';

/** A key the document may have, as completion offers it. */
export interface KeyHint {
  name: string;
  detail?: string;
}

/** A problem with the document, on one top-level key when it names one. */
export interface JsonProblem {
  field?: string;
  message: string;
}

interface Range {
  from: number;
  to: number;
}

function topObject(state: EditorState): SyntaxNode | null {
  return syntaxTree(state).topNode.getChild('Object');
}

/** Where each top-level key's name is, quotes included. */
export function keyRanges(state: EditorState): Map<string, Range> {
  const ranges = new Map<string, Range>();
  for (const property of topObject(state)?.getChildren('Property') ?? []) {
    const name = property.getChild('PropertyName');
    if (!name) continue;
    const quoted = state.sliceDoc(name.from, name.to);
    try {
      ranges.set(JSON.parse(quoted) as string, { from: name.from, to: name.to });
    } catch {
      // A key still being typed (no closing quote) is not a key yet.
    }
  }
  return ranges;
}

/** Whether `pos` is where a key of the top-level object goes (or is being typed). */
function atTopLevelKey(state: EditorState, pos: number): boolean {
  let node: SyntaxNode | null = syntaxTree(state).resolveInner(pos, -1);
  if (node.name === 'PropertyName') node = node.parent?.parent ?? null;
  else {
    while (node && node.name !== 'Object' && (node.type.isError || node.name === '{' || node.name === ',')) {
      node = node.parent;
    }
  }
  return node?.name === 'Object' && node.parent?.name === 'JsonText';
}

/** Offers the hinted keys the top-level object lacks, where a key goes. */
export function keyCompletion(hints: KeyHint[]): CompletionSource {
  return (context) => {
    const typed = context.matchBefore(/"?[\w-]*/);
    if (!typed || (typed.from === typed.to && !context.explicit)) return null;
    if (!atTopLevelKey(context.state, context.pos)) return null;
    const present = keyRanges(context.state);
    // A closing quote the editor added as the opening one was typed belongs to the key.
    const to = context.state.sliceDoc(context.pos, context.pos + 1) === '"' ? context.pos + 1 : context.pos;
    return {
      from: typed.from,
      to,
      validFor: /^"?[\w-]*$/,
      options: hints
        .filter((hint) => !present.has(hint.name))
        .map((hint) => ({
          label: `"${hint.name}"`,
          apply: `"${hint.name}": `,
          type: 'property',
          ...(hint.detail ? { detail: hint.detail } : {}),
        })),
    };
  };
}

/** Offers `paths` inside a string, after `${`, as far as the path typed so far matches. */
export function pathCompletion(paths: string[]): CompletionSource {
  return (context) => {
    const typed = context.matchBefore(/\$\{[\w.-]*/);
    if (!typed) return null;
    const node = syntaxTree(context.state).resolveInner(context.pos, -1);
    if (node.name !== 'String' && !node.type.isError) return null;
    // A closing brace already there (typed, or left from before) is kept, not doubled.
    const closed = context.state.sliceDoc(context.pos, context.pos + 1) === '}';
    return {
      from: typed.from + 2,
      validFor: /^[\w.-]*$/,
      options: paths.map((path) => ({ label: path, apply: closed ? path : `${path}}`, type: 'variable' })),
    };
  };
}

/** The problems as the editor marks them: on their key when the document has it, else on `{`. */
export function diagnosticsOf(state: EditorState, problems: JsonProblem[]): Diagnostic[] {
  const keys = keyRanges(state);
  const object = topObject(state);
  const whole: Range = object ? { from: object.from, to: object.from + 1 } : { from: 0, to: state.doc.length };
  return problems.map((problem) => {
    const range = (problem.field !== undefined && keys.get(problem.field)) || whole;
    const message = problem.field !== undefined ? `${problem.field}: ${problem.message}` : problem.message;
    return { ...range, severity: 'error', message };
  });
}
