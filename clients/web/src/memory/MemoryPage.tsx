/**
 * Memory: the tenant's sessions; a session's entries by key prefix, a page at a time; an
 * entry's value to view and edit (compare-and-set); a new entry; the session's backups, a new
 * one, and a restore.
 */
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useDeferredValue, useState } from 'react';
import { useSearchParams } from 'react-router';

import { ProblemError } from '../api/problem';
import { can, useSession } from '../auth/session';
import { Empty, Loading, PageHeader, ProblemMessage } from '../ui/states';
import { ago } from '../ui/time';
import { EntryEditor } from './EntryEditor';
import {
  type Entry,
  backUp,
  deleteSession,
  listBackups,
  listEntries,
  listSessions,
  memoryKeys,
  restore,
  saveEntry,
} from './queries';

function NewEntry({ session, onSaved }: { session: string; onSaved: (session: string, entry: Entry) => void }) {
  const queryClient = useQueryClient();
  const [parseError, setParseError] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: (entry: { session: string; key: string; value: unknown; ttlSeconds?: number }) =>
      // 0: only if absent, so a new entry never overwrites one.
      saveEntry({ ...entry, expectedVersion: 0 }),
    onSuccess: (entry, variables) => {
      void queryClient.invalidateQueries({ queryKey: ['memory'] });
      onSaved(variables.session, entry);
    },
  });
  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    let value: unknown;
    try {
      value = JSON.parse(String(form.get('value') ?? ''));
      setParseError(null);
    } catch {
      setParseError('Not valid JSON');
      return;
    }
    const ttl = Number(form.get('ttl') ?? 0);
    save.mutate({
      session: String(form.get('session') ?? ''),
      key: String(form.get('key') ?? ''),
      value,
      ...(ttl > 0 ? { ttlSeconds: ttl } : {}),
    });
  }
  const fieldError = (field: string) =>
    save.error instanceof ProblemError ? save.error.fieldMessage(field) : undefined;
  const fields = [
    { name: 'session', label: 'Session', field: 'session_id', defaultValue: session },
    { name: 'key', label: 'Key', field: 'key', defaultValue: '' },
  ];
  return (
    <form onSubmit={submit} aria-labelledby="new-entry" className="card space-y-3" noValidate>
      <h2 id="new-entry" className="font-semibold">New entry</h2>
      {fields.map((item) => (
        <div key={item.name}>
          <label className="label" htmlFor={`new-${item.name}`}>{item.label}</label>
          <input id={`new-${item.name}`} name={item.name} className="input font-mono" required defaultValue={item.defaultValue}
            aria-invalid={Boolean(fieldError(item.field))} aria-describedby={fieldError(item.field) ? `new-${item.name}-error` : undefined} />
          {fieldError(item.field) && <p id={`new-${item.name}-error`} className="mt-1 text-sm text-red-700 dark:text-red-300">{fieldError(item.field)}</p>}
        </div>
      ))}
      <div>
        <label className="label" htmlFor="new-value">Value (JSON)</label>
        <textarea id="new-value" name="value" className="input min-h-20 font-mono" spellCheck={false} defaultValue="{}"
          aria-invalid={Boolean(parseError)} aria-describedby={parseError ? 'new-value-error' : undefined} />
        {parseError && <p id="new-value-error" className="mt-1 text-sm text-red-700 dark:text-red-300">{parseError}</p>}
      </div>
      <div>
        <label className="label" htmlFor="new-ttl">Expire after (seconds; empty: never)</label>
        <input id="new-ttl" name="ttl" className="input" type="number" min={0} />
      </div>
      {!fieldError('session_id') && !fieldError('key') && <ProblemMessage error={save.error} />}
      <button type="submit" className="btn-primary" disabled={save.isPending}>Save entry</button>
    </form>
  );
}

