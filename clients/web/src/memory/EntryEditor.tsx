/**
 * View and edit one entry's JSON value with compare-and-set: a save names the version it was
 * read at, and when someone wrote the entry since, the 409 says which version it is now and
 * offers the choice: take theirs (reload), or write mine over it.
 */
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';

import { ProblemError } from '../api/problem';
import { ProblemMessage } from '../ui/states';
import { type Entry, deleteEntry, loadEntry, saveEntry } from './queries';

export function EntryEditor({ session, entry, canWrite, onClose }: {
  session: string;
  entry: Entry;
  canWrite: boolean;
  onClose: () => void;
}) {
  const queryClient = useQueryClient();
  const [base, setBase] = useState(entry);
  const [text, setText] = useState(() => JSON.stringify(entry.value, null, 2));
  const [ttl, setTtl] = useState('');
  const [parseError, setParseError] = useState<string | null>(null);
  const refresh = () => queryClient.invalidateQueries({ queryKey: ['memory'] });
  const save = useMutation({
    mutationFn: ({ value, expectedVersion }: { value: unknown; expectedVersion: number }) =>
      saveEntry({ session, key: entry.key, value, expectedVersion, ...(ttl ? { ttlSeconds: Number(ttl) } : {}) }),
    onSuccess: (saved) => {
      setBase(saved);
      void refresh();
    },
  });
  const theirs = useMutation({
    mutationFn: () => loadEntry(session, entry.key),
    onSuccess: (current) => {
      setBase(current);
      setText(JSON.stringify(current.value, null, 2));
      save.reset();
    },
  });
  const remove = useMutation({
    mutationFn: () => deleteEntry(session, entry.key),
    onSuccess: () => {
      void refresh();
      onClose();
    },
  });

  function parsed(): unknown {
    try {
      const value: unknown = JSON.parse(text);
      setParseError(null);
      return value;
    } catch {
      setParseError('Not valid JSON');
      return undefined;
    }
  }

  const conflict =
    save.error instanceof ProblemError && save.error.problem.status === 409 ? save.error.problem : null;
  return (
    <section aria-label={`Entry ${entry.key}`} className="card space-y-3">
      <div className="flex flex-wrap items-center gap-3">
        <h3 className="font-mono font-semibold">{entry.key}</h3>
        <span className="muted text-sm">version {base.version}</span>
        {base.expires_at && <span className="muted text-sm">expires {new Date(base.expires_at).toLocaleString()}</span>}
        <button type="button" className="btn-secondary ml-auto" onClick={onClose}>Close</button>
      </div>
      <div>
        <label className="label" htmlFor="entry-value">Value (JSON)</label>
        <textarea id="entry-value" className="input min-h-40 font-mono" spellCheck={false} value={text} readOnly={!canWrite}
          aria-invalid={Boolean(parseError)} aria-describedby={parseError ? 'entry-value-error' : undefined}
          onChange={(event) => setText(event.target.value)} />
        {parseError && <p id="entry-value-error" className="mt-1 text-sm text-red-700 dark:text-red-300">{parseError}</p>}
      </div>
      {canWrite && (
        <>
          <div className="max-w-xs">
            <label className="label" htmlFor="entry-ttl">Expire after (seconds; empty: never)</label>
            <input id="entry-ttl" className="input" type="number" min={0} value={ttl} onChange={(event) => setTtl(event.target.value)} />
          </div>
          {conflict ? (
            <div role="alert" className="rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-950 dark:border-amber-700 dark:bg-amber-950 dark:text-amber-50">
              <p className="font-semibold">
                Someone changed this entry: it is at version {conflict.current_version ?? '?'} now, you edited version {base.version}.
              </p>
              <div className="mt-2 flex flex-wrap gap-2">
                <button type="button" className="btn-secondary" onClick={() => theirs.mutate()}>Load their version</button>
                <button type="button" className="btn-primary" onClick={() => {
                  const value = parsed();
                  if (value !== undefined) save.mutate({ value, expectedVersion: conflict.current_version ?? 0 });
                }}>
                  Overwrite with mine
                </button>
              </div>
            </div>
          ) : (
            <ProblemMessage error={save.error} />
          )}
          <ProblemMessage error={remove.error ?? theirs.error} />
          <div className="flex flex-wrap gap-2">
            <button type="button" className="btn-primary" disabled={save.isPending} onClick={() => {
              const value = parsed();
              if (value !== undefined) save.mutate({ value, expectedVersion: base.version });
            }}>
              Save
            </button>
            <button type="button" className="btn-danger" disabled={remove.isPending} onClick={() => remove.mutate()}>
              Delete entry
            </button>
          </div>
          {save.isSuccess && <p role="status" className="text-sm">Saved as version {save.data.version}.</p>}
        </>
      )}
    </section>
  );
}
