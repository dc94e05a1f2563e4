/**
 * The benchmark's HTTP load: keep-alive HTTP/1.1 connections, each sending its next request as soon as the answer
 * to the last one is in (a closed loop, like a browser tab or an API client waiting for each answer).
 *
 * Why not a general client: on a 2-core box the load shares the machine with what it measures, and in a closed
 * loop every microsecond the load spends turning an answer into the next request is a microsecond the server
 * waits. A client whose cost differs between two routes then shows up in their ratio. Each request here is one
 * string built by the caller and written as is, and an answer is read only as far as its status and length, so a
 * request costs the load the same few microseconds whatever the route and headers.
 */
import { connect, type Socket } from 'node:net';

/** The figures of one load run. */
export interface LoadRun {
  /**
   * Answers completed within the run's duration, per second of it. Those to requests still out at its end (and a
   * straggler's wait, up to the answer timeout) count in `ok` and `other` only.
   */
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** 2xx answers. */
  ok: number;
  /** Other answers, plus connections that failed, or closed with a request outstanding (one each). */
  other: number;
}

export interface LoadOptions {
  host: string;
  port: number;
  connections: number;
  durationSec: number;
  /**
   * The next request of connection `connection` (0-based), as the full request head ending in a blank line. Called
   * once per request, on the connection's turn: a connection's own state (its coin) stays with it.
   */
  request(connection: number): string;
  /** How long an answer may take before its connection counts it as failed and stops (default 10 s). */
  answerTimeoutMs?: number;
}

const HEAD_END = Buffer.from('\r\n\r\n');
// Latencies kept in 10 µs steps up to 2 s (the last step also holds anything slower): enough for a p99 to 0.01 ms.
const LATENCY_STEP_MS = 0.01;
const LATENCY_STEPS = 200_000;

/**
 * Loads one server for `durationSec` seconds on `connections` connections.
 *
 * @example
 * const run = await loadHttp({ host: '127.0.0.1', port, connections: 50, durationSec: 5,
 *   request: () => `GET /api/articles/free HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n` });
 */
export async function loadHttp(options: LoadOptions): Promise<LoadRun> {
  const latencies = new Uint32Array(LATENCY_STEPS);
  let ok = 0;
  let other = 0;
  const started = performance.now();
  const endsAt = started + options.durationSec * 1000;
  const timeoutMs = options.answerTimeoutMs ?? 10_000;
  const runs: Array<Promise<void>> = [];
  let stopped: unknown;
  let answeredInTime = 0;
  for (let c = 0; c < options.connections; c++) {
    runs.push(
      runConnection(c, options, endsAt, timeoutMs, (status, ms, inTime) => {
        if (status >= 200 && status < 300) ok++;
        else other++;
        if (inTime) answeredInTime++;
        const step = Math.min(LATENCY_STEPS - 1, Math.floor(ms / LATENCY_STEP_MS));
        latencies[step] = (latencies[step] ?? 0) + 1;
      }).catch((error: unknown) => {
        if (error instanceof RequestError) stopped ??= error.cause;
        else other++;
      }),
    );
  }
  await Promise.all(runs);
  // The caller could not make a request (it ran out of coins): the run means nothing, say why.
  if (stopped !== undefined) throw stopped;
  return {
    reqPerSec: answeredInTime / options.durationSec,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    ok,
    other,
  };
}

/** The caller's request function failed: the run stops, and loadHttp throws its error. */
class RequestError extends Error {}

/** The latency at quantile `q` of the histogram, at the upper edge of its step. */
function percentile(latencies: Uint32Array, q: number): number {
  let total = 0;
  for (const n of latencies) total += n;
  if (total === 0) return 0;
  const rank = Math.ceil(total * q);
  let seen = 0;
  for (let i = 0; i < latencies.length; i++) {
    seen += latencies[i] as number;
    if (seen >= rank) return (i + 1) * LATENCY_STEP_MS;
  }
  return latencies.length * LATENCY_STEP_MS;
}

