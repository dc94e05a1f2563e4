import type { WalletContext } from '../wallet-state.ts';
import { type WalletResult, failed, ok } from '../wallet-result.ts';

/** What `session` reports: the broker in use and whether a session token is kept. */
export interface SessionInfo {
  brokerUrl?: string;
  email?: string;
  loggedIn: boolean;
}

/** Creates a customer account at the broker (`POST {api}/customers`). Does not log in. */
export async function register(ctx: WalletContext, email: string, password: string): Promise<WalletResult<void>> {
  const broker = await ctx.broker();
  if (!broker.ok) return failed(broker);
  return ctx.client(broker.value).register(email, password);
}

/** Logs in (`POST {api}/sessions`) and keeps the token, the email and the broker URL in the store. */
export async function login(ctx: WalletContext, email: string, password: string): Promise<WalletResult<void>> {
  const broker = await ctx.broker();
  if (!broker.ok) return failed(broker);
  const token = await ctx.client(broker.value).login(email, password);
  if (!token.ok) return failed(token);
  await ctx.update((state) => {
    state.brokerUrl = broker.value;
    state.email = email;
    state.token = token.value;
  });
  return ok(undefined);
}

/** Forgets the session token (coins stay). */
export async function logout(ctx: WalletContext): Promise<WalletResult<void>> {
  await ctx.update((state) => {
    delete state.token;
  });
  return ok(undefined);
}

/** The configured broker and whether a session token is kept. */
export async function session(ctx: WalletContext): Promise<WalletResult<SessionInfo>> {
  return ok(
    await ctx.read((state) => {
      const out: SessionInfo = { loggedIn: state.token !== undefined };
      const broker = ctx.brokerOf(state);
      if (broker !== undefined) out.brokerUrl = broker;
      if (state.email !== undefined) out.email = state.email;
      return out;
    }),
  );
}
