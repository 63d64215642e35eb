/** Webhooks' server state: the tenant's endpoints, an endpoint's deliveries and one delivery, inbound triggers. */
import { api, data, type Schemas } from '../api/client';

export type Endpoint = Schemas['WebhookEndpoint'];
export type Delivery = Schemas['Delivery'];
export type DeliveryStatus = Schemas['DeliveryStatus'];

export const webhookKeys = {
  endpoints: ['webhooks', 'endpoints'] as const,
  endpoint: (id: string) => ['webhooks', 'endpoints', id] as const,
  deliveries: (id: string, status: string) => ['webhooks', 'endpoints', id, 'deliveries', status] as const,
  delivery: (id: string, delivery: string) => ['webhooks', 'endpoints', id, 'delivery', delivery] as const,
};

export const PAGE_SIZE = 50;

export function listEndpoints(pageToken?: string) {
  return data(
    api.GET('/api/webhooks/endpoints', {
      params: { query: { page_size: PAGE_SIZE, ...(pageToken ? { page_token: pageToken } : {}) } },
    }),
  );
}

export function getEndpoint(id: string) {
  return data(api.GET('/api/webhooks/endpoints/{id}', { params: { path: { id } } }));
}

export function createEndpoint(body: Schemas['CreateEndpoint']) {
  return data(api.POST('/api/webhooks/endpoints', { body }));
}

export function updateEndpoint(id: string, body: Schemas['UpdateEndpoint']) {
  return data(api.PATCH('/api/webhooks/endpoints/{id}', { params: { path: { id } }, body }));
}

export function deleteEndpoint(id: string) {
  return data(api.DELETE('/api/webhooks/endpoints/{id}', { params: { path: { id } } }));
}

export function rotateSecret(id: string, overlapSeconds: number) {
  return data(
    api.POST('/api/webhooks/endpoints/{id}/rotate-secret', {
      params: { path: { id } },
      body: { overlap_seconds: overlapSeconds },
    }),
  );
}

export function sendTest(id: string) {
  return data(api.POST('/api/webhooks/endpoints/{id}/test', { params: { path: { id } } }));
}

export function replay(id: string, what: Schemas['Replay']) {
  return data(api.POST('/api/webhooks/endpoints/{id}/replay', { params: { path: { id } }, body: what }));
}

export function listDeliveries(id: string, status: DeliveryStatus | '', pageToken?: string) {
  return data(
    api.GET('/api/webhooks/endpoints/{id}/deliveries', {
      params: {
        path: { id },
        query: {
          page_size: PAGE_SIZE,
          ...(status ? { status } : {}),
          ...(pageToken ? { page_token: pageToken } : {}),
        },
      },
    }),
  );
}

export function getDelivery(id: string, delivery: string) {
  return data(
    api.GET('/api/webhooks/endpoints/{id}/deliveries/{delivery_id}', {
      params: { path: { id, delivery_id: delivery } },
    }),
  );
}

export type Trigger = Schemas['InboundTrigger'];
export type CreateTrigger = Schemas['CreateInboundTrigger'];

export const triggerKeys = { all: ['webhooks', 'triggers'] as const };

export function listTriggers(pageToken?: string) {
  return data(
    api.GET('/api/webhooks/triggers', {
      params: { query: { page_size: PAGE_SIZE, ...(pageToken ? { page_token: pageToken } : {}) } },
    }),
  );
}

export function createTrigger(body: CreateTrigger) {
  return data(api.POST('/api/webhooks/triggers', { body }));
}

/** Enables or disables a trigger (a disabled one's URL answers 404), or renames it. */
export function updateTrigger(id: string, body: Schemas['UpdateInboundTrigger']) {
  return data(api.PATCH('/api/webhooks/triggers/{id}', { params: { path: { id } }, body }));
}

export function deleteTrigger(id: string) {
  return data(api.DELETE('/api/webhooks/triggers/{id}', { params: { path: { id } } }));
}
