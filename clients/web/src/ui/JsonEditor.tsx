/**
 * A JSON editor (CodeMirror 6) with completion of the keys a schema names and its problems marked
 * as they are typed. Loaded on first use, in its own chunk (`React.lazy` of this module's
 * default export), so pages without it do not pay for it.
 *
 * Under the console's policy (`style-src 'self'`, nothing inline) the editor lives in a shadow
 * root: there CodeMirror's style modules become constructed stylesheets (`adoptedStyleSheets`),
 * which the policy does not govern, where on the document itself they would be `<style>`
 * elements the browser refuses. Its own inline styles it sets through the CSSOM, which is
 * allowed. The page's Tailwind classes do not reach inside, so the editor's look is its theme.
 */
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { json, jsonParseLinter } from '@codemirror/lang-json';
import { HighlightStyle, bracketMatching, syntaxHighlighting } from '@codemirror/language';
import { linter, lintKeymap } from '@codemirror/lint';
import { Annotation, Compartment, EditorState } from '@codemirror/state';
import { EditorView, keymap, lineNumbers } from '@codemirror/view';
import { tags } from '@lezer/highlight';
import { useEffect, useRef } from 'react';

import { useShownTheme } from '../app/theme';

import { type JsonProblem, type KeyHint, diagnosticsOf, keyCompletion, pathCompletion } from './jsonEditing';

export interface JsonEditorProps {
  /** The editor's accessible name. */
  label: string;
  value: string;
  onChange: (value: string) => void;
  /** Keys completion offers at the top level. */
  keys?: KeyHint[];
  /** Paths completion offers after `${` in a string. */
  paths?: string[];
  /** The document's problems beyond its syntax, run as it is typed. */
  check?: (text: string) => JsonProblem[];
}

/** Marks the document replaced by a value set from outside, which is not reported back as typed. */
const fromOutside = Annotation.define<boolean>();

/** How long typing pauses before the document is checked again. */
const LINT_DELAY_MS = 300;

// Colours hold 4.5:1 against the editor's background in both themes.
const palettes = {
  light: { background: '#ffffff', text: '#0f172a', muted: '#475569', border: '#cbd5e1', key: '#1d4ed8', string: '#166534', number: '#9a3412', literal: '#6b21a8', selection: '#c7d2fe', problem: '#b91c1c' },
  dark: { background: '#0f172a', text: '#f1f5f9', muted: '#94a3b8', border: '#475569', key: '#93c5fd', string: '#86efac', number: '#fdba74', literal: '#d8b4fe', selection: '#3730a3', problem: '#f87171' },
};

function look(dark: boolean) {
  const colours = dark ? palettes.dark : palettes.light;
  return [
    EditorView.theme(
      {
        '&': { backgroundColor: colours.background, color: colours.text, border: `1px solid ${colours.border}`, borderRadius: '6px', fontSize: '14px' },
        '&.cm-focused': { outline: '2px solid #6366f1', outlineOffset: '1px' },
        '.cm-content': { fontFamily: 'ui-monospace, SFMono-Regular, Menlo, monospace', minHeight: '12rem', caretColor: colours.text },
        '.cm-gutters': { backgroundColor: colours.background, color: colours.muted, borderRight: `1px solid ${colours.border}` },
        '&.cm-focused .cm-selectionBackground, .cm-selectionBackground': { backgroundColor: colours.selection },
        '.cm-tooltip': { backgroundColor: colours.background, color: colours.text, border: `1px solid ${colours.border}` },
        '.cm-scroller': { maxHeight: '32rem', overflow: 'auto' },
        // The lint's own underline is an SVG data: URL, which img-src 'self' refuses.
        '.cm-lintRange-error, .cm-lintRange-warning, .cm-lintRange-info, .cm-lintRange-hint': {
          backgroundImage: 'none',
          textDecoration: `underline wavy ${colours.problem}`,
          textUnderlineOffset: '3px',
        },
      },
      { dark },
    ),
    syntaxHighlighting(
      HighlightStyle.define([
        { tag: tags.propertyName, color: colours.key },
        { tag: tags.string, color: colours.string },
        { tag: tags.number, color: colours.number },
        { tag: [tags.bool, tags.null], color: colours.literal },
      ]),
    ),
  ];
}

export default function JsonEditor({ label, value, onChange, keys = [], paths = [], check }: JsonEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const dark = useShownTheme() === 'dark';
  // The theme follows the page's without rebuilding the editor.
  const theme = useRef(new Compartment());
  // The latest callbacks and hints, read by the editor built once.
  const latest = useRef({ onChange, check, keys, paths });
  // What the editor reported since the document last matched `value`: a render may bring one of
  // them back after the user typed on, and that echo must not undo the typing.
  const reported = useRef(new Set<string>());
  useEffect(() => {
    latest.current = { onChange, check, keys, paths };
  });

  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const root = element.shadowRoot ?? element.attachShadow({ mode: 'open' });
    const parent = document.createElement('div');
    root.append(parent);
    const editor = new EditorView({
      root,
      parent,
      state: EditorState.create({
        doc: value,
        extensions: [
          lineNumbers(),
          history(),
          bracketMatching(),
          closeBrackets(),
          json(),
          autocompletion({
            override: [
              (context) => keyCompletion(latest.current.keys)(context),
              (context) => pathCompletion(latest.current.paths)(context),
            ],
          }),
          linter(
            (current) => {
              const syntax = jsonParseLinter()(current);
              if (syntax.length > 0) return syntax;
              return diagnosticsOf(current.state, latest.current.check?.(current.state.doc.toString()) ?? []);
            },
            { delay: LINT_DELAY_MS },
          ),
          keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...completionKeymap, ...lintKeymap]),
          EditorView.lineWrapping,
          // tabindex: axe counts a scrolled editor keyboard-reachable only with it said outright.
          EditorView.contentAttributes.of({ 'aria-label': label, tabindex: '0' }),
          EditorView.updateListener.of((update) => {
            if (!update.docChanged || update.transactions.some((transaction) => transaction.annotation(fromOutside))) return;
            const text = update.state.doc.toString();
            reported.current.add(text);
            latest.current.onChange(text);
          }),
          theme.current.of(look(dark)),
        ],
      }),
    });
    view.current = editor;
    return () => {
      editor.destroy();
      parent.remove();
      view.current = null;
    };
    // Built once per label; the value and the theme follow below without rebuilding.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [label]);

  useEffect(() => {
    view.current?.dispatch({ effects: theme.current.reconfigure(look(dark)) });
  }, [dark]);

  // A value set from outside (the form view, a template) replaces the document.
  useEffect(() => {
    const editor = view.current;
    if (!editor) return;
    const current = editor.state.doc.toString();
    if (current === value) reported.current.clear();
    else if (!reported.current.has(value)) {
      reported.current.clear();
      editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: value }, annotations: fromOutside.of(true) });
    }
  }, [value]);

  return <div ref={host} data-testid="json-editor" />;
}
