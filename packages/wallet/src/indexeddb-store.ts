import { type CoinStore, type WalletState, isWalletState } from './coin-store.ts';
import { WalletError } from './wallet-error.ts';

const OBJECT_STORE = 'wallet';
const KEY = 'state';

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/**
 * A `CoinStore` in the browser's IndexedDB: one record, replaced in one read-write transaction per save (atomic), and
 * `save` resolves only when the transaction has committed. Anything with the page's origin can read it, seeds
 * included: serve the wallet from an origin you trust.
 *
 * @example
 * const wallet = createWallet({ brokerUrl: 'https://broker.example', store: new IndexedDbCoinStore('netpay-wallet') });
 */
export class IndexedDbCoinStore implements CoinStore {
  readonly dbName: string;
  readonly #factory: IDBFactory | undefined;
  #db: Promise<IDBDatabase> | undefined;

  constructor(dbName = 'netpay-wallet', factory?: IDBFactory) {
    this.dbName = dbName;
    this.#factory = factory;
  }

  #open(): Promise<IDBDatabase> {
    if (!this.#db) {
      const factory = this.#factory ?? globalThis.indexedDB;
      if (!factory) return Promise.reject(new WalletError('invalid_argument', 'IndexedDB is not available here'));
      const req = factory.open(this.dbName, 1);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(OBJECT_STORE)) req.result.createObjectStore(OBJECT_STORE);
      };
      this.#db = request(req);
      this.#db.catch(() => {
        this.#db = undefined;
      });
    }
    return this.#db;
  }

  async load(): Promise<WalletState | undefined> {
    const db = await this.#open();
    const value = await request(db.transaction(OBJECT_STORE, 'readonly').objectStore(OBJECT_STORE).get(KEY));
    if (value === undefined) return undefined;
    if (!isWalletState(value))
      throw new WalletError('corrupt_store', `IndexedDB ${this.dbName} holds no version 1 wallet`);
    return value;
  }

  async save(state: WalletState): Promise<void> {
    const db = await this.#open();
    const tx = db.transaction(OBJECT_STORE, 'readwrite', { durability: 'strict' });
    tx.objectStore(OBJECT_STORE).put(structuredClone(state), KEY);
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  }

  /** Closes the database connection (tests, page teardown). */
  async close(): Promise<void> {
    if (this.#db) (await this.#db).close();
    this.#db = undefined;
  }
}
