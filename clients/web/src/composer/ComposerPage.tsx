/**
 * The composer: a chain definition as a graph on a canvas (React Flow) beside its JSON, each
 * following the other. Steps come from the palette (a click or a drag), connect by dragging
 * from one's right handle to another's left (the second needs the first) or by the side panel's
 * checkboxes; the orchestrator validates the definition as it changes, and each problem shows
 * on the step it concerns. Changes can be undone and redone, steps copied and pasted, all from
 * the keyboard too (`shortcuts.ts`); moved steps keep their places in the definition. Below the
 * canvas: the JSON, import and export, running it (the run then shows on the steps), publishing,
 * and a stored chain's versions. Loaded on first visit with React Flow and dagre (its own chunk).
 */
import '@xyflow/react/dist/style.css';

import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import {
  Background,
  type Connection,
  Controls,
  type Edge,
  type EdgeChange,
  type NodeChange,
  ReactFlow,
  ReactFlowProvider,
  applyEdgeChanges,
  applyNodeChanges,
  useReactFlow,
} from '@xyflow/react';
import { type DragEvent, Suspense, lazy, useEffect, useMemo, useRef, useState } from 'react';
import { useSearchParams } from 'react-router';

import { type Agent, agentKeys, listAgents } from '../agents/queries';
import { useShownTheme } from '../app/theme';
import { can, useSession } from '../auth/session';
import { chainKeys, listChains } from '../runs/queries';
import { useLiveRun } from '../runs/useLiveRun';
import { Loading, PageHeader, ProblemMessage } from '../ui/states';
import { Tabs } from '../ui/Tabs';
import { RunBanner, RunForm, type RunTarget, StepRun } from './CanvasRun';
import {
  type Copied,
  PASTE_OFFSET,
  clipboardText,
  copySteps,
  freeId,
  parseClipboard,
  pasteSteps,
  removeSteps,
  withStepsRenamed,
} from './clipboard';
import { type Graph, type Json, type StepJson, type StepNode, edgeId, fromGraph, pathsFor, placedByDefinition, positionOf, problemsByStep, toGraph, upstreamOf, withPositions, withoutPositions } from './graph';
import { History } from './history';
import { laidOut } from './layout';
import { type Addition, DRAG_TYPE, Palette, additionOf } from './Palette';
import { type Action, actionOf, keysOf } from './shortcuts';
import { ShortcutsHelp } from './ShortcutsHelp';
import { StepNodeView } from './StepNode';
import { ImportExport, Publish } from './Sharing';
import { StepPanel } from './StepPanel';
import { Versions } from './Versions';
import { composerKeys, createChain, getChain, saveVersion, validate } from './queries';

const JsonEditor = lazy(() => import('../ui/JsonEditor'));

const NODE_TYPES = { step: StepNodeView };
/** How long the definition rests before the orchestrator is asked to validate it. */
const VALIDATE_AFTER_MS = 400;
/** Far enough out that fitting the view shows a 200-step chain whole. */
const MIN_ZOOM = 0.05;

function text(definition: Json): string {
  return JSON.stringify(definition, null, 2);
}

/** Whether a key pressed on `target` edits text (a field, the JSON editor's shadow root) or a dialog's content. */
function typingIn(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return Boolean(target.shadowRoot || target.closest('input, textarea, select, [contenteditable="true"], dialog'));
}

/** The actions the browser's clipboard events perform, rather than their keys. */
const CLIPBOARD_ACTIONS = new Set<Action>(['copy', 'cut', 'paste']);

function counted(count: number, what: string): string {
  return `${count} ${what}${count === 1 ? '' : 's'}`;
}

function newStep(addition: Addition, taken: Set<string>): StepJson {
  if ('agent' in addition) return { id: freeId(addition.agent, taken), agent: addition.agent };
  if (addition.kind === 'approval') {
    return { id: freeId('approval', taken), approval: { prompt: 'Go on?', approvers: ['role:admin'] } };
  }
  return { id: freeId('subchain', taken), chain: { template: 'hello-sequence' } };
}

