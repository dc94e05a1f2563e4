/**
 * Sandbox fault injection, per merchant and in memory: tests make the bank slow or failing to prove that
 * callers retry with the same Idempotency-Key and are never charged twice.
 */
export interface FaultSettings {
  /** Delay added to every money response, after the work has been committed. */
  latencyMs: number;
  /** How many of the next money requests fail with 503 without doing anything. */
  failNext: number;
}

export class Faults {
  readonly #byMerchant = new Map<string, FaultSettings>();

  set(merchantId: string, settings: FaultSettings): FaultSettings {
    if (settings.latencyMs === 0 && settings.failNext === 0) this.#byMerchant.delete(merchantId);
    else this.#byMerchant.set(merchantId, { ...settings });
    return this.get(merchantId);
  }

  get(merchantId: string): FaultSettings {
    return { ...(this.#byMerchant.get(merchantId) ?? { latencyMs: 0, failNext: 0 }) };
  }

  clear(merchantId: string): void {
    this.#byMerchant.delete(merchantId);
  }

  /** Uses up one injected failure; true when this request must fail. */
  takeFailure(merchantId: string): boolean {
    const settings = this.#byMerchant.get(merchantId);
    if (!settings || settings.failNext === 0) return false;
    settings.failNext -= 1;
    return true;
  }

  latencyMs(merchantId: string): number {
    return this.#byMerchant.get(merchantId)?.latencyMs ?? 0;
  }
}
