/**
 * How the console obtains and renews access tokens: the gateway's console session routes. The
 * access token lives in memory only; the refresh token is an HttpOnly cookie no script can read
 * (scoped to /api/console), and the routes that use it want the readable `sankalpa_csrf`
 * cookie echoed in `X-CSRF-Token`, which another site can neither read nor send. A reload
 * therefore keeps the session, and an injected script cannot carry it away.
 */
import createClient from 'openapi-fetch';

import { ProblemError, problemFrom } from '../api/problem';
import type { components, paths } from '../api/schema';

export type User = components['schemas']['User'];

/** What a sign-in or a refresh grants. */
export interface Grant {
  accessToken: string;
  expiresIn: number;
  user?: User | null;
}

export interface Transport {
  signIn(email: string, password: string): Promise<Grant>;
  /** A new grant, or null when there is no session to renew. */
  refresh(): Promise<Grant | null>;
  /** Ends this session, or with `everywhere` every session of the user. */
  signOut(everywhere: boolean): Promise<void>;
}

// A client of its own, without the session's middleware: these calls must not recurse into it.
const bare = createClient<paths>({ baseUrl: '' });

const CSRF_COOKIE = 'sankalpa_csrf';

function csrfToken(): string | null {
  for (const pair of document.cookie.split(';')) {
    const [name, ...value] = pair.trim().split('=');
    if (name === CSRF_COOKIE) return decodeURIComponent(value.join('='));
  }
  return null;
}

export function cookieTransport(): Transport {
  return {
    async signIn(email, password) {
      const { data, error, response } = await bare.POST('/api/console/session', {
        body: { email, password },
      });
      if (!data) throw new ProblemError(problemFrom(error, response));
      return { accessToken: data.access_token, expiresIn: data.expires_in, user: data.user };
    },
    async refresh() {
      const csrf = csrfToken();
      if (!csrf) return null;
      const { data, error, response } = await bare.POST('/api/console/refresh', {
        params: { header: { 'x-csrf-token': csrf } },
      });
      if (data) return { accessToken: data.access_token, expiresIn: data.expires_in, user: data.user };
      // No session to renew (401), or the cookies no longer match (403): sign in again.
      if (response.status === 401 || response.status === 403) return null;
      throw new ProblemError(problemFrom(error, response));
    },
    async signOut(everywhere) {
      const csrf = csrfToken();
      if (!csrf) return;
      const { error, response } = await bare.POST('/api/console/logout', {
        params: { header: { 'x-csrf-token': csrf } },
        body: { everywhere },
      });
      if (!response.ok) throw new ProblemError(problemFrom(error, response));
    },
  };
}
