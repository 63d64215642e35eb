/**
 * One marketplace item: its README, versions (SHA-256, size, yanked), installing it into the
 * tenant, reviews with ratings; and for its publisher a new version and yanking.
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { Link, useParams } from 'react-router';

import { can, useSession } from '../auth/session';
import { Markdown } from '../ui/Markdown';
import { Loading, PageHeader, ProblemMessage } from '../ui/states';
import { ago } from '../ui/time';
import { Stars } from './MarketplacePage';
import { PublishForm } from './PublishForm';
import { getItem, install, listReviews, listVersions, marketKeys, review, yank } from './queries';

function Reviews({ id, canReview }: { id: string; canReview: boolean }) {
  const queryClient = useQueryClient();
  const reviews = useQuery({ queryKey: marketKeys.reviews(id), queryFn: () => listReviews(id) });
  const post = useMutation({
    mutationFn: ({ rating, comment }: { rating: number; comment: string }) => review(id, rating, comment),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['market'] }),
  });
  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    post.mutate({ rating: Number(form.get('rating')), comment: String(form.get('comment') ?? '') });
  }
  return (
    <section aria-labelledby="reviews" className="card space-y-3">
      <h2 id="reviews" className="font-semibold">Reviews</h2>
      {canReview && (
        <form onSubmit={submit} aria-label="Your review" className="space-y-2">
          <div className="max-w-40">
            <label className="label" htmlFor="review-rating">Rating</label>
            <select id="review-rating" name="rating" className="input" defaultValue="5">
              {[5, 4, 3, 2, 1].map((stars) => <option key={stars} value={stars}>{stars} of 5</option>)}
            </select>
          </div>
          <div>
            <label className="label" htmlFor="review-comment">Comment</label>
            <textarea id="review-comment" name="comment" className="input min-h-16" maxLength={4000} />
          </div>
          <ProblemMessage error={post.error} />
          <button type="submit" className="btn-secondary" disabled={post.isPending}>Post review</button>
        </form>
      )}
      {reviews.isPending && <Loading label="Loading reviews" />}
      {reviews.error && <ProblemMessage error={reviews.error} />}
      {reviews.data && reviews.data.reviews.length === 0 && <p className="muted text-sm">No reviews yet.</p>}
      <ul className="divide-y divide-slate-100 dark:divide-slate-800">
        {reviews.data?.reviews.map((item) => (
          <li key={item.id} className="py-2 text-sm">
            <p><span className="font-medium">{item.author_name}</span> · {item.rating} of 5 · <span className="muted">{ago(item.updated_at ?? item.created_at)}</span></p>
            {item.comment && <p className="mt-1">{item.comment}</p>}
          </li>
        ))}
      </ul>
    </section>
  );
}

export function ItemPage() {
  const { id = '' } = useParams();
  const state = useSession();
  const queryClient = useQueryClient();
  const item = useQuery({ queryKey: marketKeys.item(id), queryFn: () => getItem(id) });
  const versions = useQuery({ queryKey: marketKeys.versions(id), queryFn: () => listVersions(id) });
  const [version, setVersion] = useState('');
  const [publishing, setPublishing] = useState(false);
  const installing = useMutation({
    mutationFn: () => install(id, version || undefined),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: marketKeys.item(id) }),
  });
  const yanking = useMutation({
    mutationFn: (target: string) => yank(id, target, 'yanked from the console'),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['market'] }),
  });
  if (item.isPending) return <Loading label="Loading the item" />;
  if (item.error) return <ProblemMessage error={item.error} />;
  const data = item.data;
  const mine = state.status === 'signed-in' && state.user.tenant_id === data.publisher_tenant_id;
  const canPublish = mine && can(state, 'market:publish');
  return (
    <>
      <p className="mb-2 text-sm"><Link className="link" to="/marketplace">← Marketplace</Link></p>
      <PageHeader title={data.name}>
        {canPublish && (
          <button type="button" className="btn-secondary" aria-expanded={publishing} onClick={() => setPublishing(!publishing)}>
            New version…
          </button>
        )}
      </PageHeader>
      <p className="muted mb-4 flex flex-wrap items-center gap-3 text-sm">
        <span>{data.kind}</span>
        <span>by {data.author_name}</span>
        <span>{data.visibility}</span>
        <span>{data.downloads} installs</span>
        <Stars average={data.rating_average} count={data.rating_count} />
      </p>
      {publishing && (
        <div className="mb-6">
          <PublishForm item={data} onPublished={() => setPublishing(false)} />
        </div>
      )}
      <div className="grid grid-cols-1 gap-6 lg:grid-cols-3">
        <div className="space-y-6 lg:col-span-2">
          <section aria-labelledby="readme" className="card">
            <h2 id="readme" className="mb-2 font-semibold">README</h2>
            {data.description ? <Markdown source={data.description} /> : <p className="muted text-sm">No README.</p>}
          </section>
          <section aria-labelledby="versions" className="card overflow-x-auto">
            <h2 id="versions" className="mb-2 font-semibold">Versions</h2>
            {versions.isPending && <Loading label="Loading versions" />}
            {versions.error && <ProblemMessage error={versions.error} />}
            <ProblemMessage error={yanking.error} />
            <ul className="divide-y divide-slate-100 dark:divide-slate-800">
              {versions.data?.versions.map((entry) => (
                <li key={entry.version} aria-label={`Version ${entry.version}`} className="space-y-1 py-3 text-sm">
                  <p className="flex flex-wrap items-center gap-3">
                    <span className="font-mono font-medium">{entry.version}</span>
                    {entry.yanked && <span className="rounded bg-amber-100 px-2 text-xs text-amber-900 dark:bg-amber-900 dark:text-amber-100">yanked</span>}
                    <span className="muted">{entry.size_bytes} B · {ago(entry.published_at)}</span>
                    {canPublish && !entry.yanked && (
                      <button type="button" className="btn-secondary ml-auto" aria-label={`Yank ${entry.version}`}
                        disabled={yanking.isPending} onClick={() => yanking.mutate(entry.version)}>
                        Yank
                      </button>
                    )}
                  </p>
                  <p className="muted break-all font-mono text-xs">SHA-256 {entry.sha256}</p>
                  {entry.release_notes && <Markdown source={entry.release_notes} />}
                </li>
              ))}
            </ul>
          </section>
        </div>
        <div className="space-y-6">
          {can(state, 'market:read') && (can(state, 'chains:write') || can(state, 'agents:write')) && (
            <section aria-labelledby="install" className="card space-y-3">
              <h2 id="install" className="font-semibold">Install into this tenant</h2>
              <div>
                <label className="label" htmlFor="install-version">Version</label>
                <select id="install-version" className="input" value={version} onChange={(event) => setVersion(event.target.value)}>
                  <option value="">Latest ({data.latest_version ?? 'none'})</option>
                  {versions.data?.versions.map((entry) => (
                    <option key={entry.version} value={entry.version}>{entry.version}{entry.yanked ? ' (yanked)' : ''}</option>
                  ))}
                </select>
              </div>
              <ProblemMessage error={installing.error} />
              <button type="button" className="btn-primary" disabled={installing.isPending} onClick={() => installing.mutate()}>
                Install
              </button>
              {installing.data && (
                <p role="status" className="text-sm">
                  {installing.data.already_installed ? 'Already installed: nothing to do.' : 'Installed.'}
                </p>
              )}
            </section>
          )}
          {/* A tenant cannot review its own item. */}
          <Reviews id={id} canReview={!mine && can(state, 'market:read')} />
        </div>
      </div>
    </>
  );
}
