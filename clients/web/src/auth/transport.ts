/**
 * How the console obtains and renews access tokens. The access token lives in memory only, never
 * in storage a script could read later. Until the gateway's console session routes (an HttpOnly
 * refresh cookie with CSRF protection) land, the token pair of `/api/users/login` is kept in
 * memory, so a reload signs out; `session.ts` depends on this interface alone.
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
  signOut(): Promise<void>;
}

// A client of its own, without the session's middleware: these calls must not recurse into it.
const bare = createClient<paths>({ baseUrl: '' });

/** Token pairs of `/api/users/login`, the refresh token held in this closure. */
export function tokenPairTransport(): Transport {
  let refreshToken: string | null = null;
  return {
    async signIn(email, password) {
      const { data, error, response } = await bare.POST('/api/users/login', {
        body: { email, password },
      });
      if (!data) throw new ProblemError(problemFrom(error, response));
      refreshToken = data.refresh_token;
      return { accessToken: data.access_token, expiresIn: data.expires_in, user: data.user };
    },
    async refresh() {
      if (!refreshToken) return null;
      const { data, error, response } = await bare.POST('/api/users/refresh', {
        body: { refresh_token: refreshToken },
      });
      if (!data) {
        if (response.status === 401) {
          refreshToken = null;
          return null;
        }
        throw new ProblemError(problemFrom(error, response));
      }
      refreshToken = data.refresh_token;
      return { accessToken: data.access_token, expiresIn: data.expires_in, user: data.user };
    },
    async signOut() {
      const token = refreshToken;
      refreshToken = null;
      if (token) await bare.POST('/api/users/logout', { body: { refresh_token: token } });
    },
  };
}
