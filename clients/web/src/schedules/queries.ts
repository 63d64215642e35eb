/** Schedules' server state: the tenant's schedules, created, paused or resumed, renewed, deleted. */
import { api, data, type Schemas } from '../api/client';

export type Schedule = Schemas['Schedule'];
export type CreateSchedule = Schemas['CreateSchedule'];

export const scheduleKeys = { all: ['schedules'] as const };

export const PAGE_SIZE = 50;

export function listSchedules(pageToken?: string) {
  return data(
    api.GET('/api/schedules', {
      params: { query: { page_size: PAGE_SIZE, ...(pageToken ? { page_token: pageToken } : {}) } },
    }),
  );
}

export function createSchedule(body: CreateSchedule) {
  return data(api.POST('/api/schedules', { body }));
}

/** Pauses or resumes a schedule, or renews its API key (`renew_credential`). */
export function updateSchedule(id: string, body: Schemas['UpdateSchedule']) {
  return data(api.PATCH('/api/schedules/{id}', { params: { path: { id } }, body }));
}

export function deleteSchedule(id: string) {
  return data(api.DELETE('/api/schedules/{id}', { params: { path: { id } } }));
}
