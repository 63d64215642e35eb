/** The runs' server state: one place for their query keys and calls. */
import { api, data, type Schemas } from '../api/client';

export const runKeys = {
  list: (status: string) => ['runs', 'list', status] as const,
  one: (id: string) => ['runs', 'one', id] as const,
};

/** When the listed runs were created: RFC 3339 bounds, `until` excluded. */
export interface CreatedWindow {
  since?: string;
  until?: string;
}

export function listRuns(status: string, pageSize = 50, chainId = '', window: CreatedWindow = {}) {
  return data(
    api.GET('/api/chains/runs', {
      params: {
        query: {
          page_size: pageSize,
          ...(status ? { status } : {}),
          ...(chainId ? { chain_id: chainId } : {}),
          ...(window.since ? { since: window.since } : {}),
          ...(window.until ? { until: window.until } : {}),
        },
      },
    }),
  );
}

export function getRun(id: string) {
  return data(api.GET('/api/chains/runs/{id}', { params: { path: { id } } }));
}

export const chainKeys = { all: ['chains', 'all'] as const };

export function listChains() {
  return data(api.GET('/api/chains', { params: { query: { page_size: 200 } } }));
}

/** Starts a run of a template (by name), a stored chain (by id) or an inline definition. */
export function startRun(
  chain: { template?: string; chainId?: string; definition?: Schemas['ChainDefinition'] | undefined },
  input: Record<string, unknown>,
) {
  return data(
    api.POST('/api/chains/execute', {
      body: {
        input,
        ...(chain.template ? { template: chain.template } : {}),
        ...(chain.chainId ? { chain_id: chain.chainId } : {}),
        ...(chain.definition ? { definition: chain.definition } : {}),
      },
    }),
  );
}

export function cancelRun(id: string) {
  return data(api.POST('/api/chains/runs/{id}/cancel', { params: { path: { id } } }));
}

export function decide(id: string, step: string, approve: boolean) {
  const params = { params: { path: { id, step } }, body: {} };
  return data(
    approve
      ? api.POST('/api/chains/runs/{id}/steps/{step}/approve', params)
      : api.POST('/api/chains/runs/{id}/steps/{step}/reject', params),
  );
}
