/**
 * The Run panel of an agent: its input as a form generated from its schema, or as JSON
 * (`InputForm`), then the run.
 */
import { useMutation } from '@tanstack/react-query';

import { can, useSession } from '../auth/session';
import { InputForm } from './InputForm';
import { type Agent, type AgentRun, executeAgent } from './queries';
import type { JsonSchema } from './schemaForm';

export function AgentRunner({ agent, onRun }: { agent: Agent; onRun?: (run: AgentRun, input: Record<string, unknown>) => void }) {
  const state = useSession();
  const run = useMutation({
    mutationFn: (input: Record<string, unknown>) => executeAgent(agent.name, input),
    onSuccess: (result, input) => onRun?.(result, input),
  });
  return (
    <InputForm schema={agent.input_schema as JsonSchema} label={`Run ${agent.name}`} submitLabel="Run" busy={run.isPending}
      error={run.error} onSubmit={(input) => run.mutate(input)}
      {...(can(state, 'agents:execute') ? {} : { denied: 'Your role cannot run agents.' })} />
  );
}
