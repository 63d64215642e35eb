/**
 * One conversation as the page shows it: the messages kept on the server, and the exchange in
 * flight (the person's message, then the reply as its events arrive). One reducer folds the
 * loaded conversation and the reply's events (`stream.ts`) into it, so the page renders data.
 */
import type { Schemas } from '../api/client';
import type { Problem } from '../api/problem';

export type ChatMessage = Schemas['ChatMessage'];
export type Plan = Schemas['ProcessedCommand'];

export interface Conversation {
  messages: ChatMessage[];
  /** The reply being written: its text so far and its plan, until `done`, a stop or an error. */
  writing: boolean;
  /** What stopped the last exchange, shown under it. */
  problem: Problem | null;
}

export type Action =
  | { kind: 'loaded'; messages: ChatMessage[] }
  | { kind: 'sent'; text: string; regenerate: boolean; at: string }
  | { kind: 'plan'; plan: Plan }
  | { kind: 'delta'; text: string }
  | { kind: 'done'; userMessageId: string; messageId: string }
  | { kind: 'stopped' }
  | { kind: 'failed'; problem: Problem }
  | { kind: 'linked'; messageId: string; runId: string };

export const EMPTY: Conversation = { messages: [], writing: false, problem: null };

/** Ids of messages not saved yet: the server's come with `done`. */
const PENDING_USER = 'pending-user';
const PENDING_REPLY = 'pending-reply';

function reply(at: string): ChatMessage {
  return { id: PENDING_REPLY, role: 'assistant', text: '', created_at: at, stopped: false };
}

/** The reply in flight, changed by `change`; the conversation as it is without one. */
function withReply(state: Conversation, change: (message: ChatMessage) => ChatMessage): Conversation {
  const last = state.messages.at(-1);
  if (!state.writing || !last || last.id !== PENDING_REPLY) return state;
  return { ...state, messages: [...state.messages.slice(0, -1), change(last)] };
}

export function reduce(state: Conversation, action: Action): Conversation {
  switch (action.kind) {
    case 'loaded':
      return { messages: action.messages, writing: false, problem: null };
    case 'sent': {
      // Regenerating replaces the person's last message and what followed it, as the server does.
      let kept = state.messages;
      if (action.regenerate) {
        const last = kept.map((message) => message.role).lastIndexOf('user');
        if (last !== -1) kept = kept.slice(0, last);
      }
      const asked: ChatMessage = { id: PENDING_USER, role: 'user', text: action.text, created_at: action.at, stopped: false };
      return { messages: [...kept, asked, reply(action.at)], writing: true, problem: null };
    }
    case 'plan':
      return withReply(state, (message) => ({ ...message, plan: action.plan }));
    case 'delta':
      return withReply(state, (message) => ({ ...message, text: message.text + action.text }));
    case 'done': {
      const messages = state.messages.map((message) => {
        if (message.id === PENDING_USER) return { ...message, id: action.userMessageId };
        if (message.id === PENDING_REPLY) return { ...message, id: action.messageId };
        return message;
      });
      return { ...state, messages, writing: false };
    }
    case 'stopped': {
      const stopped = withReply(state, (message) => ({ ...message, stopped: true }));
      return { ...stopped, writing: false };
    }
    case 'failed': {
      // A reply that wrote nothing is no message.
      const messages = state.messages.filter((message) => !(message.id === PENDING_REPLY && message.text === '' && !message.plan));
      return { messages, writing: false, problem: action.problem };
    }
    case 'linked':
      return {
        ...state,
        messages: state.messages.map((message) => (message.id === action.messageId ? { ...message, run_id: action.runId } : message)),
      };
  }
}

/** The text of the person's last message: what Regenerate sends again. */
export function lastAsked(state: Conversation): string | null {
  const asked = [...state.messages].reverse().find((message) => message.role === 'user');
  return asked ? asked.text : null;
}

/** Whether a message is saved (its id the server's): only those can be linked to a run. */
export function isSaved(message: ChatMessage): boolean {
  return message.id !== PENDING_USER && message.id !== PENDING_REPLY;
}
