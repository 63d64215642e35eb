// The gateway's REST API, typed with the contract's generated types (the console's
// clients/web/src/api/schema.d.ts), with the credential a user signed in with: an API key, or a
// login's token pair refreshed silently before it expires and once more on a 401. A refresh
// token works once, so concurrent requests share one refresh.
import type { components } from '../../web/src/api/schema';

export type Schemas = components['schemas'];
export type Agent = Schemas['Agent'];
export type AgentRun = Schemas['AgentRun'];
export type Chain = Schemas['Chain'];
export type ChainRun = Schemas['ChainRun'];
export type ChainDefinition = Schemas['ChainDefinition'];
export type ChainValidation = Schemas['ChainValidation'];
export type CloudEvent = Schemas['CloudEvent'];
export type ExecuteAgent = Schemas['ExecuteAgent'];
/**
 * A run request. The definition is what the user wrote (a chain file), sent as it is: the
 * gateway checks it, and the generated type would ask for every defaulted field.
 */
export type ExecuteChain = Omit<Schemas['ExecuteChain'], 'definition'> & { definition?: unknown };
export type Principal = Schemas['Principal'];
export type Problem = Schemas['Problem'];
export type Status = Schemas['Status'];
export type Tenant = Schemas['Tenant'];
export type TokenPair = Schemas['TokenPair'];

/** What a user signed in with, as kept in the editor's secret storage. */
export type Credential =
  | { kind: 'api_key'; key: string }
  | {
      kind: 'tokens';
      access: string;
      refresh: string;
      /** When the access token expires, and when to renew it (ms since the epoch). */
      expiresAt: number;
      refreshAt: number;
    };

/** Where the credential is kept (VS Code's SecretStorage in the editor, memory in tests). */
export interface CredentialStore {
  load(): Promise<Credential | undefined>;
  save(credential: Credential | undefined): Promise<void>;
}

/**
 * A refresh starts a fifth of the access token's life before it expires, at most this long
 * before (ms): early enough for a slow network, not on every call for a short-lived token.
 */
export const REFRESH_MARGIN_MS = 30_000;
/** The largest artifacts archive downloaded (bytes): a generated project is a few hundred KiB. */
export const MAX_ARCHIVE_BYTES = 64 * 1024 * 1024;
/** How long one request may take, unless it follows a stream (ms). */
export const REQUEST_TIMEOUT_MS = 120_000;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | undefined,
  ) {
    const fields = problem?.errors?.map((e) => `${e.field}: ${e.message}`).join('; ');
    super(
      [problem?.title ?? `HTTP ${status}`, problem?.detail, fields].filter(Boolean).join(': '),
    );
  }
}

export class NotSignedIn extends Error {
  constructor() {
    super('not signed in to Sankalpa: run "Sankalpa: Sign in"');
  }
}

export class MemoryStore implements CredentialStore {
  constructor(public credential?: Credential) {}
  async load() {
    return this.credential;
  }
  async save(credential: Credential | undefined) {
    this.credential = credential;
  }
}

interface Options {
  body?: unknown;
  signal?: AbortSignal;
  /** Sent without a credential (sign-in, refresh, status). */
  anonymous?: boolean;
  accept?: string;
}

export class Client {
  private refreshing: Promise<Credential> | undefined;

