/**
 * Completion of the paths a condition may read (`input.<property>`, `steps.<id>.<field>`), as
 * the `when` field is typed: the path under the caret, the known paths that continue it, and
 * the text with the one chosen put in its place. Pure, so the field (`PathInput.tsx`) only
 * shows and picks.
 */

/** The most choices offered at once: the first ones, in the order the paths come. */
export const MAX_CHOICES = 50;

/** Where the path being typed is, and the paths that continue it. */
export interface Choices {
  /** The path typed so far spans `from` to `to` (the caret, or the path's end). */
  from: number;
  to: number;
  options: string[];
}

const PATH_CHAR = /[\w.-]/;

/** Whether `at` is inside a string literal of `text` (quotes counted from the start, escapes skipped). */
function inString(text: string, at: number): boolean {
  let quote: string | null = null;
  for (let index = 0; index < at; index += 1) {
    const char = text[index];
    if (quote) {
      if (char === '\\') index += 1;
      else if (char === quote) quote = null;
    } else if (char === '"' || char === "'") {
      quote = char;
    }
  }
  return quote !== null;
}

/**
 * The choices at `caret`: the known `paths` that start with the path typed before it and are
 * longer. None inside a string, within a number, or after `.` that follows a closing bracket or
 * parenthesis. With `explicit` (asked for by a key), an empty path offers every one.
 */
export function choicesAt(text: string, caret: number, paths: string[], explicit = false): Choices | null {
  let from = caret;
  while (from > 0 && PATH_CHAR.test(text[from - 1] ?? '')) from -= 1;
  let to = caret;
  while (to < text.length && PATH_CHAR.test(text[to] ?? '')) to += 1;
  const typed = text.slice(from, caret);
  if (typed === '' && !explicit) return null;
  if (/^[\d.]/.test(typed) || inString(text, from)) return null;
  const options = paths.filter((path) => path.startsWith(typed) && path !== typed).slice(0, MAX_CHOICES);
  return options.length > 0 ? { from, to, options } : null;
}

/** `text` with the path at `choices` replaced by `path`, and where the caret goes: after it. */
export function applyChoice(text: string, choices: Pick<Choices, 'from' | 'to'>, path: string): { text: string; caret: number } {
  return { text: text.slice(0, choices.from) + path + text.slice(choices.to), caret: choices.from + path.length };
}
