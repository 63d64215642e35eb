/**
 * The signed-in session: one store the whole console reads (`useSession`), the access token
 * kept in memory and renewed before it expires (`refresh.ts` says when), and the user it
 * belongs to. API calls take the token from here (`api/client.ts`).
 */
import { useSyncExternalStore } from 'react';

import { refreshDelayMs, retryDelayMs } from './refresh';
import { type Grant, type Transport, type User, cookieTransport } from './transport';

export type SessionState =
  | { status: 'restoring' }
  | { status: 'signed-out'; reason?: string }
  | { status: 'signed-in'; user: User };

type Listener = () => void;

/**
 * Runs a refresh while holding a lock every tab of this origin shares: two tabs renewing at once
 * would present the same refresh cookie twice, and a rotated token presented again ends the
 * whole login. Held in turn, the second sends the cookie the first was given.
 */
function acrossTabs<T>(refresh: () => Promise<T>): Promise<T> {
  if (typeof navigator === 'undefined' || !('locks' in navigator)) return refresh();
  return navigator.locks.request('sankalpa-session-refresh', refresh) as Promise<T>;
}

class Session {
  private state: SessionState = { status: 'restoring' };
  private accessToken: string | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private refreshing: Promise<boolean> | null = null;
  private readonly listeners = new Set<Listener>();

  constructor(
    private readonly transport: Transport,
    private readonly loadUser: (token: string) => Promise<User>,
  ) {}

  snapshot = (): SessionState => this.state;

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  token(): string | null {
    return this.accessToken;
  }

  /** At start: picks up a session the transport can renew, or settles as signed out. */
  async restore(): Promise<void> {
    if (!(await this.refresh())) this.set({ status: 'signed-out' });
  }

  async signIn(email: string, password: string): Promise<void> {
    await this.accept(await this.transport.signIn(email, password));
  }

  /**
   * Signs out here, or with `everywhere` on every device. This tab signs out whatever the
   * gateway answers; the error, if any, is for the caller to show.
   */
  async signOut(everywhere = false): Promise<void> {
    clearTimeout(this.timer);
    try {
      await this.transport.signOut(everywhere);
    } finally {
      this.accessToken = null;
      this.set({ status: 'signed-out' });
    }
  }

  /**
   * Renews the access token; concurrent callers share one renewal. False when there is no
   * session any more (the caller then signs in again).
   */
  refresh(): Promise<boolean> {
    this.refreshing ??= this.renew().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async renew(attempt = 1): Promise<boolean> {
    let grant: Grant | null;
    try {
      grant = await acrossTabs(() => this.transport.refresh());
    } catch {
      // The gateway did not answer: keep the session and try again shortly.
      if (this.accessToken) {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => void this.renew(attempt + 1), retryDelayMs(attempt));
        return true;
      }
      return false;
    }
    if (!grant) {
      if (this.state.status === 'signed-in') {
        this.accessToken = null;
        this.set({ status: 'signed-out', reason: 'Your session ended. Sign in again.' });
      }
      return false;
    }
    await this.accept(grant);
    return true;
  }

  private async accept(grant: Grant): Promise<void> {
    this.accessToken = grant.accessToken;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), refreshDelayMs(grant.expiresIn));
    const user = grant.user ?? (await this.loadUser(grant.accessToken));
    this.set({ status: 'signed-in', user });
  }

  private set(state: SessionState): void {
    this.state = state;
    for (const listener of this.listeners) listener();
  }
}

async function me(token: string): Promise<User> {
  const response = await fetch('/api/users/me', { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`GET /api/users/me answered ${response.status}`);
  return (await response.json()) as User;
}

export const session = new Session(cookieTransport(), me);

export function useSession(): SessionState {
  return useSyncExternalStore(session.subscribe, session.snapshot);
}

/** The platform's permissions, which no wildcard grants (as `kit::auth::permission_grants`). */
const PLATFORM_PERMISSIONS = new Set(['tenants:admin', 'fleet:read']);

/** Whether `held` grants `wanted`: the same name, `*:*`, or `<resource>:*`. */
export function grants(held: string, wanted: string): boolean {
  if (held === wanted) return true;
  if (PLATFORM_PERMISSIONS.has(wanted)) return false;
  if (held === '*:*') return true;
  const [heldResource, heldAction] = held.split(':');
  return heldAction === '*' && heldResource === wanted.split(':')[0];
}

/** Whether the signed-in user holds `permission`; the server decides, this hides what it would refuse. */
export function can(state: SessionState, permission: string): boolean {
  if (state.status !== 'signed-in') return false;
  return state.user.permissions.some((held) => grants(held, permission));
}
