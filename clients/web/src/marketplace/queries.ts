/** The marketplace's server state. */
import { api, data, type Schemas } from '../api/client';

export type Item = Schemas['Item'];
export type SearchSort = Schemas['SearchSort'];
export type ItemKind = Schemas['ItemKind'];

export const marketKeys = {
  search: (q: string, kind: string, sort: string) => ['market', 'search', q, kind, sort] as const,
  item: (id: string) => ['market', 'item', id] as const,
  versions: (id: string) => ['market', 'versions', id] as const,
  reviews: (id: string) => ['market', 'reviews', id] as const,
};

export function search(q: string, kind: string, sort: string) {
  return data(
    api.GET('/api/marketplace', {
      params: {
        query: {
          page_size: 50,
          ...(q ? { q } : {}),
          ...(kind ? { kind: kind as ItemKind } : {}),
          ...(sort ? { sort: sort as SearchSort } : {}),
        },
      },
    }),
  );
}

export function getItem(id: string) {
  return data(api.GET('/api/marketplace/items/{id}', { params: { path: { id } } }));
}

export function listVersions(id: string) {
  return data(api.GET('/api/marketplace/items/{id}/versions', { params: { path: { id } } }));
}

export function listReviews(id: string) {
  return data(api.GET('/api/marketplace/items/{id}/reviews', { params: { path: { id } } }));
}

export function publish(body: Schemas['PublishItem']) {
  return data(api.POST('/api/marketplace', { body }));
}

export function install(id: string, version?: string) {
  return data(
    api.POST('/api/marketplace/items/{id}/install', {
      params: { path: { id } },
      body: version ? { version } : {},
    }),
  );
}

export function review(id: string, rating: number, comment: string) {
  return data(
    api.POST('/api/marketplace/items/{id}/reviews', { params: { path: { id } }, body: { rating, comment } }),
  );
}

export function yank(id: string, version: string, reason: string) {
  return data(
    api.POST('/api/marketplace/items/{id}/versions/{version}/yank', {
      params: { path: { id, version } },
      body: { reason },
    }),
  );
}
