/**
 * The seed's chat: a conversation about what to build. The assistant answers each message with
 * the planner's plan of it (a small graph) and a reply streamed as it is written (`stream.ts`,
 * folded by `conversation.ts`); Stop aborts the reply, Regenerate asks again. "Confirm and run"
 * starts the plan as /command does, links the run to the message (so the conversation shows it
 * when reopened) and follows it (`runs/useLiveRun.ts`) up to its files. Conversations are kept
 * by the server, one memory session each, and listed beside, newest first.
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, type KeyboardEvent, Suspense, lazy, useCallback, useEffect, useReducer, useRef, useState } from 'react';
import { Link, NavLink, useLocation, useNavigate, useParams } from 'react-router';

import { can, useSession } from '../auth/session';
import { Files } from '../artifacts/Files';
import type { Json } from '../composer/graph';
import { startRun } from '../runs/queries';
import { isFinished } from '../runs/timeline';
import { useLiveRun } from '../runs/useLiveRun';
import { Markdown } from '../ui/Markdown';
import { Empty, Loading, PageHeader, ProblemMessage, StatusBadge } from '../ui/states';
import { type ChatMessage, EMPTY, type Plan, isSaved, lastAsked, reduce } from './conversation';
import { chatKeys, createConversation, deleteConversation, getConversation, linkRun, listConversations } from './queries';
import { send } from './stream';

const PlanGraph = lazy(() => import('./PlanGraph'));

/** The API's bound on a message, in characters. */
const MAX_MESSAGE_CHARS = 4000;

export function ChatPage() {
  const { id } = useParams();
  return (
    <>
      <PageHeader title="Chat" />
      <div className="grid grid-cols-1 gap-4 lg:grid-cols-[16rem_1fr]">
        <Conversations current={id} />
        {id ? <ConversationView key={id} id={id} /> : <NewConversation />}
      </div>
    </>
  );
}

function Conversations({ current }: { current: string | undefined }) {
  const list = useQuery({ queryKey: chatKeys.list(), queryFn: listConversations });
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const remove = useMutation({
    mutationFn: deleteConversation,
    onSuccess: (_, removed) => {
      void queryClient.invalidateQueries({ queryKey: chatKeys.list() });
      if (removed === current) navigate('/chat');
    },
  });
  return (
    <nav aria-label="Conversations" className="card h-fit space-y-3">
      <Link to="/chat" className="btn-secondary block text-center">New conversation</Link>
      {list.isPending && <Loading label="Loading conversations" />}
      <ProblemMessage error={list.error ?? remove.error} />
      {list.data && list.data.conversations.length === 0 && <p className="muted text-sm">No conversations yet.</p>}
      <ul className="space-y-1 text-sm">
        {list.data?.conversations.map((conversation) => {
          const title = conversation.title || 'Untitled conversation';
          return (
            <li key={conversation.id} className="flex items-center gap-1">
              <NavLink to={`/chat/${conversation.id}`} className="link min-w-0 flex-1 truncate"
                aria-current={conversation.id === current ? 'page' : undefined}>
                {title}
              </NavLink>
              <button type="button" className="btn-secondary px-2 py-0.5 text-xs" aria-label={`Delete ${title}`}
                disabled={remove.isPending} onClick={() => remove.mutate(conversation.id)}>
                Delete
              </button>
            </li>
          );
        })}
      </ul>
    </nav>
  );
}

/** The first message starts a conversation, then its page sends it. */
function NewConversation() {
  const navigate = useNavigate();
  const start = useMutation({
    mutationFn: createConversation,
    onSuccess: (conversation, text: string) => navigate(`/chat/${conversation.id}`, { state: { send: text } }),
  });
  return (
    <section aria-label="New conversation" className="space-y-4">
      <Empty title="Describe what you want built">
        The assistant says what it understood and the plan it would run; confirm to run it.
      </Empty>
      <Composer busy={start.isPending} onSend={(text) => start.mutate(text)} />
      <ProblemMessage error={start.error} />
    </section>
  );
}