/** The graph of `definition`, keeping the positions of the steps `previous` had. */
/**
 * The graph of `definition`: where its steps' own positions say when every step has one, else
 * where `previous` had them when it had them all, else laid out by dagre.
 */
function regraph(definition: Json, previous: Graph | null): Graph {
  const graph = toGraph(definition);
  if (placedByDefinition(graph)) {
    return { ...graph, nodes: graph.nodes.map((node) => ({ ...node, position: positionOf(node.data.step) ?? node.position })) };
  }
  const placed = new Map(previous?.nodes.map((node) => [node.id, node.position]));
  const allPlaced = graph.nodes.every((node) => placed.has(node.id));
  const nodes = allPlaced
    ? graph.nodes.map((node) => ({ ...node, position: placed.get(node.id) ?? node.position }))
    : laidOut(graph.nodes, graph.edges);
  return { ...graph, nodes };
}

function useSettled<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

function Composer({ initial, agents, stored, clipboard, onCopy }: {
  initial: Json;
  agents: Agent[];
  /** A stored chain: its latest version, and the version open (`shown`). */
  stored: { id: string; name: string; version: number; shown: number } | null;
  /** The steps last copied, on this page whichever chain they came from. */
  clipboard: Copied | null;
  onCopy: (copied: Copied) => void;
}) {
  const state = useSession();
  const queryClient = useQueryClient();
  const [, setParams] = useSearchParams();
  const flow = useReactFlow();
  const colorMode = useShownTheme();
  const [graph, setGraph] = useState<Graph>(() => regraph(initial, null));
  // The JSON as typed while it is being edited; else the JSON of the graph.
  const [draft, setDraft] = useState<string | null>(null);
  const [jsonError, setJsonError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  // What the last copy, cut or paste did, for the screen reader as for the eye.
  const [notice, setNotice] = useState('');
  // Pastes since the last copy: each lands a little further off, not on the one before.
  const pastes = useRef(0);
  const help = useRef<HTMLDialogElement>(null);
  // The graph as a drag began: what undoing the move brings back.
  const beforeMove = useRef<Graph | null>(null);
  // The run shown on the canvas, if any: its steps' states overlay theirs.
  const [runId, setRunId] = useState<string | null>(null);
  const live = useLiveRun(runId ?? '');
  const runStates = useMemo(() => new Map(live.timeline?.steps.map((step) => [step.id, step])), [live.timeline]);

  const definition = useMemo(() => fromGraph(graph), [graph]);
  // The chain's name is its definition's.
  const name = typeof graph.header.name === 'string' ? graph.header.name : '';
  // A new set of steps (another definition typed in, a layout asked for) is fitted into view.
  const stepIds = graph.nodes.map((node) => node.id).join('\n');
  const fitted = useRef(stepIds);
  useEffect(() => {
    if (stepIds === fitted.current) return;
    fitted.current = stepIds;
    // React Flow fits once the new nodes are measured.
    void flow.fitView();
  }, [stepIds, flow]);
  const json = useMemo(() => draft ?? text(definition), [draft, definition]);
  const settled = useSettled(JSON.stringify(definition), VALIDATE_AFTER_MS);
  const validation = useQuery({
    queryKey: composerKeys.validation(settled),
    queryFn: () => validate(JSON.parse(settled) as Json),
    placeholderData: keepPreviousData,
  });
  const problems = useMemo(
    () => problemsByStep(graph, validation.data?.violations ?? []),
    [graph, validation.data],
  );
  const nodes = useMemo(
    () =>
      graph.nodes.map((node): StepNode => ({
        ...node,
        ariaLabel: `Step ${node.id}`,
        data: { ...node.data, problems: problems.byStep.get(node.id) ?? [], ...(runStates.has(node.id) ? { run: runStates.get(node.id) } : {}) },
      })),
    [graph.nodes, problems, runStates],
  );

  // The graph as last rendered, for the history to remember before a change.
  const latest = useRef(graph);
  useEffect(() => {
    latest.current = graph;
  });
  const history = useRef(new History<Graph>());
  // Whether there is anything to undo or redo, for the buttons.
  const [movable, setMovable] = useState({ undo: false, redo: false });
  const moved = () => setMovable({ undo: history.current.canUndo, redo: history.current.canRedo });

  /** A change of the definition made on the canvas or in the panel: the JSON follows. */
  function change(next: (current: Graph) => Graph, before: Graph = latest.current) {
    history.current.record(before);
    moved();
    setGraph(next);
    setDraft(null);
    setJsonError(null);
  }

  function travel(direction: 'undo' | 'redo') {
    const restored = history.current[direction](latest.current);
    if (!restored) return;
    moved();
    setNotice(direction === 'undo' ? 'Undone.' : 'Redone.');
    setGraph(restored);
    setDraft(null);
    setJsonError(null);
  }

  /** The steps a copy or a deletion concerns: those selected on the canvas, else the one in the panel. */
  function pickedIds(): Set<string> {
    const picked = graph.nodes.filter((node) => node.selected).map((node) => node.id);
    return new Set(picked.length > 0 ? picked : selected ? [selected] : []);
  }

  /**
   * Copies the picked steps: into the page's clipboard, and as JSON into the system's, through
   * the `copy` event's `transfer` (the keys) or the clipboard API (the button, a user's click).
   */
  function copy(transfer?: DataTransfer | null): number {
    const ids = pickedIds();
    if (ids.size === 0) {
      setNotice('Select the steps to copy first.');
      return 0;
    }
    const copied = copySteps(graph, ids);
    onCopy(copied);
    const text = clipboardText(copied);
    if (transfer) transfer.setData('text/plain', text);
    // Refused (no focus, a browser without the API): the page's copy still pastes here.
    else void navigator.clipboard?.writeText(text).catch(() => undefined);
    pastes.current = 0;
    setNotice(`Copied ${counted(ids.size, 'step')}.`);
    return ids.size;
  }

  /**
   * Pastes the steps in the system clipboard's `text` (copied in this tab or another), or, when
   * it holds none or could not be read, the page's own last copy.
   */
  function paste(text?: string) {
    const read = text === undefined ? undefined : parseClipboard(text);
    const copied = read && 'copied' in read ? read.copied : clipboard;
    if (!copied || copied.steps.length === 0) {
      setNotice(read && 'problem' in read ? read.problem : 'Nothing copied yet.');
      return;
    }
    pastes.current += 1;
    const { graph: next, ids } = pasteSteps(graph, copied, PASTE_OFFSET * pastes.current);
    change(() => next);
    setSelected(ids[0] ?? null);
    setNotice(`Pasted ${counted(ids.length, 'step')}: ${ids.join(', ')}.`);
  }

  function removePicked(verb = 'Deleted') {
    const ids = pickedIds();
    const edgeIds = new Set(graph.edges.filter((edge) => edge.selected).map((edge) => edge.id));
    if (ids.size === 0 && edgeIds.size === 0) return;
    change((current) => removeSteps(current, ids, edgeIds));
    if (selected && ids.has(selected)) setSelected(null);
    setNotice(`${verb} ${counted(ids.size, 'step')}${edgeIds.size > 0 ? ` and ${counted(edgeIds.size, 'connection')}` : ''}.`);
  }

  function selectAll(picked: boolean) {
    setGraph((current) => ({
      ...current,
      nodes: current.nodes.map((node) => ({ ...node, selected: picked })),
      edges: current.edges.map((edge) => ({ ...edge, selected: false })),
    }));
    if (!picked) setSelected(null);
  }

  /** The Paste button: the system's clipboard if the browser lets the page read it, else the page's copy. */
  async function pasteFromButton() {
    paste(await navigator.clipboard?.readText().catch(() => undefined));
  }

  function perform(action: Action, transfer?: DataTransfer | null) {
    switch (action) {
      case 'copy':
        copy(transfer);
        return;
      case 'cut':
        if (copy(transfer) > 0) removePicked('Cut');
        return;
      case 'paste':
        paste(transfer?.getData('text/plain'));
        return;
      case 'delete':
        removePicked();
        return;
      case 'selectAll':
        selectAll(true);
        return;
      case 'deselect':
        selectAll(false);
        return;
      case 'undo':
      case 'redo':
        travel(action);
        return;
      case 'help':
        help.current?.showModal();
        return;
    }
  }

  // The shortcuts apply on the whole page (focus may be on the canvas, the palette or nowhere),
  // except where a key edits text; a copy with text selected copies the text.
  const performLatest = useRef(perform);
  useEffect(() => {
    performLatest.current = perform;
  });
  useEffect(() => {
    const onKey = (event: globalThis.KeyboardEvent) => {
      if (event.defaultPrevented || typingIn(event.target)) return;
      const action = actionOf(event);
      // Copy, cut and paste keys are left to the browser, which raises the clipboard events below.
      if (!action || CLIPBOARD_ACTIONS.has(action)) return;
      event.preventDefault();
      performLatest.current(action);
    };
    // The clipboard events carry the system's clipboard, this tab's or another's, with no
    // permission asked: the keys (and the browser's menu) copy and paste steps through them.
    const onClipboard = (event: ClipboardEvent) => {
      if (event.defaultPrevented || typingIn(event.target)) return;
      if (event.type !== 'paste' && window.getSelection()?.toString()) return;
      event.preventDefault();
      performLatest.current(event.type === 'cut' ? 'cut' : event.type === 'paste' ? 'paste' : 'copy', event.clipboardData);
    };
    window.addEventListener('keydown', onKey);
    for (const type of ['copy', 'cut', 'paste']) window.addEventListener(type, onClipboard as EventListener);
    return () => {
      window.removeEventListener('keydown', onKey);
      for (const type of ['copy', 'cut', 'paste']) window.removeEventListener(type, onClipboard as EventListener);
    };
  }, []);

  function editJson(value: string) {
    setDraft(value);
    try {
      const parsed: unknown = JSON.parse(value);
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('A definition is a JSON object');
      setJsonError(null);
      setGraph((previous) => regraph(parsed as Json, previous));
    } catch (error) {
      setJsonError(error instanceof Error ? error.message : String(error));
    }
  }

  function add(addition: Addition, position?: { x: number; y: number }) {
    const taken = new Set(graph.nodes.map((node) => node.id));
    const step = newStep(addition, taken);
    const last = graph.nodes.at(-1)?.position;
    const at = position ?? { x: (last?.x ?? 0) + 240, y: last?.y ?? 0 };
    // Among steps that keep their places, a new one keeps its own.
    const placed = placedByDefinition(graph) ? { position: { x: Math.round(at.x), y: Math.round(at.y) } } : {};
    const node: StepNode = {
      id: step.id,
      type: 'step',
      position: at,
      data: { step: { ...step, ...placed }, problems: [] },
    };
    change((current) => ({ ...current, nodes: [...current.nodes, node] }));
    setSelected(step.id);
  }

  /** Dagre's layout, the steps' own positions dropped from the definition (an undoable change when they had some). */
  function autoLayout() {
    const layOut = (current: Graph): Graph => {
      const cleared = withoutPositions(current);
      return { ...cleared, nodes: laidOut(cleared.nodes, cleared.edges) };
    };
    if (graph.nodes.some((node) => positionOf(node.data.step))) change(layOut);
    else setGraph(layOut);
    void flow.fitView();
  }

  function drop(event: DragEvent) {
    event.preventDefault();
    const addition = additionOf(event.dataTransfer.getData(DRAG_TYPE));
    if (addition) add(addition, flow.screenToFlowPosition({ x: event.clientX, y: event.clientY }));
  }

  function connect(connection: Connection) {
    const { source, target } = connection;
    if (source === target || graph.edges.some((edge) => edge.source === source && edge.target === target)) return;
    change((current) => ({ ...current, edges: [...current.edges, { id: edgeId(source, target), source, target }] }));
  }

  function updateStep(id: string, step: StepJson) {
    change((current) => ({
      ...current,
      nodes: current.nodes.map((node) => (node.id === id ? { ...node, data: { ...node.data, step } } : node)),
    }));
  }

  function rename(from: string, to: string) {
    if (graph.nodes.some((node) => node.id === to)) return;
    const moved = (id: string) => (id === from ? to : id);
    // The expressions that read the step read it by its new id.
    const renames = new Map([[from, to]]);
    change((current) => ({
      ...current,
      nodes: current.nodes.map((node) => {
        const step = withStepsRenamed(node.data.step, renames);
        return node.id === from ? { ...node, id: to, data: { ...node.data, step: { ...step, id: to } } } : { ...node, data: { ...node.data, step } };
      }),
      edges: current.edges.map((edge) => ({ ...edge, id: edgeId(moved(edge.source), moved(edge.target)), source: moved(edge.source), target: moved(edge.target) })),
    }));
    setSelected(to);
  }

  function setNeeds(id: string, needs: string[]) {
    change((current) => ({
      ...current,
      edges: [
        ...current.edges.filter((edge) => edge.target !== id),
        ...needs.map((need): Edge => ({ id: edgeId(need, id), source: need, target: id })),
      ],
    }));
  }

  function remove(id: string) {
    change((current) => removeSteps(current, new Set([id])));
    setSelected(null);
  }

  function importDefinition(imported: Json, file: string) {
    change(() => regraph(imported, null));
    setSelected(null);
    setNotice(`Imported ${file}.`);
  }

  function openVersion(version: number) {
    if (!stored) return;
    setParams(version === stored.version ? { chain: stored.id } : { chain: stored.id, version: String(version) });
  }

  const save = useMutation({
    mutationFn: () => (stored ? saveVersion(stored.id, definition, stored.version) : createChain(name, definition)),
    onSuccess: (chain) => {
      void queryClient.invalidateQueries({ queryKey: chainKeys.all });
      void queryClient.invalidateQueries({ queryKey: composerKeys.chain(chain.id ?? '') });
      if (chain.id) setParams({ chain: chain.id });
    },
  });

  const chosen = graph.nodes.find((node) => node.id === selected);
  const outputSchemas = useMemo(() => new Map(agents.map((agent) => [agent.name, agent.output_schema])), [agents]);
  const paths = chosen ? pathsFor(graph, chosen.id, outputSchemas) : [];
  const upstream = chosen ? upstreamOf(graph, chosen.id) : [];
  const valid = validation.data?.valid ?? false;
  // A stored chain open at its latest version and unchanged runs as saved; anything else as it is here.
  const pristine = useMemo(() => JSON.stringify(fromGraph(toGraph(initial))), [initial]);
  const runTarget: RunTarget = stored && stored.shown === stored.version && JSON.stringify(definition) === pristine
    ? { chainId: stored.id }
    : { definition };
  const chosenRun = chosen ? runStates.get(chosen.id) : undefined;
  return (
    <div className="space-y-4">
      <form className="flex flex-wrap items-end gap-3" onSubmit={(event) => { event.preventDefault(); save.mutate(); }}>
        {!stored && (
          <div>
            <label className="label" htmlFor="chain-name">Chain name</label>
            <input id="chain-name" className="input" required maxLength={100} value={name}
              onChange={(event) => change((current) => ({ ...current, header: { ...current.header, name: event.target.value } }))} />
          </div>
        )}
        {can(state, 'chains:write') && (
          <button type="submit" className="btn-primary" disabled={save.isPending || !valid || (!stored && !name.trim())}>
            {stored ? `Save as version ${stored.version + 1}` : 'Save as a new chain'}
          </button>
        )}
        <button type="button" className="btn-secondary" aria-keyshortcuts={keysOf('undo')} disabled={!movable.undo}
          onClick={() => travel('undo')}>
          Undo
        </button>
        <button type="button" className="btn-secondary" aria-keyshortcuts={keysOf('redo')} disabled={!movable.redo}
          onClick={() => travel('redo')}>
          Redo
        </button>
        <button type="button" className="btn-secondary" aria-keyshortcuts={keysOf('copy')} disabled={graph.nodes.length === 0}
          onClick={() => copy()}>
          Copy
        </button>
        <button type="button" className="btn-secondary" aria-keyshortcuts={keysOf('paste')}
          onClick={() => void pasteFromButton()}>
          Paste
        </button>
        <button type="button" className="btn-secondary" aria-keyshortcuts={keysOf('help')}
          onClick={() => help.current?.showModal()}>
          Keyboard shortcuts
        </button>
        <button type="button" className="btn-secondary" onClick={autoLayout}>
          Auto layout
        </button>
        <p role="status" className="text-sm">
          {validation.isFetching && !validation.data ? 'Checking…' : valid ? `Valid: ${validation.data?.step_count ?? 0} steps` : 'Not valid yet'}
        </p>
        {save.isSuccess && <p role="status" className="text-sm text-green-800 dark:text-green-200">Saved version {save.data.version}.</p>}
        <p role="status" className="text-sm">{notice}</p>
      </form>
      <ShortcutsHelp ref={help} />
      <ProblemMessage error={save.error ?? validation.error} />
      {problems.general.length > 0 && (
        <ul aria-label="Problems of the chain" className="list-disc pl-5 text-sm text-red-700 dark:text-red-300">
          {problems.general.map((problem) => <li key={problem}>{problem}</li>)}
        </ul>
      )}
      {runId && (
        <RunBanner runId={runId} status={live.timeline?.status ?? live.run.data?.status} stream={live.stream}
          onClose={() => setRunId(null)} />
      )}
      <div className="grid grid-cols-1 gap-4 xl:grid-cols-[14rem_1fr_20rem]">
        <aside className="card h-fit"><Palette agents={agents} onAdd={(addition) => add(addition)} /></aside>
        <div aria-label="Canvas" role="region" className="card h-[36rem] p-0"
          onDragOver={(event) => { event.preventDefault(); event.dataTransfer.dropEffect = 'copy'; }} onDrop={drop}>
          <ReactFlow
            nodes={nodes}
            edges={graph.edges}
            nodeTypes={NODE_TYPES}
            colorMode={colorMode}
            onNodeDragStart={() => { beforeMove.current = latest.current; }}
            onNodesChange={(changes: NodeChange<StepNode>[]) => {
              const removed = new Set(changes.flatMap((item) => (item.type === 'remove' ? [item.id] : [])));
              const apply = (current: Graph): Graph => ({
                ...current,
                nodes: applyNodeChanges(changes, current.nodes),
                edges: current.edges.filter((edge) => !removed.has(edge.source) && !removed.has(edge.target)),
              });
              // A move that ended (a drag let go, an arrow key) keeps every step's place in the
              // definition, undone as one change; sizes, selection and moves under way change nothing.
              const moved = changes.some((item) => item.type === 'position' && item.dragging === false);
              if (removed.size > 0) change(apply);
              else if (moved) {
                change((current) => withPositions(apply(current)), beforeMove.current ?? latest.current);
                beforeMove.current = null;
              } else setGraph(apply);
            }}
            onEdgesChange={(changes: EdgeChange[]) => {
              const apply = (current: Graph): Graph => ({ ...current, edges: applyEdgeChanges(changes, current.edges) });
              if (changes.some((item) => item.type === 'remove')) change(apply);
              else setGraph(apply);
            }}
            onConnect={connect}
            // Delete and Backspace go through the page's shortcuts: one change, undone at once.
            deleteKeyCode={null}
            onNodeClick={(_event, node) => setSelected(node.id)}
            onSelectionChange={({ nodes: picked }) => { if (picked[0]) setSelected(picked[0].id); }}
            onPaneClick={() => setSelected(null)}
            fitView
            minZoom={MIN_ZOOM}
          >
            <Background />
            <Controls />
          </ReactFlow>
        </div>
        <aside className="card h-fit space-y-3">
          {runId && chosenRun && <StepRun key={`run:${chosenRun.id}`} runId={runId} step={chosenRun} />}
          {chosen ? (
            <StepPanel
              key={chosen.id}
              step={chosen.data.step}
              others={graph.nodes.map((node) => node.id).filter((id) => id !== chosen.id)}
              needs={graph.edges.filter((edge) => edge.target === chosen.id).map((edge) => edge.source)}
              upstream={upstream}
              agents={agents}
              paths={paths}
              problems={problems.byStep.get(chosen.id) ?? []}
              onChange={(step) => updateStep(chosen.id, step)}
              onRename={(id) => rename(chosen.id, id)}
              onNeeds={(needs) => setNeeds(chosen.id, needs)}
              onDelete={() => remove(chosen.id)}
            />
          ) : (
            <p className="muted text-sm">Select a step to change it, or add one from the palette.</p>
          )}
        </aside>
      </div>
      <section aria-label="The chain's definition, files and versions" className="card">
        <Tabs
          label="Views of the chain"
          tabs={[
            {
              value: 'json',
              label: 'Definition (JSON)',
              content: (
                <>
                  <Suspense fallback={<Loading label="Loading the editor" />}>
                    <JsonEditor label="Chain definition (JSON)" value={json} onChange={editJson} />
                  </Suspense>
                  {jsonError && <p role="alert" className="mt-1 text-sm text-red-700 dark:text-red-300">{jsonError}</p>}
                </>
              ),
            },
            {
              value: 'files',
              label: 'Import and export',
              content: <ImportExport definition={definition} onImport={importDefinition} />,
            },
            {
              value: 'run',
              label: 'Run',
              content: <RunForm target={runTarget} inputSchema={graph.header.input_schema} onStarted={setRunId} />,
            },
            { value: 'publish', label: 'Publish', content: <Publish definition={definition} /> },
            ...(stored
              ? [{
                  value: 'versions',
                  label: 'Versions',
                  content: <Versions chainId={stored.id} latest={stored.version} shown={stored.shown} onOpen={openVersion} />,
                }]
              : []),
          ]}
        />
      </section>
    </div>
  );
}

export function ComposerPage() {
  const [params, setParams] = useSearchParams();
  const source = params.get('chain') ?? params.get('template') ?? '';
  const agents = useQuery({ queryKey: agentKeys.all, queryFn: listAgents, staleTime: 60_000 });
  // Kept above the composer, which a new chain remounts: steps copied from one paste into another.
  const [clipboard, setClipboard] = useState<Copied | null>(null);
  const chains = useQuery({ queryKey: chainKeys.all, queryFn: listChains });
  // A stored chain opens at its latest version unless another is asked for.
  const version = params.get('chain') && Number(params.get('version')) > 0 ? Number(params.get('version')) : undefined;
  const loaded = useQuery({
    queryKey: composerKeys.chain(source, version),
    queryFn: () => getChain(source, version),
    enabled: source !== '',
  });
  const chain = source ? loaded.data : undefined;
  const stored = chain?.origin === 'tenant' && chain.id
    ? { id: chain.id, name: chain.name, version: chain.latest_version, shown: chain.version }
    : null;
  const initial: Json | undefined = source
    ? chain && { ...(chain.definition as Json | null), name: chain.name }
    : { steps: [] };
  return (
    <>
      <PageHeader title="Composer" />
      <div className="mb-4 max-w-md">
        <label className="label" htmlFor="start-from">Start from</label>
        <select id="start-from" className="input" value={params.get('chain') ? `chain:${source}` : source ? `template:${source}` : ''}
          onChange={(event) => {
            const [origin, key = ''] = event.target.value.split(':', 2);
            setParams(origin === 'chain' ? { chain: key } : origin === 'template' ? { template: key } : {});
          }}>
          <option value="">An empty chain</option>
          {chains.data?.chains.map((candidate) => {
            const value = candidate.origin === 'template' ? `template:${candidate.name}` : `chain:${candidate.id ?? ''}`;
            return <option key={value} value={value}>{candidate.name} ({candidate.origin}, {candidate.step_count} steps)</option>;
          })}
        </select>
      </div>
      {(agents.isPending || (source && loaded.isPending)) && <Loading label="Loading the chain" />}
      <ProblemMessage error={agents.error ?? loaded.error ?? chains.error} />
      {agents.data && initial && (
        <ReactFlowProvider>
          <Composer key={`${source}:${chain?.version ?? 0}`} initial={initial} agents={agents.data} stored={stored}
            clipboard={clipboard} onCopy={setClipboard} />
        </ReactFlowProvider>
      )}
    </>
  );
}
