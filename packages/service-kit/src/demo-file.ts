import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * `<data>/demo.json`, written by `netpay start`: where each service of the system listens and where each vendor's
 * API key file is (the keys themselves stay in their 0600 files). Commands that talk to a service read it, so
 * `--data` alone finds the bank, the broker and the vendors on whatever addresses and ports they were started.
 */
export interface DemoFile {
  bank?: { url: string };
  broker?: { url: string; api?: string };
  vendors: Array<{ id: string; name?: string; url?: string; apiKeyFile?: string }>;
}

export function demoFilePath(dataDir: string): string {
  return join(resolve(dataDir), 'demo.json');
}

/**
 * The data folder's demo.json, or undefined when there is none. Relative key file paths are taken from the data
 * folder. A file that is there but unreadable is an error: guessing other addresses would reach the wrong service.
 *
 * @throws Error naming the file when it is not JSON of the expected shape
 * @example
 * const bankUrl = readDemoFile('./data')?.bank?.url ?? 'http://127.0.0.1:4100';
 */
export function readDemoFile(dataDir: string): DemoFile | undefined {
  const path = demoFilePath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path} is not JSON: ${(error as Error).message}`);
  }
  if (!isRecord(raw)) throw new Error(`${path} is not a JSON object`);
  const demo: DemoFile = { vendors: [] };
  const bankUrl = urlAt(raw.bank, path, 'bank.url');
  if (bankUrl !== undefined) demo.bank = { url: bankUrl };
  const brokerUrl = urlAt(raw.broker, path, 'broker.url');
  if (brokerUrl !== undefined) {
    const api = isRecord(raw.broker) && typeof raw.broker.api === 'string' ? raw.broker.api : undefined;
    demo.broker = { url: brokerUrl, ...(api ? { api } : {}) };
  }
  if (raw.vendors !== undefined && !Array.isArray(raw.vendors)) throw new Error(`${path}: vendors is not a list`);
  for (const vendor of (raw.vendors as unknown[] | undefined) ?? []) {
    if (!isRecord(vendor) || typeof vendor.id !== 'string') throw new Error(`${path}: a vendor without an id`);
    demo.vendors.push({
      id: vendor.id,
      ...(typeof vendor.name === 'string' ? { name: vendor.name } : {}),
      ...(typeof vendor.url === 'string' ? { url: vendor.url } : {}),
      ...(typeof vendor.apiKeyFile === 'string' ? { apiKeyFile: resolve(dataDir, vendor.apiKeyFile) } : {}),
    });
  }
  return demo;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function urlAt(section: unknown, path: string, what: string): string | undefined {
  if (section === undefined) return undefined;
  const url = isRecord(section) ? section.url : undefined;
  if (typeof url !== 'string' || !/^https?:\/\/\S+$/.test(url)) throw new Error(`${path}: ${what} is not a URL`);
  return url.replace(/\/+$/, '');
}
