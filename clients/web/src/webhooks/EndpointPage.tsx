/**
 * One endpoint: its settings (edited in place), enable and disable, a new signing secret (shown
 * once, the old one signing beside it for the overlap chosen), delete; and its delivery log,
 * newest first, followed while a delivery is pending: a row opens the request as sent (body,
 * headers of each attempt) and what came back. Replay of one delivery or of all since a time,
 * and a test event, sent whatever the endpoint's event types.
 */
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useNavigate, useParams } from 'react-router';

import { can, useSession } from '../auth/session';
import { instant } from '../runs/window';
import { ConfirmButton } from '../ui/Confirm';
import { Empty, Loading, PageHeader, ProblemMessage, StatusBadge } from '../ui/states';
import { ago, duration } from '../ui/time';
import { outcomeOf, prettyBody } from './endpoints';
import { EndpointForm, type EndpointFields } from './EndpointForm';
import {
  type Delivery,
  type DeliveryStatus,
  type Endpoint,
  deleteEndpoint,
  getDelivery,
  getEndpoint,
  listDeliveries,
  replay,
  rotateSecret,
  sendTest,
  updateEndpoint,
  webhookKeys,
} from './queries';
import { Secret } from './Secret';

/** How often the log is fetched again while a delivery in it is pending. */
const FOLLOW_MS = 1_000;

const OVERLAPS = [
  { seconds: 0, label: 'none: the old secret stops now' },
  { seconds: 3_600, label: '1 hour' },
  { seconds: 86_400, label: '1 day' },
  { seconds: 604_800, label: '1 week' },
];

const STATUSES: { value: DeliveryStatus | ''; label: string }[] = [
  { value: '', label: 'Any' },
  { value: 'pending', label: 'Pending' },
  { value: 'delivered', label: 'Delivered' },
  { value: 'failed', label: 'Failed' },
];

function isStatus(value: string): value is DeliveryStatus | '' {
  return STATUSES.some((status) => status.value === value);
}

function Settings({ endpoint }: { endpoint: Endpoint }) {
  return (
    <dl className="card grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
      <dt className="font-medium">State</dt>
      <dd>{endpoint.enabled ? 'enabled' : `disabled${endpoint.disabled_reason ? ` (${endpoint.disabled_reason})` : ''}`}</dd>
      <dt className="font-medium">Delivery</dt>
      <dd>{endpoint.ordered ? 'ordered, one at a time' : 'concurrent'}</dd>
      <dt className="font-medium">Event types</dt>
      <dd className="font-mono">{endpoint.event_types.join(', ')}</dd>
      {endpoint.description && (
        <>
          <dt className="font-medium">Description</dt>
          <dd>{endpoint.description}</dd>
        </>
      )}
      {endpoint.failing_since && (
        <>
          <dt className="font-medium">Failing since</dt>
          <dd>{new Date(endpoint.failing_since).toLocaleString()}</dd>
        </>
      )}
      {endpoint.previous_secret_expires_at && (
        <>
          <dt className="font-medium">Previous secret signs until</dt>
          <dd>{new Date(endpoint.previous_secret_expires_at).toLocaleString()}</dd>
        </>
      )}
    </dl>
  );
}

