import type { components } from './schema';

export type Problem = components['schemas']['Problem'];

/** A failed API call, carrying the RFC 9457 problem the gateway answered. */
export class ProblemError extends Error {
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(problem.detail ?? problem.title);
    this.name = 'ProblemError';
    this.problem = problem;
  }

  /** The message for the field named `field`, if the problem names it. */
  fieldMessage(field: string): string | undefined {
    return this.problem.errors?.find((error) => error.field === field)?.message;
  }
}

/** Whatever a request failed with, as a problem: a network failure is one too. */
export function asProblem(error: unknown): Problem {
  if (error instanceof ProblemError) return error.problem;
  const detail = error instanceof Error ? error.message : String(error);
  return { type: 'about:blank', title: 'The request failed', status: 0, detail };
}

/** The body of a failed response as a problem, whatever the server sent. */
export function problemFrom(body: unknown, response: Response): Problem {
  if (body && typeof body === 'object' && 'title' in body && 'status' in body) {
    return body as Problem;
  }
  return {
    type: 'about:blank',
    title: response.statusText || `HTTP ${response.status}`,
    status: response.status,
  };
}

/**
 * The problem's detail when it says more than its field errors: the gateway's detail of an
 * invalid request is usually those errors joined (`field: message; ...`), which a page lists
 * by field already.
 */
export function detailBeyondErrors(problem: Problem): string | undefined {
  const listed = (problem.errors ?? []).map((error) => `${error.field}: ${error.message}`);
  return problem.detail && problem.detail !== listed.join('; ') ? problem.detail : undefined;
}
