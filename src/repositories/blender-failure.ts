import { badInput, type MontageError, renderFailed } from '../common/errors';
import { blenderErrorSummary } from '../engines/blender/blender-log';
import { cannotExecute } from './child-processes';

/** What a Blender run (a one-shot render or one chunk of a kept Blender) ended with. */
export interface BlenderRunEnd {
  command: string;
  aborted: boolean;
  spawnError?: Error;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  /** Every frame was saved: exit 0 (one-shot), or the chunk's end reported (kept Blender). */
  finished: boolean;
  timedOut: boolean;
  frameTimeoutMs: number;
  deviceError?: string;
  bindingErrors: string[];
  /** Blender's lines, without progress. */
  log: string[];
}

/**
 * Why a Blender run failed, as the user and the queue should see it (undefined: it did not):
 * bindings that do not fit are the template's (400, never retried); a missing device, a
 * time-out or Blender's own error are this node's (retried, on another node first).
 */
export function blenderFailure(end: BlenderRunEnd): MontageError | undefined {
  if (end.aborted) return renderFailed('render cancelled');
  if (end.spawnError) return renderFailed('Blender could not be started on this render node', [], { internal: `${end.command}: ${end.spawnError.message}` });
  if (end.exit && cannotExecute(end.exit.code, end.log.join('\n'))) return renderFailed('Blender could not be started on this render node', [], { internal: end.command });
  if (end.deviceError) return renderFailed(`Blender on this render node cannot render here: ${end.deviceError}`);
  if (end.bindingErrors.length > 0) {
    return badInput(`the scene does not fit the template's bindings: ${end.bindingErrors.slice(0, 3).join('; ')}`, end.bindingErrors.map((message) => ({ field: 'blender', message })));
  }
  if (end.timedOut) return renderFailed(`a Blender frame took longer than ${Math.round(end.frameTimeoutMs / 1000)} s and the render was stopped`, [], { internal: blenderErrorSummary(end.log) });
  if (!end.finished) return renderFailed(`Blender failed (${end.exit?.signal ?? `exit ${end.exit?.code}`}): ${blenderErrorSummary(end.log)}`);
  return undefined;
}