function Actions({ endpoint }: { endpoint: Endpoint }) {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const [editing, setEditing] = useState(false);
  const [overlap, setOverlap] = useState(0);
  const refresh = () => queryClient.invalidateQueries({ queryKey: ['webhooks'] });
  const update = useMutation({
    mutationFn: (body: Partial<EndpointFields> & { enabled?: boolean }) => updateEndpoint(endpoint.id, body),
    onSuccess: (_, body) => {
      if (body.enabled === undefined) setEditing(false);
      void refresh();
    },
  });
  const rotate = useMutation({ mutationFn: () => rotateSecret(endpoint.id, overlap), onSuccess: refresh });
  const test = useMutation({ mutationFn: () => sendTest(endpoint.id), onSuccess: refresh });
  const remove = useMutation({
    mutationFn: () => deleteEndpoint(endpoint.id),
    onSuccess: () => {
      void navigate('/webhooks');
      // Gone: not fetched again (a 404) on the way out.
      queryClient.removeQueries({ queryKey: webhookKeys.endpoint(endpoint.id) });
      void queryClient.invalidateQueries({ queryKey: webhookKeys.endpoints, exact: true });
    },
  });
  return (
    <section aria-labelledby="actions" className="card space-y-3">
      <h2 id="actions" className="font-semibold">Actions</h2>
      <div className="flex flex-wrap gap-2">
        <button type="button" className="btn-primary" disabled={test.isPending} onClick={() => test.mutate()}>Send test event</button>
        <button type="button" className="btn-secondary" disabled={update.isPending}
          onClick={() => update.mutate({ enabled: !endpoint.enabled })}>
          {endpoint.enabled ? 'Disable' : 'Enable'}
        </button>
        <button type="button" className="btn-secondary" aria-expanded={editing} onClick={() => setEditing(!editing)}>
          Edit endpoint
        </button>
        <ConfirmButton label="Delete endpoint…" title="Delete this endpoint?" act="Delete endpoint" disabled={remove.isPending}
          onConfirm={() => remove.mutate()}>
          Its secrets and delivery log go with it, and nothing more is sent to <span className="break-all font-mono">{endpoint.url}</span>.
        </ConfirmButton>
      </div>
      {test.isSuccess && <p role="status" className="text-sm">Test event sent: it shows in the log below.</p>}
      <ProblemMessage error={test.error ?? remove.error ?? (editing ? null : update.error)} />
      {editing && (
        <EndpointForm title="Edit endpoint" initial={endpoint} submit="Save changes" pending={update.isPending} error={update.error}
          onSubmit={(fields) => update.mutate(fields)} />
      )}
      <div className="flex flex-wrap items-end gap-2">
        <div>
          <label className="label" htmlFor="rotate-overlap">Old secret keeps signing for</label>
          <select id="rotate-overlap" className="input" value={overlap} onChange={(event) => setOverlap(Number(event.target.value))}>
            {OVERLAPS.map((choice) => <option key={choice.seconds} value={choice.seconds}>{choice.label}</option>)}
          </select>
        </div>
        <button type="button" className="btn-secondary" disabled={rotate.isPending} onClick={() => rotate.mutate()}>Rotate secret</button>
      </div>
      <ProblemMessage error={rotate.error} />
      {rotate.data && <Secret secret={rotate.data.secret} />}
    </section>
  );
}