function ConversationView({ id }: { id: string }) {
  const queryClient = useQueryClient();
  const location = useLocation();
  const navigate = useNavigate();
  const detail = useQuery({ queryKey: chatKeys.one(id), queryFn: () => getConversation(id) });
  const [conversation, dispatch] = useReducer(reduce, EMPTY);
  // Whether a reply is being written, for the effect below (set where the writing starts).
  const writing = useRef(false);
  const abort = useRef<AbortController | null>(null);

  // The server's conversation is the truth whenever no reply is being written.
  useEffect(() => {
    if (detail.data && !writing.current) dispatch({ kind: 'loaded', messages: detail.data.messages });
  }, [detail.data]);
  useEffect(() => () => abort.current?.abort(), []);

  const ask = useCallback(
    async (text: string, regenerate: boolean) => {
      const controller = new AbortController();
      abort.current = controller;
      writing.current = true;
      dispatch({ kind: 'sent', text, regenerate, at: new Date().toISOString() });
      await send(id, text, regenerate, dispatch, controller.signal);
      abort.current = null;
      // A read of the conversation begun before the reply was saved (the page's first, under
      // load) must not answer after it and wipe the exchange: invalidating would join a first
      // read still on its way rather than start another.
      if (!controller.signal.aborted) await queryClient.cancelQueries({ queryKey: chatKeys.one(id) });
      writing.current = false;
      // A stopped reply is saved by the server as its request ends, maybe after a fetch made
      // now: the page keeps its own until the conversation is opened again.
      void queryClient.invalidateQueries({ queryKey: controller.signal.aborted ? chatKeys.list() : chatKeys.all });
    },
    [id, queryClient],
  );

  // The message that started this conversation, sent once.
  const first = (location.state as { send?: string } | null)?.send;
  const sentFirst = useRef(false);
  useEffect(() => {
    if (!first || sentFirst.current) return;
    sentFirst.current = true;
    navigate(location.pathname, { replace: true, state: null });
    void ask(first, false);
  }, [first, ask, navigate, location.pathname]);

  if (detail.isPending && !conversation.writing) return <Loading label="Loading the conversation" />;
  if (detail.error) return <ProblemMessage error={detail.error} />;
  const last = conversation.messages.at(-1);
  const again = lastAsked(conversation);
  return (
    <section aria-label="Conversation" className="min-w-0 space-y-4">
      <ol aria-label="Messages" className="space-y-4">
        {conversation.messages.map((message) => (
          <MessageView key={message.id} conversationId={id} message={message}
            writing={conversation.writing && message === last}
            onLinked={(runId) => dispatch({ kind: 'linked', messageId: message.id, runId })} />
        ))}
      </ol>
      {conversation.problem && (
        <div role="alert" className="text-sm text-red-800 dark:text-red-200">
          <p className="font-medium">{conversation.problem.title}</p>
          {conversation.problem.detail && <p>{conversation.problem.detail}</p>}
        </div>
      )}
      <div className="flex flex-wrap gap-2">
        {conversation.writing && (
          <button type="button" className="btn-danger" onClick={() => abort.current?.abort()}>Stop</button>
        )}
        {!conversation.writing && again !== null && (
          <button type="button" className="btn-secondary" onClick={() => void ask(again, true)}>Regenerate</button>
        )}
      </div>
      <Composer busy={conversation.writing} onSend={(text) => void ask(text, false)} />
    </section>
  );
}

/** The message box: Enter sends, Shift+Enter starts a new line. */
function Composer({ busy, onSend }: { busy: boolean; onSend: (text: string) => void }) {
  const state = useSession();
  const [text, setText] = useState('');
  const allowed = can(state, 'memory:write') && can(state, 'agents:execute') && can(state, 'chains:read');
  function submit(event?: FormEvent) {
    event?.preventDefault();
    const trimmed = text.trim();
    if (!trimmed || busy) return;
    onSend(trimmed);
    setText('');
  }
  function keyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key === 'Enter' && !event.shiftKey) submit(event);
  }
  if (!allowed) return <p className="muted text-sm">Your role cannot chat: it needs memory:write, agents:execute and chains:read.</p>;
  return (
    <form aria-label="Send a message" className="card space-y-2" onSubmit={submit}>
      <label className="label" htmlFor="chat-message">Message</label>
      <textarea id="chat-message" className="input min-h-20" value={text} maxLength={MAX_MESSAGE_CHARS}
        placeholder="A shop backend with products, orders and customers, with login"
        aria-describedby="chat-message-hint" onChange={(event) => setText(event.target.value)} onKeyDown={keyDown} />
      <p id="chat-message-hint" className="muted text-xs">Enter sends; Shift+Enter starts a new line.</p>
      <button type="submit" className="btn-primary" disabled={busy || text.trim() === ''}>Send</button>
    </form>
  );
}

