/**
 * The one typed client of the gateway's API, generated from docs/openapi.json (`npm run gen`).
 * Every call carries the session's access token; a 401 renews it once and retries, so a token
 * that expired while the tab slept costs the user nothing.
 */
import createClient, { type Middleware } from 'openapi-fetch';

import { session } from '../auth/session';
import { ProblemError, problemFrom } from './problem';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];

const retries = new Map<string, Request>();

const authenticate: Middleware = {
  onRequest({ request, id }) {
    const token = session.token();
    if (token) request.headers.set('authorization', `Bearer ${token}`);
    retries.set(id, request.clone());
    return request;
  },
  async onResponse({ response, id }) {
    const original = retries.get(id);
    retries.delete(id);
    if (response.status !== 401 || !original || !session.token()) return response;
    if (!(await session.refresh())) return response;
    const token = session.token();
    if (token) original.headers.set('authorization', `Bearer ${token}`);
    return fetch(original);
  },
  onError({ id }) {
    retries.delete(id);
  },
};

export const api = createClient<paths>({ baseUrl: '' });
api.use(authenticate);

/** The data of a call, or a thrown ProblemError: what TanStack Query wants. */
export async function data<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) {
    throw new ProblemError(problemFrom(error, response));
  }
  return data as T;
}

/** Fetches `path` with the session's token, as a Blob (artifact archives, downloads). */
export async function download(path: string): Promise<Blob> {
  const token = session.token();
  const response = await fetch(path, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  if (!response.ok) {
    throw new ProblemError(problemFrom(await response.json().catch(() => null), response));
  }
  return response.blob();
}
