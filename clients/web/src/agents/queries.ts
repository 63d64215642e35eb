/** The agents' server state. */
import { api, data, type Schemas } from '../api/client';

export type Agent = Schemas['Agent'];
export type AgentRun = Schemas['AgentRun'];

export const agentKeys = {
  all: ['agents', 'all'] as const,
  one: (name: string) => ['agents', 'one', name] as const,
};

/** Every agent, all pages (the catalog is a few dozen; 200 a page). */
export async function listAgents(): Promise<Agent[]> {
  const agents: Agent[] = [];
  let pageToken: string | undefined;
  do {
    const page = await data(
      api.GET('/api/agents', {
        params: { query: { page_size: 200, ...(pageToken ? { page_token: pageToken } : {}) } },
      }),
    );
    agents.push(...page.agents);
    pageToken = page.next_page_token ?? undefined;
  } while (pageToken);
  return agents;
}

export function getAgent(name: string) {
  return data(api.GET('/api/agents/{name}', { params: { path: { name } } }));
}

export function executeAgent(agent: string, input: Record<string, unknown>) {
  return data(api.POST('/api/agents/execute', { body: { agent, input, llm: 'off' } }));
}

export const CATEGORIES = [
  'builder',
  'testing',
  'deployment',
  'marketing',
  'enhanced',
  'meta',
  'orchestration',
  'custom',
] as const;
