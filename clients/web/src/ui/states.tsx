/** The loading, empty and error states every page shows the same way. */
import type { ReactNode } from 'react';

import { asProblem, detailBeyondErrors } from '../api/problem';

export function Loading({ label = 'Loading' }: { label?: string }) {
  return (
    <p role="status" className="muted animate-pulse py-6 text-sm">
      {label}…
    </p>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="rounded-lg border border-dashed border-slate-300 p-6 text-center dark:border-slate-600">
      <p className="font-medium">{title}</p>
      {children && <div className="muted mt-1 text-sm">{children}</div>}
    </div>
  );
}

/** A problem+json (or any failure) as a readable message; field errors listed by field. */
export function ProblemMessage({ error }: { error: unknown }) {
  if (!error) return null;
  const problem = asProblem(error);
  const forbidden = problem.status === 403;
  const detail = detailBeyondErrors(problem);
  return (
    <div
      role="alert"
      className="rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-900 dark:border-red-700 dark:bg-red-950 dark:text-red-100"
    >
      <p className="font-semibold">
        {forbidden ? 'You do not have permission to do this.' : problem.title}
      </p>
      {detail && <p className="mt-1">{detail}</p>}
      {problem.errors && problem.errors.length > 0 && (
        <ul className="mt-1 list-disc pl-5">
          {problem.errors.map((violation) => (
            <li key={violation.field + violation.message}>
              <code>{violation.field}</code>: {violation.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function PageHeader({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="mb-6 flex flex-wrap items-center justify-between gap-3">
      <h1 className="text-2xl font-semibold tracking-tight">{title}</h1>
      {children && <div className="flex flex-wrap gap-2">{children}</div>}
    </div>
  );
}

const STATUS_STYLES: Record<string, string> = {
  completed: 'bg-green-100 text-green-900 dark:bg-green-900 dark:text-green-100',
  delivered: 'bg-green-100 text-green-900 dark:bg-green-900 dark:text-green-100',
  serving: 'bg-green-100 text-green-900 dark:bg-green-900 dark:text-green-100',
  ok: 'bg-green-100 text-green-900 dark:bg-green-900 dark:text-green-100',
  running: 'bg-blue-100 text-blue-900 dark:bg-blue-900 dark:text-blue-100',
  pending: 'bg-slate-200 text-slate-900 dark:bg-slate-700 dark:text-slate-100',
  waiting: 'bg-amber-100 text-amber-900 dark:bg-amber-900 dark:text-amber-100',
  skipped: 'bg-slate-200 text-slate-900 dark:bg-slate-700 dark:text-slate-100',
  cancelled: 'bg-slate-200 text-slate-900 dark:bg-slate-700 dark:text-slate-100',
  failed: 'bg-red-100 text-red-900 dark:bg-red-900 dark:text-red-100',
};

export function StatusBadge({ status }: { status: string }) {
  const style = STATUS_STYLES[status] ?? 'bg-red-100 text-red-900 dark:bg-red-900 dark:text-red-100';
  return (
    <span className={`inline-block rounded-full px-2 py-0.5 text-xs font-medium ${style}`}>
      {status}
    </span>
  );
}