function DeliveryDetail({ endpoint, delivery, canWrite, onClose }: {
  endpoint: string;
  delivery: string;
  canWrite: boolean;
  onClose: () => void;
}) {
  const queryClient = useQueryClient();
  const detail = useQuery({
    queryKey: webhookKeys.delivery(endpoint, delivery),
    queryFn: () => getDelivery(endpoint, delivery),
    refetchInterval: (query) => (query.state.data?.delivery.status === 'pending' ? FOLLOW_MS : false),
  });
  const again = useMutation({
    mutationFn: () => replay(endpoint, { delivery_id: delivery }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: webhookKeys.endpoint(endpoint) }),
  });
  return (
    <section aria-labelledby="delivery-title" className="card space-y-3">
      <div className="flex flex-wrap items-center gap-2">
        <h3 id="delivery-title" className="font-semibold">Delivery {detail.data?.delivery.message_id ?? delivery}</h3>
        <div className="ml-auto flex gap-2">
          {canWrite && (
            <button type="button" className="btn-secondary" disabled={again.isPending} onClick={() => again.mutate()}>Replay this delivery</button>
          )}
          <button type="button" className="btn-secondary" onClick={onClose}>Close</button>
        </div>
      </div>
      {again.isSuccess && <p role="status" className="text-sm">Sent again: its next attempt shows below.</p>}
      <ProblemMessage error={again.error} />
      {detail.isPending && <Loading label="Loading the delivery" />}
      {detail.error && <ProblemMessage error={detail.error} />}
      {detail.data && (
        <>
          <p className="text-sm">
            <StatusBadge status={detail.data.delivery.status} /> {detail.data.delivery.event_type} · {detail.data.delivery.attempts} {detail.data.delivery.attempts === 1 ? 'attempt' : 'attempts'}
          </p>
          <div>
            <h4 className="label">Body sent</h4>
            <pre aria-label="Body sent" tabIndex={0} className="max-h-64 overflow-auto rounded bg-slate-100 p-2 font-mono text-xs dark:bg-slate-800">
              {prettyBody(detail.data.body)}
            </pre>
          </div>
          <ol aria-label="Attempts" className="space-y-3">
            {detail.data.attempts.map((attempt) => (
              <li key={attempt.attempt} aria-label={`Attempt ${attempt.attempt}`} className="rounded border border-slate-200 p-2 text-sm dark:border-slate-700">
                <p className="font-medium">
                  Attempt {attempt.attempt}: {attempt.status_code != null ? `HTTP ${attempt.status_code}` : (attempt.error ?? 'no response')} ·{' '}
                  {duration(attempt.latency_ms)} · {attempt.started_at ? new Date(attempt.started_at).toLocaleString() : '—'}
                </p>
                <p className="muted break-all font-mono text-xs">POST {attempt.url}</p>
                <dl className="mt-1 grid grid-cols-[max-content_1fr] gap-x-3 font-mono text-xs">
                  {Object.entries(attempt.request_headers).map(([name, value]) => (
                    <div key={name} className="contents">
                      <dt>{name}</dt>
                      <dd className="break-all">{value}</dd>
                    </div>
                  ))}
                </dl>
                {attempt.error && attempt.status_code != null && <p className="mt-1 text-red-700 dark:text-red-300">{attempt.error}</p>}
                <h4 className="mt-2 text-xs font-medium">Response body (its start)</h4>
                <pre aria-label={`Response body of attempt ${attempt.attempt}`} tabIndex={0}
                  className="max-h-40 overflow-auto rounded bg-slate-100 p-2 font-mono text-xs dark:bg-slate-800">
                  {attempt.response_body || '(empty)'}
                </pre>
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}

function ReplaySince({ endpoint }: { endpoint: string }) {
  const queryClient = useQueryClient();
  const [from, setFrom] = useState('');
  const since = instant(from);
  const again = useMutation({
    mutationFn: (at: string) => replay(endpoint, { since: at }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: webhookKeys.endpoint(endpoint) }),
  });
  return (
    <div className="space-y-2">
      <div className="flex flex-wrap items-end gap-2">
        <div>
          <label className="label" htmlFor="replay-since">Replay everything since (local time)</label>
          <input id="replay-since" type="datetime-local" step={1} className="input" value={from} onChange={(event) => setFrom(event.target.value)} />
        </div>
        <button type="button" className="btn-secondary" disabled={!since || again.isPending} onClick={() => since && again.mutate(since)}>
          Replay since
        </button>
      </div>
      {again.data && <p role="status" className="text-sm">{again.data.replayed} {again.data.replayed === 1 ? 'delivery' : 'deliveries'} sent again.</p>}
      <ProblemMessage error={again.error} />
    </div>
  );
}

function Deliveries({ endpoint, canWrite }: { endpoint: string; canWrite: boolean }) {
  const [status, setStatus] = useState<DeliveryStatus | ''>('');
  const [open, setOpen] = useState<string | null>(null);
  const deliveries = useInfiniteQuery({
    queryKey: webhookKeys.deliveries(endpoint, status),
    queryFn: ({ pageParam }) => listDeliveries(endpoint, status, pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (page) => page.next_page_token ?? undefined,
    refetchInterval: (query) =>
      query.state.data?.pages.some((page) => page.deliveries.some((delivery) => delivery.status === 'pending')) ? FOLLOW_MS : false,
  });
  const all: Delivery[] = deliveries.data?.pages.flatMap((page) => page.deliveries) ?? [];
  return (
    <section aria-labelledby="deliveries" className="space-y-3">
      <h2 id="deliveries" className="text-lg font-semibold">Delivery log</h2>
      <div className="flex flex-wrap items-end gap-4">
        <div>
          <label className="label" htmlFor="delivery-status">Status</label>
          <select id="delivery-status" className="input" value={status}
            onChange={(event) => { if (isStatus(event.target.value)) setStatus(event.target.value); }}>
            {STATUSES.map((choice) => <option key={choice.value} value={choice.value}>{choice.label}</option>)}
          </select>
        </div>
        {canWrite && <ReplaySince endpoint={endpoint} />}
      </div>
      {open && <DeliveryDetail key={open} endpoint={endpoint} delivery={open} canWrite={canWrite} onClose={() => setOpen(null)} />}
      {deliveries.isPending && <Loading label="Loading deliveries" />}
      {deliveries.error && <ProblemMessage error={deliveries.error} />}
      {deliveries.data && all.length === 0 && <Empty title="No deliveries">Send a test event to see one here.</Empty>}
      {all.length > 0 && (
        <div className="card overflow-x-auto p-0">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Deliveries, newest first</caption>
            <thead className="border-b border-slate-200 dark:border-slate-700">
              <tr>
                <th scope="col" className="px-4 py-2">Event</th>
                <th scope="col" className="px-4 py-2">Status</th>
                <th scope="col" className="px-4 py-2">Response</th>
                <th scope="col" className="px-4 py-2">Latency</th>
                <th scope="col" className="px-4 py-2">Attempts</th>
                <th scope="col" className="px-4 py-2">Time</th>
              </tr>
            </thead>
            <tbody>
              {all.map((delivery) => (
                <tr key={delivery.id} data-status={delivery.status}
                  className={`border-b border-slate-100 last:border-0 dark:border-slate-800 ${delivery.id === open ? 'bg-indigo-50 dark:bg-indigo-950' : ''}`}>
                  <td className="px-4 py-2">
                    <button type="button" className="link font-mono text-xs" onClick={() => setOpen(delivery.id)}>{delivery.event_type}</button>
                  </td>
                  <td className="px-4 py-2"><StatusBadge status={delivery.status} /></td>
                  <td className="px-4 py-2">{outcomeOf(delivery)}</td>
                  <td className="px-4 py-2">{delivery.attempts === 0 ? '—' : duration(delivery.last_latency_ms)}</td>
                  <td className="px-4 py-2">{delivery.attempts}</td>
                  <td className="px-4 py-2">{ago(delivery.updated_at ?? delivery.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {deliveries.hasNextPage && (
        <button type="button" className="btn-secondary" disabled={deliveries.isFetchingNextPage} onClick={() => void deliveries.fetchNextPage()}>
          More deliveries
        </button>
      )}
    </section>
  );
}

export function EndpointPage() {
  const { id = '' } = useParams();
  const state = useSession();
  const canWrite = can(state, 'webhooks:write');
  const endpoint = useQuery({ queryKey: webhookKeys.endpoint(id), queryFn: () => getEndpoint(id) });
  if (endpoint.isPending) return <Loading label="Loading the endpoint" />;
  if (endpoint.error) return <ProblemMessage error={endpoint.error} />;
  return (
    <>
      <PageHeader title={endpoint.data.url} />
      <div className="grid grid-cols-1 gap-6 lg:grid-cols-3">
        <div className="space-y-4">
          <Settings endpoint={endpoint.data} />
          {canWrite && <Actions endpoint={endpoint.data} />}
        </div>
        <div className="lg:col-span-2">
          <Deliveries endpoint={id} canWrite={canWrite} />
        </div>
      </div>
    </>
  );
}
