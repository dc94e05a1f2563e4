import { UsageError } from '@netpay/service-kit';

/**
 * What a command that failed prints, and its exit code: one line naming the command, 2 for a mistake in the command
 * line and 1 for anything else. The stack is for developers: only with NETPAY_DEBUG=1.
 */
export interface Failure {
  text: string;
  exitCode: 1 | 2;
}

/**
 * @example
 * failure('netpay admin audit', new Error('no such file'), {}); // { text: 'netpay admin audit: no such file\n', exitCode: 1 }
 */
export function failure(command: string, error: unknown, env: NodeJS.ProcessEnv): Failure {
  const debug = env.NETPAY_DEBUG === '1' && error instanceof Error && error.stack ? `${error.stack}\n` : '';
  if (error instanceof UsageError) return { text: `${error.line()}\n${debug}`, exitCode: 2 };
  return { text: `${command}: ${oneLine(describe(error))}\n${debug}`, exitCode: 1 };
}

/**
 * The message of an error, with what caused it: `fetch failed` says little without `connect ECONNREFUSED …`,
 * and a connection error to a host with several addresses is an AggregateError with an empty message.
 */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  let message = error.message;
  if (!message && error instanceof AggregateError) message = error.errors.map(describe).join('; ');
  if (!message) message = (error as NodeJS.ErrnoException).code ?? error.name;
  const cause = error.cause;
  if (cause !== undefined && cause !== null) {
    const because = describe(cause);
    if (because && !message.includes(because)) message += ` (${because})`;
  }
  return message;
}

/** One line, whatever the message holds (a database or a service may answer in several). */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
