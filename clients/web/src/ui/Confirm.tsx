/**
 * A button that asks before it acts: a modal dialog (the browser's own `<dialog>`: focus moves
 * in, stays in, Escape cancels) saying what will happen, with the act and Cancel.
 */
import { type ReactNode, useId, useRef } from 'react';

export function ConfirmButton({ label, title, act, disabled, onConfirm, children }: {
  /** The button that opens the question. */
  label: string;
  /** The question, the dialog's name. */
  title: string;
  /** The confirming button's words. */
  act: string;
  disabled?: boolean;
  onConfirm: () => void;
  /** What will happen, said in the dialog. */
  children: ReactNode;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  return (
    <>
      <button type="button" className="btn-danger" disabled={disabled} onClick={() => dialog.current?.showModal()}>
        {label}
      </button>
      <dialog ref={dialog} aria-labelledby={titleId}
        className="m-auto max-w-md rounded-lg border border-slate-300 bg-white p-5 text-slate-900 backdrop:bg-slate-900/50 dark:border-slate-600 dark:bg-slate-900 dark:text-slate-100">
        <h2 id={titleId} className="mb-2 text-lg font-semibold">{title}</h2>
        <div className="text-sm">{children}</div>
        <form method="dialog" className="mt-4 flex justify-end gap-2">
          <button type="submit" className="btn-secondary" autoFocus>Cancel</button>
          <button type="button" className="btn-danger" onClick={() => { dialog.current?.close(); onConfirm(); }}>{act}</button>
        </form>
      </dialog>
    </>
  );
}
