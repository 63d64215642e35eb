/**
 * Schedules: the tenant's schedules (newest first, a page at a time) with what they run, when,
 * their next fire times and latest tick, paused or resumed, edited, their API key renewed and
 * deleted in place; and a new one.
 * Fetched again every second while one is active, so ticks and their runs show as they fire.
 */
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router';

import { can, useSession } from '../auth/session';
import { chainKeys, listChains } from '../runs/queries';
import { ConfirmButton } from '../ui/Confirm';
import { Empty, Loading, PageHeader, ProblemMessage } from '../ui/states';
import { ago } from '../ui/time';
import { type CreateSchedule, type Schedule, type UpdateSchedule, createSchedule, deleteSchedule, listSchedules, scheduleKeys, updateSchedule } from './queries';
import { ScheduleForm } from './ScheduleForm';
import { targetOf, timingOf } from './schedules';

/** How often the list is fetched again while a schedule in it is active. */
const FOLLOW_MS = 1000;

function NewSchedule() {
  const queryClient = useQueryClient();
  const create = useMutation({
    mutationFn: (body: CreateSchedule) => createSchedule(body),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: scheduleKeys.all }),
  });
  return (
    <div className="space-y-3">
      {/* A new form once one is created: its fields do not invite a second by mistake. */}
      <ScheduleForm key={create.data?.id} pending={create.isPending} error={create.error} onSubmit={(body) => create.mutate(body)} />
      {create.data && <p role="status" className="text-sm">Created {create.data.name}.</p>}
    </div>
  );
}

/** A schedule's form in place of its row's actions; closed once saved. */
function EditSchedule({ schedule, onClose }: { schedule: Schedule; onClose: () => void }) {
  const queryClient = useQueryClient();
  const save = useMutation({
    mutationFn: (body: UpdateSchedule) => updateSchedule(schedule.id, body),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: scheduleKeys.all });
      onClose();
    },
  });
  return <ScheduleForm schedule={schedule} pending={save.isPending} error={save.error} onSubmit={(body) => save.mutate(body)} onCancel={onClose} />;
}

function Actions({ schedule, onEdit }: { schedule: Schedule; onEdit: () => void }) {
  const queryClient = useQueryClient();
  const done = () => queryClient.invalidateQueries({ queryKey: scheduleKeys.all });
  const pause = useMutation({ mutationFn: (paused: boolean) => updateSchedule(schedule.id, { paused }), onSuccess: done });
  const renew = useMutation({ mutationFn: () => updateSchedule(schedule.id, { renew_credential: true }), onSuccess: done });
  const remove = useMutation({ mutationFn: () => deleteSchedule(schedule.id), onSuccess: done });
  return (
    <div className="flex flex-wrap gap-2">
      <button type="button" className="btn-secondary" aria-label={`Edit ${schedule.name}`} onClick={onEdit}>Edit</button>
      <button type="button" className="btn-secondary" disabled={pause.isPending} aria-label={`${schedule.paused ? 'Resume' : 'Pause'} ${schedule.name}`}
        onClick={() => pause.mutate(!schedule.paused)}>
        {schedule.paused ? 'Resume' : 'Pause'}
      </button>
      {/* Ticks fail once the schedule's API key expires: a new one lives the longest auth allows. */}
      <button type="button" className="btn-secondary" disabled={renew.isPending} aria-label={`Renew the key of ${schedule.name}`}
        onClick={() => renew.mutate()}>
        Renew key
      </button>
      <ConfirmButton label="Delete…" title={`Delete ${schedule.name}?`} act="Delete schedule" disabled={remove.isPending}
        onConfirm={() => remove.mutate()}>
        It fires no more ticks; the runs it started are kept.
      </ConfirmButton>
      <ProblemMessage error={pause.error ?? renew.error ?? remove.error} />
    </div>
  );
}

