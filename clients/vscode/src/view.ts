// The Sankalpa view's tree, as data: agents by category, chains (stored and templates) and the
// recent runs, with the words and icons each item shows. The editor layer only maps these
// nodes to tree items.
import type { Agent, Chain, ChainRun, Principal, Status, Tenant } from './api';

/** Runs listed under "Recent runs". */
export const RECENT_RUNS = 20;
export const LIVE_STATUSES = ['pending', 'running', 'waiting'];

export type Node =
  | { kind: 'group'; id: string; label: string; children: Node[] }
  | { kind: 'agent'; id: string; label: string; agent: Agent }
  | { kind: 'chain'; id: string; label: string; chain: Chain }
  | { kind: 'run'; id: string; label: string; run: ChainRun };

export interface ViewData {
  agents: Agent[];
  chains: Chain[];
  runs: ChainRun[];
}

export function tree(data: ViewData): Node[] {
  const categories = new Map<string, Agent[]>();
  for (const agent of data.agents) {
    categories.set(agent.category, [...(categories.get(agent.category) ?? []), agent]);
  }
  const agents: Node[] = [...categories.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([category, list]) => ({
      kind: 'group',
      id: `agents/${category}`,
      label: category,
      children: list.map((agent) => ({ kind: 'agent', id: `agent/${agent.name}`, label: agent.name, agent })),
    }));
  const chainGroup = (origin: string, label: string): Node => ({
    kind: 'group',
    id: `chains/${origin}`,
    label,
    children: data.chains
      .filter((chain) => chain.origin === origin)
      .map((chain) => ({ kind: 'chain', id: `chain/${origin}/${chain.id ?? chain.name}`, label: chain.name, chain })),
  });
  return [
    { kind: 'group', id: 'agents', label: 'Agents', children: agents },
    {
      kind: 'group',
      id: 'chains',
      label: 'Chains',
      children: [chainGroup('tenant', 'Stored'), chainGroup('template', 'Templates')],
    },
    {
      kind: 'group',
      id: 'runs',
      label: 'Recent runs',
      children: data.runs.map((run) => ({ kind: 'run', id: `run/${run.id}`, label: runLabel(run), run })),
    },
  ];
}

export function runLabel(run: ChainRun): string {
  return `${run.chain_name} — ${run.status}${run.cancel_requested && isLive(run) ? ' (cancelling)' : ''}`;
}

export function isLive(run: ChainRun): boolean {
  return LIVE_STATUSES.includes(run.status);
}

/** The product icon (codicon) of a run's status. */
export function runIcon(run: ChainRun): string {
  const icons: Record<string, string> = {
    pending: 'clock',
    running: 'sync~spin',
    waiting: 'person',
    completed: 'pass',
    failed: 'error',
    cancelled: 'circle-slash',
  };
  return icons[run.status] ?? 'circle-outline';
}

/**
 * What the status bar item says: the fleet's health and who is signed in, by the tenant's name
 * when it could be read.
 */
export function statusText(
  status: Status | undefined,
  principal: Principal | undefined,
  tenant?: Tenant,
): { text: string; tooltip: string } {
  const health = status === undefined ? '$(debug-disconnect)' : status.status === 'ok' ? '$(pass)' : '$(warning)';
  const who = principal ? (tenant?.name ?? `tenant ${principal.tenant_id.slice(0, 8)}`) : 'signed out';
  const services = status?.services.map((s) => `${s.name}: ${s.status}`).join('\n') ?? 'gateway unreachable';
  const tooltip = principal
    ? `${services}\n\nSigned in as ${principal.kind} ${principal.id}\nTenant ${principal.tenant_id}`
    : `${services}\n\nNot signed in`;
  return { text: `${health} Sankalpa: ${who}`, tooltip };
}
