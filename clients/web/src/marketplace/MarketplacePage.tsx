/** The marketplace: search with filters and sorts, and publishing a new item. */
import { useQuery } from '@tanstack/react-query';
import { useDeferredValue, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';

import { can, useSession } from '../auth/session';
import { Empty, Loading, PageHeader, ProblemMessage } from '../ui/states';
import { PublishForm } from './PublishForm';
import { marketKeys, search } from './queries';

const SORTS = [
  { value: '', label: 'Best match / newest' },
  { value: 'downloads', label: 'Most installed' },
  { value: 'rating', label: 'Best rated' },
  { value: 'newest', label: 'Newest' },
];

export function Stars({ average, count }: { average: number; count: number }) {
  return (
    <span className="text-sm" title={`${average.toFixed(1)} of 5 from ${count} reviews`}>
      <span aria-hidden="true" className="text-amber-700 dark:text-amber-300">★</span> {count > 0 ? average.toFixed(1) : '—'}
      <span className="muted"> ({count})</span>
    </span>
  );
}

export function MarketplacePage() {
  const state = useSession();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const [publishing, setPublishing] = useState(false);
  const q = useDeferredValue(params.get('q') ?? '');
  const kind = params.get('kind') ?? '';
  const sort = params.get('sort') ?? '';
  const results = useQuery({ queryKey: marketKeys.search(q, kind, sort), queryFn: () => search(q, kind, sort) });
  const set = (name: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next, { replace: true });
  };
  return (
    <>
      <PageHeader title="Marketplace">
        {can(state, 'market:publish') && (
          <button type="button" className="btn-primary" aria-expanded={publishing} onClick={() => setPublishing(!publishing)}>
            Publish…
          </button>
        )}
      </PageHeader>
      {publishing && (
        <div className="mb-6">
          <PublishForm onPublished={(id) => navigate(`/marketplace/${id}`)} />
        </div>
      )}
      <div className="mb-6 grid grid-cols-1 gap-3 md:grid-cols-3">
        <div>
          <label className="label" htmlFor="market-q">Search</label>
          <input id="market-q" type="search" className="input" value={params.get('q') ?? ''} onChange={(event) => set('q', event.target.value)} />
        </div>
        <div>
          <label className="label" htmlFor="market-kind">Kind</label>
          <select id="market-kind" className="input" value={kind} onChange={(event) => set('kind', event.target.value)}>
            <option value="">Chains and agents</option>
            <option value="chain">Chains</option>
            <option value="agent">Agents</option>
          </select>
        </div>
        <div>
          <label className="label" htmlFor="market-sort">Sort</label>
          <select id="market-sort" className="input" value={sort} onChange={(event) => set('sort', event.target.value)}>
            {SORTS.map((option) => <option key={option.value} value={option.value}>{option.label}</option>)}
          </select>
        </div>
      </div>
      {results.isPending && <Loading label="Searching" />}
      {results.error && <ProblemMessage error={results.error} />}
      {results.data && results.data.items.length === 0 && (
        <Empty title="Nothing found">{q ? 'Try other words or filters.' : 'Nothing is published yet.'}</Empty>
      )}
      <ul aria-label="Results" className="grid grid-cols-1 gap-3 md:grid-cols-2 xl:grid-cols-3">
        {results.data?.items.map((item) => (
          <li key={item.id} className="card">
            <Link className="link font-medium" to={`/marketplace/${item.id}`}>{item.name}</Link>
            <p className="muted text-xs">{item.kind} · {item.latest_version ?? 'no version'} · by {item.author_name}</p>
            <p className="mt-1 line-clamp-2 text-sm">{item.description}</p>
            <p className="mt-2 flex items-center gap-3">
              <Stars average={item.rating_average} count={item.rating_count} />
              <span className="muted text-sm">{item.downloads} installs</span>
            </p>
          </li>
        ))}
      </ul>
    </>
  );
}