function Row({ schedule, chainNames, write }: { schedule: Schedule; chainNames: Map<string, string>; write: boolean }) {
  const [editing, setEditing] = useState(false);
  return (
    <>
      <tr className="border-b border-slate-100 align-top last:border-0 dark:border-slate-800" aria-label={schedule.name}>
        <th scope="row" className="px-4 py-2 text-left font-normal">
          <span className="font-medium">{schedule.name}</span>
          <p className="muted text-xs">{targetOf(schedule, chainNames)}</p>
          {schedule.credential_expires_at && (
            <p className="muted text-xs">
              key until <time dateTime={schedule.credential_expires_at}>{new Date(schedule.credential_expires_at).toLocaleDateString()}</time>
            </p>
          )}
        </th>
        <td className="px-4 py-2 font-mono text-xs">{timingOf(schedule)}</td>
        <td className="px-4 py-2">
          {schedule.paused ? 'paused' : (
            <ol aria-label={`Next fire times of ${schedule.name}`} className="text-xs">
              {schedule.next.map((time) => <li key={time}><time dateTime={time}>{new Date(time).toLocaleString()}</time></li>)}
            </ol>
          )}
        </td>
        <td className="px-4 py-2 text-xs">
          {schedule.last_tick_at ? ago(schedule.last_tick_at) : 'not yet'}
          {schedule.last_run_id && <p><Link className="link" to={`/runs/${schedule.last_run_id}`}>Latest run</Link></p>}
          {schedule.last_error && <p className="text-red-700 dark:text-red-300">{schedule.last_error}</p>}
        </td>
        {write && <td className="px-4 py-2"><Actions schedule={schedule} onEdit={() => setEditing(true)} /></td>}
      </tr>
      {editing && (
        <tr className="border-b border-slate-100 last:border-0 dark:border-slate-800">
          <td colSpan={5} className="px-4 py-2"><EditSchedule schedule={schedule} onClose={() => setEditing(false)} /></td>
        </tr>
      )}
    </>
  );
}

export function SchedulesPage() {
  const state = useSession();
  const write = can(state, 'schedules:write');
  const chains = useQuery({ queryKey: chainKeys.all, queryFn: listChains });
  const schedules = useInfiniteQuery({
    queryKey: scheduleKeys.all,
    queryFn: ({ pageParam }) => listSchedules(pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (page) => page.next_page_token ?? undefined,
    refetchInterval: (query) =>
      query.state.data?.pages.some((page) => page.schedules.some((schedule) => !schedule.paused)) ? FOLLOW_MS : false,
  });
  const all = schedules.data?.pages.flatMap((page) => page.schedules) ?? [];
  const chainNames = new Map((chains.data?.chains ?? []).flatMap((chain) => (chain.id ? [[chain.id, chain.name]] : [])));
  return (
    <>
      <PageHeader title="Schedules" />
      <p className="muted mb-4 max-w-3xl text-sm">
        A schedule starts a run of its chain on a cron expression in a time zone, or every fixed interval; each tick
        starts one run, however many triggers replicas there are.
      </p>
      <div className="grid grid-cols-1 gap-6 lg:grid-cols-3">
        <section aria-labelledby="schedules" className="space-y-3 lg:col-span-2">
          <h2 id="schedules" className="text-lg font-semibold">Schedules</h2>
          {schedules.isPending && <Loading label="Loading schedules" />}
          {schedules.error && <ProblemMessage error={schedules.error} />}
          {schedules.data && all.length === 0 && <Empty title="No schedules yet">A schedule runs a chain on its own.</Empty>}
          {all.length > 0 && (
            <div className="card overflow-x-auto p-0">
              <table className="w-full text-left text-sm">
                <caption className="sr-only">Schedules, newest first</caption>
                <thead className="border-b border-slate-200 dark:border-slate-700">
                  <tr>
                    <th scope="col" className="px-4 py-2">Name</th>
                    <th scope="col" className="px-4 py-2">When</th>
                    <th scope="col" className="px-4 py-2">Next</th>
                    <th scope="col" className="px-4 py-2">Latest tick</th>
                    {write && <th scope="col" className="px-4 py-2"><span className="sr-only">Actions</span></th>}
                  </tr>
                </thead>
                <tbody>
                  {all.map((schedule) => <Row key={schedule.id} schedule={schedule} chainNames={chainNames} write={write} />)}
                </tbody>
              </table>
            </div>
          )}
          {schedules.hasNextPage && (
            <button type="button" className="btn-secondary" disabled={schedules.isFetchingNextPage} onClick={() => void schedules.fetchNextPage()}>
              More schedules
            </button>
          )}
        </section>
        {write && <NewSchedule />}
      </div>
    </>
  );
}
