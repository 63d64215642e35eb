/** The chat's server state: conversations listed and read through the typed client. */
import { api, data } from '../api/client';

export const chatKeys = {
  all: ['chat'] as const,
  list: () => ['chat', 'list'] as const,
  one: (id: string) => ['chat', 'one', id] as const,
};

/** The newest conversations: the sidebar shows a page of them. */
export function listConversations() {
  return data(api.GET('/api/chat/conversations', { params: { query: { page_size: 50 } } }));
}

export function getConversation(id: string) {
  return data(api.GET('/api/chat/conversations/{id}', { params: { path: { id } } }));
}

export function createConversation() {
  return data(api.POST('/api/chat/conversations', { body: {} }));
}

export async function deleteConversation(id: string) {
  const { error, response } = await api.DELETE('/api/chat/conversations/{id}', { params: { path: { id } } });
  if (error !== undefined || !response.ok) await data(Promise.resolve({ error, response }));
}

export function linkRun(id: string, messageId: string, runId: string) {
  return data(
    api.PUT('/api/chat/conversations/{id}/messages/{message_id}/run', {
      params: { path: { id, message_id: messageId } },
      body: { run_id: runId },
    }),
  );
}
