/**
 * The webhooks page's logic apart from React: the event types typed one per line (checked
 * against the service's bounds before sending), a delivery's outcome in words, and the body sent
 * shown as indented JSON.
 */
import type { Delivery } from './queries';

/** The triggers service's bounds (`filters.rs`): at most 50 filters of at most 200 bytes. */
export const MAX_EVENT_TYPES = 50;
export const MAX_EVENT_TYPE_BYTES = 200;

/** The filters typed one per line (or comma-separated), trimmed, blank lines and repeats dropped. */
export function parseEventTypes(text: string): string[] {
  const types = text.split(/[\n,]/).map((line) => line.trim()).filter(Boolean);
  return [...new Set(types)];
}

/** What is wrong with `types` as the service would say it, or none. */
export function eventTypesProblem(types: string[]): string | undefined {
  if (types.length === 0) return 'Name at least one event type (`*` for every event).';
  if (types.length > MAX_EVENT_TYPES) return `At most ${MAX_EVENT_TYPES} event types (${types.length} given).`;
  const long = types.find((type) => new TextEncoder().encode(type).length > MAX_EVENT_TYPE_BYTES);
  if (long !== undefined) return `Each event type is at most ${MAX_EVENT_TYPE_BYTES} bytes: ${long.slice(0, 40)}…`;
  return undefined;
}

/** A delivery's last outcome as the log shows it: its response code, or why none came. */
export function outcomeOf(delivery: Pick<Delivery, 'status' | 'last_status_code' | 'last_error' | 'attempts'>): string {
  if (delivery.attempts === 0) return 'not sent yet';
  if (delivery.last_status_code !== null && delivery.last_status_code !== undefined) {
    return `HTTP ${delivery.last_status_code}`;
  }
  return delivery.last_error ?? 'no response';
}

/** The body sent, indented when it is JSON (a CloudEvent always is), as it is otherwise. */
export function prettyBody(body: string): string {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

/**
 * The service's error about the event types, on the field that lists them: it names the whole
 * list (`event_types`) or one entry (`event_types[2]`), which is said with its text.
 */
export function eventTypesError(errors: { field: string; message: string }[] | undefined, types: string[]): string | undefined {
  for (const error of errors ?? []) {
    if (error.field === 'event_types') return error.message;
    const entry = /^event_types\[(\d+)\]$/.exec(error.field);
    if (entry) {
      const type = types[Number(entry[1])];
      return type === undefined ? error.message : `${type}: ${error.message}`;
    }
  }
  return undefined;
}