function Backups({ session, canWrite }: { session: string; canWrite: boolean }) {
  const queryClient = useQueryClient();
  const backups = useQuery({ queryKey: memoryKeys.backups(session), queryFn: () => listBackups(session) });
  const [label, setLabel] = useState('');
  const create = useMutation({
    mutationFn: () => backUp(session, label),
    onSuccess: () => {
      setLabel('');
      void queryClient.invalidateQueries({ queryKey: memoryKeys.backups(session) });
    },
  });
  const restoring = useMutation({
    mutationFn: restore,
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['memory'] }),
  });
  return (
    <section aria-labelledby="backups" className="card space-y-3">
      <h2 id="backups" className="font-semibold">Backups of {session}</h2>
      {canWrite && (
        <div className="flex flex-wrap items-end gap-2">
          <div>
            <label className="label" htmlFor="backup-label">Label</label>
            <input id="backup-label" className="input" maxLength={200} value={label} onChange={(event) => setLabel(event.target.value)} />
          </div>
          <button type="button" className="btn-secondary" disabled={create.isPending} onClick={() => create.mutate()}>Back up now</button>
        </div>
      )}
      <ProblemMessage error={create.error ?? restoring.error} />
      {restoring.isSuccess && <p role="status" className="text-sm">Restored {restoring.data.restored_entries} entries.</p>}
      {backups.isPending && <Loading label="Loading backups" />}
      {backups.error && <ProblemMessage error={backups.error} />}
      {backups.data && backups.data.backups.length === 0 && <p className="muted text-sm">No backups of this session.</p>}
      <ul className="divide-y divide-slate-100 text-sm dark:divide-slate-800">
        {backups.data?.backups.map((backup) => (
          <li key={backup.id} className="flex flex-wrap items-center gap-3 py-2">
            <span>{backup.label || 'unlabelled'}</span>
            <span className="muted">{backup.entry_count} entries · {ago(backup.created_at)}</span>
            {canWrite && (
              <button type="button" className="btn-secondary ml-auto" aria-label={`Restore ${backup.label || backup.id}`}
                disabled={restoring.isPending} onClick={() => restoring.mutate(backup.id)}>
                Restore
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Entries({ session, canWrite }: { session: string; canWrite: boolean }) {
  const [prefix, setPrefix] = useState('');
  const search = useDeferredValue(prefix);
  const [open, setOpen] = useState<Entry | null>(null);
  const entries = useInfiniteQuery({
    queryKey: memoryKeys.entries(session, search),
    queryFn: ({ pageParam }) => listEntries(session, search, pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (page) => page.next_page_token ?? undefined,
  });
  const all = entries.data?.pages.flatMap((page) => page.entries) ?? [];
  return (
    <section aria-labelledby="entries" className="space-y-3">
      <h2 id="entries" className="text-lg font-semibold">Entries of <span className="font-mono">{session}</span></h2>
      <div className="max-w-sm">
        <label className="label" htmlFor="key-prefix">Keys starting with</label>
        <input id="key-prefix" className="input font-mono" value={prefix} onChange={(event) => setPrefix(event.target.value)} />
      </div>
      {open && <EntryEditor key={open.key} session={session} entry={open} canWrite={canWrite} onClose={() => setOpen(null)} />}
      {entries.isPending && <Loading label="Loading entries" />}
      {entries.error && <ProblemMessage error={entries.error} />}
      {entries.data && all.length === 0 && <Empty title={search ? `No key starts with ${search}` : 'No entries'} />}
      {all.length > 0 && (
        <div className="card overflow-x-auto p-0">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Entries</caption>
            <thead className="border-b border-slate-200 dark:border-slate-700">
              <tr>
                <th scope="col" className="px-4 py-2">Key</th>
                <th scope="col" className="px-4 py-2">Version</th>
                <th scope="col" className="hidden px-4 py-2 md:table-cell">Value</th>
                <th scope="col" className="px-4 py-2">Updated</th>
              </tr>
            </thead>
            <tbody>
              {all.map((entry) => (
                <tr key={entry.key} className="border-b border-slate-100 last:border-0 dark:border-slate-800">
                  <td className="px-4 py-2">
                    <button type="button" className="link font-mono" onClick={() => setOpen(entry)}>{entry.key}</button>
                  </td>
                  <td className="px-4 py-2">{entry.version}</td>
                  <td className="muted hidden max-w-xs truncate px-4 py-2 font-mono text-xs md:table-cell">{JSON.stringify(entry.value)}</td>
                  <td className="px-4 py-2">{ago(entry.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {entries.hasNextPage && (
        <button type="button" className="btn-secondary" disabled={entries.isFetchingNextPage} onClick={() => void entries.fetchNextPage()}>
          More entries
        </button>
      )}
    </section>
  );
}

export function MemoryPage() {
  const state = useSession();
  const canWrite = can(state, 'memory:write');
  const queryClient = useQueryClient();
  const [params, setParams] = useSearchParams();
  const selected = params.get('session') ?? '';
  const sessions = useInfiniteQuery({
    queryKey: memoryKeys.sessions,
    queryFn: ({ pageParam }) => listSessions(pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (page) => page.next_page_token ?? undefined,
  });
  const drop = useMutation({
    mutationFn: deleteSession,
    onSuccess: () => {
      setParams({});
      void queryClient.invalidateQueries({ queryKey: ['memory'] });
    },
  });
  const all = sessions.data?.pages.flatMap((page) => page.sessions) ?? [];
  return (
    <>
      <PageHeader title="Memory">
        {selected && canWrite && (
          <button type="button" className="btn-danger" disabled={drop.isPending} onClick={() => drop.mutate(selected)}>
            Delete session
          </button>
        )}
      </PageHeader>
      <ProblemMessage error={drop.error} />
      <div className="grid grid-cols-1 gap-6 lg:grid-cols-3">
        <div className="space-y-4">
          <section aria-labelledby="sessions" className="card">
            <h2 id="sessions" className="mb-2 font-semibold">Sessions</h2>
            {sessions.isPending && <Loading label="Loading sessions" />}
            {sessions.error && <ProblemMessage error={sessions.error} />}
            {sessions.data && all.length === 0 && <p className="muted text-sm">No sessions yet: save an entry to make one.</p>}
            <ul className="space-y-1">
              {all.map((session) => (
                <li key={session.id}>
                  <button type="button" aria-pressed={session.id === selected}
                    className="flex w-full items-center justify-between gap-2 rounded px-2 py-1 text-left text-sm hover:bg-slate-100 aria-pressed:bg-indigo-100 dark:hover:bg-slate-800 dark:aria-pressed:bg-indigo-900"
                    onClick={() => setParams({ session: session.id })}>
                    <span className="truncate font-mono">{session.id}</span>
                    <span className="muted text-xs">{session.entry_count}</span>
                  </button>
                </li>
              ))}
            </ul>
            {sessions.hasNextPage && (
              <button type="button" className="btn-secondary mt-2" onClick={() => void sessions.fetchNextPage()}>More sessions</button>
            )}
          </section>
          {canWrite && <NewEntry session={selected} onSaved={(session) => setParams({ session })} />}
        </div>
        <div className="space-y-6 lg:col-span-2">
          {selected ? (
            <>
              <Entries key={selected} session={selected} canWrite={canWrite} />
              <Backups session={selected} canWrite={canWrite} />
            </>
          ) : (
            <Empty title="No session chosen">Pick a session to see its entries and backups.</Empty>
          )}
        </div>
      </div>
    </>
  );
}