function MessageView({ conversationId, message, writing, onLinked }: {
  conversationId: string;
  message: ChatMessage;
  writing: boolean;
  onLinked: (runId: string) => void;
}) {
  const mine = message.role === 'user';
  return (
    <li aria-label={mine ? 'You' : 'Assistant'} aria-busy={writing || undefined}
      className={`card space-y-3 ${mine ? 'ml-8 bg-indigo-50 dark:bg-indigo-950' : 'mr-8'}`}>
      <p className="muted text-xs font-semibold uppercase">{mine ? 'You' : 'Assistant'}</p>
      <div data-testid="message-text">
        {mine ? <p className="whitespace-pre-wrap">{message.text}</p> : <Markdown source={message.text} />}
      </div>
      {writing && <p role="status" className="muted text-sm">Writing…</p>}
      {message.stopped && <p className="muted text-sm">Stopped.</p>}
      {message.plan && (
        <PlanCard conversationId={conversationId} message={message} plan={message.plan} ready={!writing && isSaved(message)}
          onLinked={onLinked} />
      )}
    </li>
  );
}

function PlanCard({ conversationId, message, plan, ready, onLinked }: {
  conversationId: string;
  message: ChatMessage;
  plan: Plan;
  ready: boolean;
  onLinked: (runId: string) => void;
}) {
  const state = useSession();
  const run = useMutation({
    mutationFn: async () => {
      const started = await startRun({ definition: plan.chain }, plan.input as Record<string, unknown>);
      await linkRun(conversationId, message.id, started.id);
      return started.id;
    },
    onSuccess: onLinked,
  });
  return (
    <section aria-label="Plan" className="space-y-2">
      <p className="text-sm">
        <span className="muted">Plan: </span>
        {plan.analysis.agent_count} steps ({plan.analysis.chain_type}, {plan.analysis.estimated_complexity} complexity)
      </p>
      <Suspense fallback={<Loading label="Drawing the plan" />}>
        {message.run_id ? <RunProgress runId={message.run_id} chain={plan.chain as Json} /> : <PlanGraph chain={plan.chain as Json} steps={[]} />}
      </Suspense>
      {!message.run_id && plan.execution_ready && can(state, 'chains:execute') && (
        <button type="button" className="btn-primary" disabled={!ready || run.isPending} onClick={() => run.mutate()}>
          {run.isPending ? 'Starting…' : 'Confirm and run'}
        </button>
      )}
      {!plan.execution_ready && (
        <p className="text-sm">This plan cannot run as it is: {plan.violations.map((v) => `${v.field}: ${v.message}`).join('; ')}</p>
      )}
      <ProblemMessage error={run.error} />
    </section>
  );
}

/** The run of a plan, live on its graph, then its files. */
function RunProgress({ runId, chain }: { runId: string; chain: Json }) {
  const { run, timeline } = useLiveRun(runId);
  if (run.isPending) return <Loading label="Loading the run" />;
  if (run.error) return <ProblemMessage error={run.error} />;
  const status = timeline?.status ?? run.data.status;
  const artifacts = [
    ...new Map(run.data.steps.flatMap((step) => step.artifacts).map((artifact) => [artifact.path, artifact])).values(),
  ];
  return (
    <div className="space-y-2">
      <p className="flex flex-wrap items-center gap-2 text-sm">
        <span>Run status:</span>
        <span data-testid="run-status"><StatusBadge status={status} /></span>
        <Link className="link" to={`/runs/${runId}`}>Open the run</Link>
      </p>
      <PlanGraph chain={chain} steps={timeline?.steps ?? []} />
      {isFinished(status) && run.data.status === status && (
        <section aria-label="Files">
          <Files workspace={run.data.workspace_id} artifacts={artifacts} />
        </section>
      )}
    </div>
  );
}
