import type { TokenVerifier } from '@podtoken/verify';

/** The audience the service accepts unless AUDIENCE says otherwise. */
export const DEFAULT_AUDIENCE: string;

/** A running verify-service. */
export interface VerifyService {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  readonly origin: string;
  readonly port: number;
  /** Requests let through, and refusals by code. */
  readonly stats: { accepted: number; refused: Record<string, number> };
  close(): Promise<void>;
}

/** Starts the service with `verifier`: every request needs a token it accepts. */
export function startVerifyService(options: { verifier: TokenVerifier; port?: number; host?: string; log?: (line: string) => void }): Promise<VerifyService>;
