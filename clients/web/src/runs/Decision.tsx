/** Approve or reject a run's step that waits for a decision (an approval step). */
import { useMutation, useQueryClient } from '@tanstack/react-query';

import { ProblemMessage } from '../ui/states';
import { decide, runKeys } from './queries';

export function Decision({ runId, stepId }: { runId: string; stepId: string }) {
  const queryClient = useQueryClient();
  const decision = useMutation({
    mutationFn: (approve: boolean) => decide(runId, stepId, approve),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: runKeys.one(runId) }),
  });
  return (
    <>
      <div className="flex gap-2">
        <button type="button" className="btn-primary" disabled={decision.isPending} onClick={() => decision.mutate(true)}>
          Approve
        </button>
        <button type="button" className="btn-danger" disabled={decision.isPending} onClick={() => decision.mutate(false)}>
          Reject
        </button>
      </div>
      <ProblemMessage error={decision.error} />
    </>
  );
}
