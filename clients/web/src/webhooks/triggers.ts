/**
 * The inbound triggers section's logic apart from React: the form's values as the body the API
 * takes (checked where the browser can tell), where senders post, and what a trigger runs.
 */
import { type FieldProblem, isProblem } from '../schedules/schedules';
import type { CreateTrigger, Trigger } from './queries';

export { type FieldProblem, isProblem };

/** The triggers service's bound on a mapping (`inbound.rs`): a JSON object of at most 64 KiB. */
export const MAX_MAPPING_BYTES = 64 * 1024;

/** What the service maps when no mapping is sent: the whole request body as the input's `body`. */
export const DEFAULT_MAPPING = '{\n  "body": "${body}"\n}';

export interface TriggerFields {
  name: string;
  /** `template:<name>` or `chain:<id>`, as the schedules page's chain choice. */
  target: string;
  /** The input mapping as JSON text. */
  mapping: string;
  signature: NonNullable<CreateTrigger['signature']>;
}

/** The body `POST /api/webhooks/triggers` takes, or the first field the browser can tell is wrong. */
export function triggerBody(fields: TriggerFields): CreateTrigger | FieldProblem {
  const [origin, name = ''] = fields.target.split(/:(.*)/s);
  if (!name) return { field: 'chain_id', message: 'choose a chain or template' };
  if (new TextEncoder().encode(fields.mapping).length > MAX_MAPPING_BYTES) {
    return { field: 'input_mapping', message: `must be at most ${MAX_MAPPING_BYTES} bytes` };
  }
  let mapping: unknown;
  try {
    mapping = JSON.parse(fields.mapping.trim() === '' ? DEFAULT_MAPPING : fields.mapping);
  } catch {
    return { field: 'input_mapping', message: 'is not valid JSON' };
  }
  if (!mapping || typeof mapping !== 'object' || Array.isArray(mapping)) {
    return { field: 'input_mapping', message: 'must be a JSON object' };
  }
  return {
    name: fields.name.trim(),
    ...(origin === 'template' ? { template: name } : { chain_id: name }),
    input_mapping: mapping as Record<string, unknown>,
    signature: fields.signature,
  };
}

/** The URL senders post to: the gateway serving this console, at the trigger's path. */
export function urlOf(trigger: Pick<Trigger, 'id'>, origin: string): string {
  return `${origin.replace(/\/+$/, '')}/api/webhooks/in/${trigger.id}`;
}

/** What a trigger runs: the template's name or the stored chain's, else its id. */
export function runsOf(trigger: Pick<Trigger, 'template' | 'chain_id'>, chainNames: Map<string, string>): string {
  if (trigger.template) return `template ${trigger.template}`;
  const id = trigger.chain_id ?? '';
  return `chain ${chainNames.get(id) ?? id}`;
}