  constructor(
    readonly baseUrl: string,
    private readonly store: CredentialStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** The response of a request, its credential refreshed first when it is about to expire. */
  async fetch(method: string, path: string, options: Options = {}): Promise<Response> {
    const credential = options.anonymous ? undefined : await this.current();
    let response = await this.send(method, path, options, credential);
    if (response.status === 401 && credential?.kind === 'tokens') {
      // Expired early or revoked and renewed elsewhere: one refresh, one retry.
      await response.body?.cancel();
      response = await this.send(method, path, options, await this.refresh(credential));
    }
    if (!response.ok) throw await problemOf(response);
    return response;
  }

  async json<T>(method: string, path: string, options: Options = {}): Promise<T> {
    return (await this.fetch(method, path, options)).json() as Promise<T>;
  }

  async signIn(email: string, password: string): Promise<Principal> {
    const pair = await this.json<TokenPair>('POST', '/api/users/login', {
      body: { email, password },
      anonymous: true,
    });
    await this.store.save(this.tokens(pair));
    return this.principal();
  }

  /** Keeps the key only once the gateway has accepted it. */
  async useApiKey(key: string): Promise<Principal> {
    const response = await this.send('GET', '/api/principal', {}, { kind: 'api_key', key });
    if (!response.ok) throw await problemOf(response);
    await this.store.save({ kind: 'api_key', key });
    return (await response.json()) as Principal;
  }

  /** Logs a login out (its refresh token revoked); forgets the credential either way. */
  async signOut(): Promise<void> {
    const credential = await this.store.load();
    await this.store.save(undefined);
    if (credential?.kind === 'tokens') {
      await this.send('POST', '/api/users/logout', { body: { refresh_token: credential.refresh } }, credential)
        .then((response) => response.body?.cancel())
        .catch(() => undefined);
    }
  }

  principal = () => this.json<Principal>('GET', '/api/principal');
  status = () => this.json<Status>('GET', '/api/status', { anonymous: true });
  tenant = (id: string) => this.json<Tenant>('GET', `/api/tenants/${encodeURIComponent(id)}`);

  async agents(): Promise<Agent[]> {
    return this.pages<Agent>('/api/agents?page_size=200', 'agents');
  }
  agent = (name: string) => this.json<Agent>('GET', `/api/agents/${encodeURIComponent(name)}`);
  executeAgent = (body: ExecuteAgent, signal?: AbortSignal) =>
    this.json<AgentRun>('POST', '/api/agents/execute', { body, signal });

  chains = () => this.pages<Chain>('/api/chains?page_size=200', 'chains');
  executeChain = (body: ExecuteChain) =>
    this.json<ChainRun>('POST', '/api/chains/execute', { body });
  async runs(limit: number): Promise<ChainRun[]> {
    const page = await this.json<{ runs: ChainRun[] }>('GET', `/api/chains/runs?page_size=${limit}`);
    return page.runs;
  }
  run = (id: string) => this.json<ChainRun>('GET', `/api/chains/runs/${encodeURIComponent(id)}`);
  cancel = (id: string) =>
    this.json<ChainRun>('POST', `/api/chains/runs/${encodeURIComponent(id)}/cancel`);
  decide = (id: string, step: string, decision: 'approve' | 'reject', comment?: string) =>
    this.json<ChainRun>(
      'POST',
      `/api/chains/runs/${encodeURIComponent(id)}/steps/${encodeURIComponent(step)}/${decision}`,
      { body: comment === undefined ? null : { comment } },
    );
  validateChain = (definition: unknown) =>
    this.json<ChainValidation>('POST', '/api/chains/validate', { body: { definition } });

  /** A run's files as the gateway sends them (a .tar.gz), refused past MAX_ARCHIVE_BYTES. */
  async artifacts(runId: string): Promise<Uint8Array> {
    const response = await this.fetch('GET', `/api/artifacts/${encodeURIComponent(runId)}`);
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of response.body ?? []) {
      size += chunk.length;
      if (size > MAX_ARCHIVE_BYTES) {
        await response.body?.cancel();
        throw new Error(`the artifacts of ${runId} are larger than ${MAX_ARCHIVE_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  /** Every page of a listing (`next_page_token`), at most 20 pages of 200. */
  private async pages<T>(path: string, field: string): Promise<T[]> {
    const items: T[] = [];
    let token: string | null | undefined;
    for (let page = 0; page < 20; page++) {
      const url = token ? `${path}&page_token=${encodeURIComponent(token)}` : path;
      const body = await this.json<Record<string, unknown>>('GET', url);
      items.push(...((body[field] as T[] | undefined) ?? []));
      token = body.next_page_token as string | null | undefined;
      if (!token) break;
    }
    return items;
  }

  private async current(): Promise<Credential> {
    const credential = await this.store.load();
    if (!credential) throw new NotSignedIn();
    if (credential.kind === 'tokens' && this.now() >= credential.refreshAt) {
      return this.refresh(credential);
    }
    return credential;
  }

  private refresh(stale: Credential & { kind: 'tokens' }): Promise<Credential> {
    this.refreshing ??= (async () => {
      try {
        const kept = await this.store.load();
        // Another request refreshed while this one waited: its pair is the one to use.
        if (kept?.kind === 'tokens' && kept.refresh !== stale.refresh) return kept;
        const response = await this.send('POST', '/api/users/refresh', {
          body: { refresh_token: stale.refresh },
        });
        if (response.status === 401) {
          await this.store.save(undefined);
          throw new NotSignedIn();
        }
        if (!response.ok) throw await problemOf(response);
        const fresh = this.tokens((await response.json()) as TokenPair);
        await this.store.save(fresh);
        return fresh;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private tokens(pair: TokenPair): Credential {
    const life = pair.expires_in * 1000;
    return {
      kind: 'tokens',
      access: pair.access_token,
      refresh: pair.refresh_token,
      expiresAt: this.now() + life,
      refreshAt: this.now() + life - Math.min(REFRESH_MARGIN_MS, life / 5),
    };
  }

  private send(
    method: string,
    path: string,
    options: Options,
    credential?: Credential,
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: options.accept ?? 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (credential?.kind === 'api_key') headers['x-api-key'] = credential.key;
    if (credential?.kind === 'tokens') headers.authorization = `Bearer ${credential.access}`;
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    return fetch(new URL(path, this.baseUrl), {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      // A followed stream ends when its caller says so, not after a timeout.
      signal: options.accept === 'text/event-stream'
        ? options.signal
        : options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
    });
  }
}

async function problemOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => '');
  let problem: Problem | undefined;
  try {
    problem = JSON.parse(text) as Problem;
  } catch {
    problem = { type: 'about:blank', title: text.slice(0, 200) || response.statusText, status: response.status };
  }
  return new ApiError(response.status, problem);
}
