/**
 * A run as it goes: fetched once (the truth up to then), then moved along by its event stream
 * (`stream.ts`, folded by `timeline.ts`) until it ends, when it is fetched once more for its
 * outputs and artifacts. The run page and the composer's canvas both follow runs through it.
 */
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useReducer, useState } from 'react';

import { getRun, runKeys } from './queries';
import { type StreamState, followRun } from './stream';
import { type ChainRun, type CloudEvent, type Timeline, apply, fromRun, isFinished } from './timeline';

type Action = { kind: 'event'; event: CloudEvent } | { kind: 'reset'; run: ChainRun };

function reduce(timeline: Timeline | null, action: Action): Timeline | null {
  if (action.kind === 'reset') {
    // A fetched run is the truth up to now; keep the stream's position in the same run.
    const sequence = timeline?.runId === action.run.id ? timeline.lastSequence : 0;
    return { ...fromRun(action.run), lastSequence: sequence };
  }
  return timeline ? apply(timeline, action.event) : timeline;
}

export function useLiveRun(id: string) {
  const queryClient = useQueryClient();
  const run = useQuery({ queryKey: runKeys.one(id), queryFn: () => getRun(id), enabled: id !== '' });
  const [timeline, dispatch] = useReducer(reduce, null);
  const [stream, setStream] = useState<StreamState>('connecting');

  useEffect(() => {
    if (run.data) dispatch({ kind: 'reset', run: run.data });
  }, [run.data]);

  // Followed once this run's timeline is seeded from its fetch, unless it had ended by then.
  const seeded = timeline?.runId === id;
  const finishedAtLoad = run.data ? isFinished(run.data.status) : false;
  useEffect(() => {
    if (!seeded || finishedAtLoad) return;
    return followRun(
      id,
      0,
      (event) => dispatch({ kind: 'event', event }),
      (next) => {
        setStream(next);
        // The stream ended with the run: fetch it once more for outputs and artifacts.
        if (next === 'ended') void queryClient.invalidateQueries({ queryKey: runKeys.one(id) });
      },
    );
  }, [id, seeded, finishedAtLoad, queryClient]);

  return { run, timeline: seeded ? timeline : null, stream };
}
