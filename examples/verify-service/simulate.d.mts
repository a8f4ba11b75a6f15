import type { CallResult } from 'axios-in-pod/app.mjs';

/** What the simulation saw. Holds no token text. */
export interface SimulationSummary {
  requests: number;
  /** axios-in-pod's results. */
  calls: CallResult;
  /** Token rotations by the kubelet while axios-in-pod called. */
  rotations: number;
  /** The three callers that must be refused: status, WWW-Authenticate and body of each answer. */
  refused: Record<'otherAudience' | 'otherCluster' | 'noToken', { status: number; challenge: string | null; body: unknown }>;
  /** The service's own counts. */
  stats: { accepted: number; refused: Record<string, number> };
  /** The service's log lines (one per refusal). */
  lines: string[];
  /** Every call answered 200, every intruder 401, and no log line holds a token. */
  healthy: boolean;
}

/** Runs the service against a simulated cluster, called by axios-in-pod. */
export function simulate(options?: { requests?: number; interval?: number; log?: (line: string) => void }): Promise<SimulationSummary>;