/**
 * One connection's loop: send, read the whole answer, record it, send the next, until the run's end. A server that
 * closes the connection after an answer (`Connection: close`: nginx does after `keepalive_requests`, 1,000 by
 * default) gets a new one, as a browser or an API client would open it.
 */
function runConnection(
  connection: number,
  options: LoadOptions,
  endsAt: number,
  timeoutMs: number,
  answered: (status: number, ms: number, inTime: boolean) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let socket: Socket | undefined;
    let buffered: Buffer | undefined;
    let sentAt = 0;
    let waiting = false;
    let finished = false;
    const finish = (error?: Error) => {
      if (finished) return;
      finished = true;
      socket?.destroy();
      if (error) reject(error);
      else resolve();
    };
    const send = (to: Socket) => {
      if (performance.now() >= endsAt) return finish();
      let request: string;
      try {
        request = options.request(connection);
      } catch (error) {
        return finish(new RequestError('no request', { cause: error }));
      }
      sentAt = performance.now();
      waiting = true;
      to.write(request);
    };
    const open = () => {
      const current = connect({ host: options.host, port: options.port, noDelay: true });
      socket = current;
      buffered = undefined;
      // Events of a socket given up for a new one are not this connection's any more.
      const live = () => socket === current && !finished;
      current.setTimeout(timeoutMs, () => live() && finish(new Error('an answer took longer than the timeout')));
      current.once('connect', () => live() && send(current));
      current.on('error', (error) => live() && finish(error));
      current.on('close', () => live() && finish(waiting ? new Error('the server closed the connection') : undefined));
      current.on('data', (chunk: Buffer) => {
        if (!live()) return;
        buffered = buffered ? Buffer.concat([buffered, chunk]) : chunk;
        const answer = completeAnswer(buffered);
        if (answer === 'incomplete') return;
        if (answer === 'unreadable') return finish(new Error('an answer without Content-Length'));
        if (answer.length < buffered.length) return finish(new Error('an answer the client did not ask for'));
        buffered = undefined;
        waiting = false;
        const now = performance.now();
        answered(answer.status, now - sentAt, now <= endsAt);
        if (!answer.close) return send(current);
        current.destroy();
        if (now >= endsAt) return finish();
        open();
      });
    };
    open();
  });
}

/** Statuses whose answers never have a body (RFC 9110 §6.4.1), so need no Content-Length. */
const BODILESS = new Set([204, 304]);

/**
 * The first answer in `data`: its status, its length in bytes once all of it is in, and whether the server closes
 * the connection after it. The benchmark's servers answer with a Content-Length (or a status without a body);
 * anything else (chunked) is unreadable here, and stops the connection rather than being misread.
 */
function completeAnswer(
  data: Buffer,
): { status: number; length: number; close: boolean } | 'incomplete' | 'unreadable' {
  const headEnd = data.indexOf(HEAD_END);
  if (headEnd < 0) return 'incomplete';
  const head = data.toString('latin1', 0, headEnd);
  // "HTTP/1.1 200 OK"
  const status = Number(head.slice(9, 12));
  const close = /\r\nconnection:[ \t]*close[ \t]*(\r\n|$)/i.test(head);
  const at = head.search(/\r\ncontent-length:/i);
  if (at < 0) {
    if (!BODILESS.has(status)) return 'unreadable';
    const length = headEnd + HEAD_END.length;
    return { status, length, close };
  }
  const valueStart = at + '\r\ncontent-length:'.length;
  const lineEnd = head.indexOf('\r\n', valueStart);
  const bodyLength = Number(head.slice(valueStart, lineEnd < 0 ? head.length : lineEnd).trim());
  if (!Number.isSafeInteger(bodyLength) || bodyLength < 0) return 'unreadable';
  const length = headEnd + HEAD_END.length + bodyLength;
  return data.length < length ? 'incomplete' : { status, length, close };
}
