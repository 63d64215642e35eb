/**
 * The "Keyboard shortcuts" help: a modal dialog (the browser's own `<dialog>`: focus moves in,
 * stays in, and Escape closes it) listing `SHORTCUTS` and the canvas's own keys.
 */
import type { Ref } from 'react';

import { SHORTCUTS } from './shortcuts';

function Keys({ keys }: { keys: string[] }) {
  return (
    <>
      {keys.map((chord, index) => (
        <span key={chord}>
          {index > 0 && <span className="muted"> or </span>}
          {chord.split('+').map((key, at) => (
            <span key={key}>
              {at > 0 && '+'}
              <kbd className="rounded border border-slate-300 px-1 font-mono text-xs dark:border-slate-600">
                {key === 'Control' ? 'Ctrl' : key}
              </kbd>
            </span>
          ))}
        </span>
      ))}
    </>
  );
}

export function ShortcutsHelp({ ref }: { ref: Ref<HTMLDialogElement> }) {
  return (
    <dialog ref={ref} aria-labelledby="shortcuts-title"
      className="m-auto max-w-lg rounded-lg border border-slate-300 bg-white p-5 text-slate-900 backdrop:bg-slate-900/50 dark:border-slate-600 dark:bg-slate-900 dark:text-slate-100">
      <h2 id="shortcuts-title" className="mb-3 text-lg font-semibold">Keyboard shortcuts</h2>
      <table className="w-full text-left text-sm">
        <thead>
          <tr><th scope="col" className="pb-1">Keys</th><th scope="col" className="pb-1">What they do</th></tr>
        </thead>
        <tbody>
          {SHORTCUTS.map((shortcut) => (
            <tr key={shortcut.action} className="border-t border-slate-200 dark:border-slate-700">
              <td className="py-1 pr-3"><Keys keys={shortcut.keys} /></td>
              <td className="py-1">{shortcut.does}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="muted mt-3 text-sm">
        On the canvas, Tab reaches each step; Enter or Space selects it, the arrow keys move it. A
        selected step&apos;s panel connects it to others (&ldquo;Needs&rdquo;). The shortcuts do not apply while
        typing in a field.
      </p>
      <form method="dialog" className="mt-4 text-right">
        <button type="submit" className="btn-primary">Close</button>
      </form>
    </dialog>
  );
}
