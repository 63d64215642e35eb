/** Schedules' server state: the tenant's schedules, created, edited, paused or resumed, renewed, deleted. */
import { api, data, type Schemas } from '../api/client';

export type Schedule = Schemas['Schedule'];
export type CreateSchedule = Schemas['CreateSchedule'];
export type UpdateSchedule = Schemas['UpdateSchedule'];

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

/** Changes a schedule: its settings, paused or resumed, its API key renewed (`renew_credential`). */
export function updateSchedule(id: string, body: UpdateSchedule) {
  return data(api.PATCH('/api/schedules/{id}', { params: { path: { id } }, body }));
}

export function deleteSchedule(id: string) {
  return data(api.DELETE('/api/schedules/{id}', { params: { path: { id } } }));
}
