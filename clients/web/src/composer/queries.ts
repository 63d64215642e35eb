/** The composer's server state: a chain or template to start from (a stored chain at a version), validation, saving. */
import { api, data, type Schemas } from '../api/client';
import type { Json } from './graph';

export const composerKeys = {
  chain: (key: string, version?: number) => ['composer', 'chain', key, version ?? 'latest'] as const,
  validation: (definition: string) => ['composer', 'validation', definition] as const,
};

/** A stored chain by id (its latest version, or `version`), or a template by name. */
export function getChain(idOrName: string, version?: number) {
  return data(
    api.GET('/api/chains/{id}', {
      params: { path: { id: idOrName }, query: version !== undefined ? { version } : {} },
    }),
  );
}

export function validate(definition: Json) {
  return data(api.POST('/api/chains/validate', { body: { definition } }));
}

// The definition is checked by the orchestrator; the contract's type is the DAG form's.
function asDefinition(definition: Json): Schemas['ChainDefinition'] {
  return definition as Schemas['ChainDefinition'];
}

export function createChain(name: string, definition: Json) {
  return data(api.POST('/api/chains', { body: { name, definition: asDefinition(definition) } }));
}

export function saveVersion(id: string, definition: Json, expectedVersion: number) {
  return data(
    api.PUT('/api/chains/{id}', {
      params: { path: { id } },
      body: { definition: asDefinition(definition), expected_version: expectedVersion },
    }),
  );
}
