/** Memory's server state: sessions, entries (by key prefix, paged), backups. */
import { api, data, type Schemas } from '../api/client';

export type Entry = Schemas['Entry'];

export const memoryKeys = {
  sessions: ['memory', 'sessions'] as const,
  entries: (session: string, prefix: string) => ['memory', 'entries', session, prefix] as const,
  backups: (session: string) => ['memory', 'backups', session] as const,
};

export const PAGE_SIZE = 50;

export function listSessions(pageToken?: string) {
  return data(
    api.GET('/api/memory/sessions', {
      params: { query: { page_size: PAGE_SIZE, ...(pageToken ? { page_token: pageToken } : {}) } },
    }),
  );
}

export function listEntries(session: string, prefix: string, pageToken?: string) {
  return data(
    api.GET('/api/memory/all', {
      params: {
        query: {
          session_id: session,
          page_size: PAGE_SIZE,
          ...(prefix ? { key_prefix: prefix } : {}),
          ...(pageToken ? { page_token: pageToken } : {}),
        },
      },
    }),
  );
}

/** Writes an entry; with `expectedVersion`, only over that version (409 otherwise). */
export function saveEntry(entry: {
  session: string;
  key: string;
  value: unknown;
  ttlSeconds?: number;
  expectedVersion?: number;
}) {
  return data(
    api.POST('/api/memory/save', {
      body: {
        session_id: entry.session,
        key: entry.key,
        value: entry.value,
        ...(entry.ttlSeconds ? { ttl_seconds: entry.ttlSeconds } : {}),
        ...(entry.expectedVersion !== undefined ? { expected_version: entry.expectedVersion } : {}),
      },
    }),
  );
}

export function loadEntry(session: string, key: string) {
  return data(api.POST('/api/memory/load', { body: { session_id: session, key } }));
}

export function deleteEntry(session: string, key: string) {
  return data(
    api.DELETE('/api/memory/sessions/{session_id}/keys/{key}', {
      params: { path: { session_id: session, key } },
    }),
  );
}

export function deleteSession(session: string) {
  return data(api.DELETE('/api/memory/sessions/{session_id}', { params: { path: { session_id: session } } }));
}

export function listBackups(session: string) {
  return data(api.GET('/api/memory/backups', { params: { query: { session_id: session, page_size: 50 } } }));
}

export function backUp(session: string, label: string) {
  return data(api.POST('/api/memory/backup', { body: { session_id: session, label } }));
}

export function restore(backupId: string) {
  return data(api.POST('/api/memory/restore', { body: { backup_id: backupId } }));
}
